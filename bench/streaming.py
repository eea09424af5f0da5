"""Streaming generation: time to first token and tokens per second, with 1 and 16 clients.

daneel serves a Python class whose `generate` yields TOKENS pieces as fast as it can, as an async
generator and as a plain (sync) generator stepped on a thread, so that the figures are daneel's own
cost per streamed token rather than a model's. Each client posts `POST /v1/completions` with
`stream: true` again and again for the duration and reads the server-sent events as they come.

- time to first token: from sending the request to receiving the first chunk with text;
- tokens/s per stream: its tokens over the time from sending its request to its last token;
- tokens/s in all: every token received by every client, over the duration.

The clients are Python (httpx) on the same machine, and take CPU from the server: on a small machine
the figures at 16 clients are a floor. A text-generation model of the Hugging Face runtime adds its
own row once it is merged (docs/generation.md).

Run alone: .venv/bin/python bench/streaming.py [--duration S] [--concurrency 1,16]
or as `make bench BENCH_ARGS="--extras streaming"`, where it is a section of the report.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import prepare
from report import Section
from servers import Fleet, Spec, wait_ready

TOKENS = 128
LEVELS = (1, 16)
CLASSES = {
    "async": """
        import asyncio


        class Streamer:
            async def generate(self, prompt, max_tokens):
                for index in range(max_tokens):
                    yield f" t{index}"
                    await asyncio.sleep(0)
    """,
    "sync": """
        class Streamer:
            def generate(self, prompt, max_tokens):
                for index in range(max_tokens):
                    yield f" t{index}"
    """,
}
LABELS = {"async": "async generator", "sync": "sync generator (thread-stepped)"}


@dataclass
class Streams:
    """What the clients of one load saw."""

    first_ms: list[float] = field(default_factory=list)
    rates: list[float] = field(default_factory=list)
    tokens: int = 0
    errors: int = 0


def write_models(work: Path) -> dict[str, Path]:
    folders = {}
    for name, source in CLASSES.items():
        folder = work / "streaming" / f"streamer-{name}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "model.py").write_text(textwrap.dedent(source))
        folders[name] = folder
    return folders


def spec(daneel: Path, name: str, folder: Path, work: Path) -> Spec:
    def launch(port: int) -> list[str]:
        return [str(daneel), "serve", str(folder), "--http-port", str(port), "--host", "127.0.0.1", "--no-grpc"]

    return Spec(f"streaming-{name}", f"daneel, {LABELS[name]}", "daneel", launch, work, "/v1/completions")


async def one_stream(client: httpx.AsyncClient, url: str, model: str, streams: Streams) -> None:
    body = {"model": model, "prompt": "go", "max_tokens": TOKENS, "stream": True}
    start = time.perf_counter()
    first = last = 0.0
    count = 0
    async with client.stream("POST", url, json=body) as response:
        if response.status_code != 200:
            streams.errors += 1
            await response.aread()
            return
        async for line in response.aiter_lines():
            if not line.startswith("data: {"):
                continue
            if json.loads(line[6:])["choices"][0]["text"]:
                last = time.perf_counter()
                count += 1
                if count == 1:
                    first = last
    if count == 0:
        streams.errors += 1
        return
    streams.first_ms.append((first - start) * 1000)
    streams.rates.append(count / (last - start))
    streams.tokens += count


async def load(url: str, model: str, clients: int, seconds: float) -> Streams:
    streams = Streams()
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:

        async def user() -> None:
            while time.perf_counter() < deadline:
                await one_stream(client, url, model, streams)

        await asyncio.gather(*(user() for _ in range(clients)))
    return streams


def measure(daneel: Path, work: Path, duration: float, levels: tuple[int, ...]) -> list[str]:
    """The table's rows: one per class and number of clients."""
    rows = []
    with Fleet(work / "logs") as fleet:
        for name, folder in write_models(work).items():
            server = fleet.start(spec(daneel, name, folder, work))
            wait_ready(server)
            url = f"http://127.0.0.1:{server.port}/v1/completions"
            asyncio.run(load(url, folder.name, 1, min(2.0, duration)))  # warm-up
            for clients in levels:
                prepare.say(f"streaming: {LABELS[name]}, {clients} client(s), {duration:g} s")
                streams = asyncio.run(load(url, folder.name, clients, duration))
                rows.append(_row(LABELS[name], clients, streams, duration))
            fleet.stop(server)
    return rows


def _row(label: str, clients: int, streams: Streams, duration: float) -> str:
    if not streams.first_ms:
        return f"| {label} | {clients} | no stream completed ({streams.errors} errors) | | | |"
    first = sorted(streams.first_ms)
    p50, p99 = statistics.median(first), first[min(len(first) - 1, int(len(first) * 0.99))]
    rate = statistics.median(streams.rates) if streams.rates else 0.0
    total = streams.tokens / duration
    return f"| {label} | {clients} | {p50:.2f} | {p99:.2f} | {rate:,.0f} | {total:,.0f} | {len(first)} |"


def table(rows: list[str]) -> list[str]:
    head = [
        f"Each stream asks for {TOKENS} tokens from `POST /v1/completions` with `stream: true`.",
        "",
        "| class | clients | first token p50 ms | p99 ms | tokens/s per stream (median) | tokens/s in all | streams |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    return [*head, *rows, ""]


def section(daneel: Path, work: Path, duration: float) -> Section:
    """The report's section, for bench/run.py's extras."""
    title = "Streaming generation: time to first token and tokens/s, 1 and 16 clients"
    try:
        rows = measure(daneel, work, duration, LEVELS)
    except (RuntimeError, OSError, httpx.HTTPError) as exc:
        return Section(title, [f"Skipped: {str(exc).splitlines()[0]}."])
    return Section(title, table(rows))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load per class and level")
    parser.add_argument("--concurrency", default="1,16", help="clients, comma-separated")
    parser.add_argument("--daneel", type=Path, default=Path(sys.executable).with_name("daneel"))
    args = parser.parse_args(argv)
    levels = tuple(int(level) for level in args.concurrency.split(",") if level.strip())
    work = Path(__file__).resolve().parent / ".work"
    print("\n".join(table(measure(args.daneel, work, args.duration, levels))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
