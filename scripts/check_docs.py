"""Run the shell examples of daneel's markdown docs and check that they print what the docs show.

Usage: ``.venv/bin/python scripts/check_docs.py [--fill] [DOC.md ...]``; without paths it checks
README.md and every docs/**/*.md. Exits 1 when any command fails its check.

Each document is walked from top to bottom with its own state: a working directory (the repository
root at first) and the servers it has started, which are stopped when the document ends, also on
Ctrl-C, SIGTERM or an error. The repository's .venv/bin comes first on PATH, so `daneel` and
`python` are the project's.

What the walk understands:

- A ```console block holds commands, each on a line starting with `$ `, each followed by what it
  should print (stdout and stderr together). A heredoc (`<<'EOF'`) continues its command up to the
  terminator line. Every command runs in a fresh bash; `cd DIR` alone changes the directory of the
  commands after it, and `. .venv/bin/activate` does nothing (the venv is on PATH already).
- `daneel serve ...` and `make run` (without `||`) start a server in the background, in a process
  group of its own. The walk goes on once the server answers /v2/health/live on its port
  (`--http-port N`, `PORT=N`, else 8080) and is ready, or has been loading for LOADING_GRACE
  seconds (a doc showing a slow load). A server that exits instead passes when the expected
  output appears, in order, among the lines it printed.
- In expected output, "..." (or "…") on a line of its own stands for any number of lines, and
  within a line for any text. Indentation, trailing spaces, puids, uuids, log timestamps and
  process ids are ignored.
- HTML comments, invisible once rendered, steer the walk: `<!-- cwd: PATH -->` changes the working
  directory, creating it (a relative PATH is from the repository root); `<!-- file: PATH -->`
  writes the next fenced block that is not a console block to PATH, relative to the working
  directory; `<!-- serve: COMMAND -->` starts COMMAND as a background server, for servers the
  doc's text starts outside a console block (`make run` in a plain block).

With --fill, a command shown without output gets what it printed written into the doc.
"""

from __future__ import annotations

import argparse
import functools
import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, NoReturn

ROOT = Path(__file__).resolve().parent.parent
COMMAND_TIMEOUT = 120.0
LIVE_TIMEOUT = 60.0
LOADING_GRACE = 15.0
STOP_TIMEOUT = 15.0
SHOWN_WIDTH = 150

MARKER = re.compile(r"<!-- (cwd|file|serve): (.+?) -->")
HEREDOC = re.compile(r"<<-?\s*(['\"]?)(\w+)\1")
ENV_ASSIGNMENTS = re.compile(r"^(\w+=\S+\s+)+")
SERVER = re.compile(r"((\S*/)?daneel serve|make run)\b")
PORT = re.compile(r"(?:--http-port[= ]|\bPORT=)(\d+)")
CD = re.compile(r"cd (\S+)")
MASKS = [
    (re.compile(r'("puid": ?)"[0-9a-f]{26}"'), r'\1"PUID"'),
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "UUID"),
    (re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+"), "TIMESTAMP"),
    (re.compile(r"process \[\d+\]"), "process [PID]"),
]
# make passes its command-line variables down through these; a doc's `make run` must not see ours.
MAKE_VARIABLES = {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES"}


def say(*lines: str) -> None:
    print(*lines, sep="\n", flush=True)


def decode(output: bytes) -> list[str]:
    return output.decode("utf-8", "replace").splitlines()


# The document: plain lines and fenced blocks, and the commands of a console block.


@dataclass
class Fence:
    opening: str
    body: list[str] = field(default_factory=list)
    closing: str = "```"

    @property
    def language(self) -> str:
        return self.opening.lstrip("`").strip()


@dataclass
class Step:
    command: str
    expected: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [*f"$ {self.command}".splitlines(), *self.expected]


def parse_doc(lines: Iterable[str]) -> list[str | Fence]:
    items: list[str | Fence] = []
    fence: Fence | None = None
    for line in lines:
        if fence is None and line.startswith("```"):
            fence = Fence(line)
            items.append(fence)
        elif fence is None:
            items.append(line)
        elif line.startswith("```"):
            fence.closing, fence = line, None
        else:
            fence.body.append(line)
    return items


def render_doc(items: Iterable[str | Fence]) -> str:
    lines: list[str] = []
    for item in items:
        lines += [item] if isinstance(item, str) else [item.opening, *item.body, item.closing]
    return "\n".join(lines) + "\n"


def parse_steps(body: Iterable[str]) -> list[Step]:
    """The commands of a console block; lines before the first command are not part of any."""
    steps: list[Step] = []
    terminator: str | None = None
    for line in body:
        if terminator is not None:
            steps[-1].command += "\n" + line
            terminator = None if line.strip() == terminator else terminator
        elif line.startswith("$ "):
            steps.append(Step(line[2:]))
            heredoc = HEREDOC.search(line)
            terminator = heredoc.group(2) if heredoc else None
        elif steps:
            steps[-1].expected.append(line)
    return steps


def is_server(command: str) -> bool:
    return SERVER.match(ENV_ASSIGNMENTS.sub("", command)) is not None and "||" not in command


def server_port(command: str) -> int:
    found = PORT.search(command)
    return int(found.group(1)) if found else 8080


# Comparing what a command printed with what the doc shows.


def normalise(line: str) -> str:
    for pattern, replacement in MASKS:
        line = pattern.sub(replacement, line)
    return line.strip()


def is_gap(expected: str) -> bool:
    return normalise(expected).replace("…", "...") == "..."


@functools.cache
def line_pattern(expected: str) -> re.Pattern[str]:
    parts = normalise(expected).replace("…", "...").split("...")
    return re.compile(".*".join(map(re.escape, parts)))


def matches(expected: Sequence[str], printed: Sequence[str], anywhere: bool = False) -> bool:
    """Whether printed is expected, gaps filled; with anywhere, unexpected lines may come between."""
    got = [normalise(line) for line in printed]
    positions = {0}
    for line in expected:
        positions = advance(line, got, positions, anywhere)
    return bool(positions) and (anywhere or len(got) in positions)


def advance(expected: str, got: Sequence[str], positions: set[int], anywhere: bool) -> set[int]:
    """Where matching can go on in got after expected, from any of positions."""
    if not positions:
        return positions
    if is_gap(expected):
        return set(range(min(positions), len(got) + 1))
    candidates = range(min(positions), len(got)) if anywhere else (p for p in positions if p < len(got))
    return {p + 1 for p in candidates if line_pattern(expected).fullmatch(got[p])}


# Processes: each in a session of its own, so that stopping one stops everything it started.


def stop(process: subprocess.Popen[bytes]) -> None:
    for sig, patience in ((signal.SIGTERM, STOP_TIMEOUT), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        if group_ended(process, patience):
            return


def group_ended(process: subprocess.Popen[bytes], patience: float) -> bool:
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        process.poll()
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def port_taken(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def answers(port: int, path: str) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        connection.request("GET", path)
        return connection.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def wait_until_serving(process: subprocess.Popen[bytes], port: int) -> bool:
    """True once the server serves, False if it exits first; TimeoutError when it does neither."""
    started = time.monotonic()
    while process.poll() is None:
        waited = time.monotonic() - started
        if waited > LIVE_TIMEOUT:
            raise TimeoutError
        if answers(port, "/v2/health/live") and (waited > LOADING_GRACE or answers(port, "/v2/health/ready")):
            return True
        time.sleep(0.2)
    return False


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    log: IO[bytes]

    def stop(self) -> list[str]:
        """Stop it and return what it printed."""
        stop(self.process)
        self.log.seek(0)
        printed = decode(self.log.read())
        self.log.close()
        return printed


@dataclass
class Outcome:
    ok: bool
    printed: list[str] = field(default_factory=list)
    note: str = ""  # what the checker saw besides the output: an exit code, a timeout, a taken port


def report(command: str, expected: Sequence[str], outcome: Outcome) -> None:
    shown = command.splitlines()[0][:SHOWN_WIDTH]
    say(f"  {'ok  ' if outcome.ok else 'FAIL'}   {shown}")
    if not outcome.ok:
        say("    expected:", *(f"      {line}" for line in expected))
        say("    got:", *(f"      {line}" for line in outcome.printed))
        if outcome.note:
            say(f"      [{outcome.note}]")


# The walk through one document.


class Walk:
    """One document's walk: its working directory, the file a marker announced, its servers."""

    def __init__(self, env: dict[str, str], fill: bool) -> None:
        self.env = env
        self.fill = fill
        self.cwd = ROOT
        self.pending_file: Path | None = None
        self.servers: dict[int, Server] = {}
        self.failures = 0

    def __enter__(self) -> Walk:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        for port in list(self.servers):
            self.stop_server(port)

    def follow(self, items: Iterable[str | Fence]) -> None:
        for item in items:
            if isinstance(item, str):
                self.follow_marker(item)
            elif item.language == "console":
                self.check_console(item)
            else:
                self.write_pending_file(item)

    def follow_marker(self, line: str) -> None:
        marker = MARKER.fullmatch(line.strip())
        if marker is None:
            return
        kind, value = marker.groups()
        if kind == "cwd":
            self.cwd = Path(os.path.normpath(ROOT / value))
            self.cwd.mkdir(parents=True, exist_ok=True)
        elif kind == "file":
            self.pending_file = self.cwd / value
        else:
            self.record(value, [], self.start_server(value, []))

    def write_pending_file(self, fence: Fence) -> None:
        if self.pending_file is not None:
            self.pending_file.parent.mkdir(parents=True, exist_ok=True)
            self.pending_file.write_text("\n".join(fence.body) + "\n", encoding="utf-8")
            self.pending_file = None

    def check_console(self, fence: Fence) -> None:
        steps = parse_steps(fence.body)
        filled = False
        for step in steps:
            outcome = self.run_step(step)
            if self.fill and not step.expected and outcome.printed:
                step.expected, filled = outcome.printed, True
                say(f"  filled {step.command.splitlines()[0][:SHOWN_WIDTH]}")
            else:
                self.record(step.command, step.expected, outcome)
        if filled:
            fence.body = [line for step in steps for line in step.lines()]

    def record(self, command: str, expected: Sequence[str], outcome: Outcome) -> None:
        report(command, expected, outcome)
        if not outcome.ok:
            self.failures += 1

    def run_step(self, step: Step) -> Outcome:
        if is_server(step.command):
            return self.start_server(step.command, step.expected)
        if cd := CD.fullmatch(step.command.strip()):
            return self.change_directory(cd.group(1))
        if step.command.strip() == ". .venv/bin/activate":
            return Outcome(True)
        return self.run_command(step.command, step.expected)

    def change_directory(self, path: str) -> Outcome:
        target = Path(os.path.normpath(self.cwd / path))
        if not target.is_dir():
            return Outcome(False, note=f"{target} is not a directory")
        self.cwd = target
        return Outcome(True)

    def spawn(self, command: str, stdout: int | IO[bytes]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            ["bash", "-c", command],
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def run_command(self, command: str, expected: Sequence[str]) -> Outcome:
        process = self.spawn(command, subprocess.PIPE)
        try:
            printed = decode(process.communicate(timeout=COMMAND_TIMEOUT)[0])
            return Outcome(matches(expected, printed), printed)
        except subprocess.TimeoutExpired:
            stop(process)
            return Outcome(False, decode(process.communicate()[0]), f"stopped after {COMMAND_TIMEOUT:.0f} s")
        finally:
            stop(process)

    def start_server(self, command: str, expected: Sequence[str]) -> Outcome:
        port = server_port(command)
        self.stop_server(port)
        if port_taken(port):
            return Outcome(False, note=f"port {port} is taken by a process this checker did not start")
        process = self.spawn_server(command, port)
        try:
            if wait_until_serving(process, port):
                return Outcome(True)
        except TimeoutError:
            return Outcome(False, self.stop_server(port), f"not serving after {LIVE_TIMEOUT:.0f} s")
        printed = self.stop_server(port)
        return Outcome(
            bool(expected) and matches(expected, printed, anywhere=True), printed, f"exit {process.returncode}"
        )

    def spawn_server(self, command: str, port: int) -> subprocess.Popen[bytes]:
        log = tempfile.TemporaryFile()  # noqa: SIM115 -- outlives this call; Server.stop closes it
        process = self.spawn(command, log)
        self.servers[port] = Server(process, log)
        return process

    def stop_server(self, port: int) -> list[str]:
        server = self.servers.pop(port, None)
        return server.stop() if server else []


def check_doc(path: Path, env: dict[str, str], fill: bool) -> int:
    """Walk one document; return how many of its checks failed."""
    say(str(path))
    items = parse_doc(path.read_text(encoding="utf-8").splitlines())
    with Walk(env, fill) as walk:
        walk.follow(items)
    if fill:
        path.write_text(render_doc(items), encoding="utf-8")
    return walk.failures


def environment() -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name not in MAKE_VARIABLES}
    env["PATH"] = os.pathsep.join([str(ROOT / ".venv" / "bin"), env.get("PATH", os.defpath)])
    # Pages start several servers at once; each takes a free gRPC port unless the page names one.
    env.setdefault("DANEEL_GRPC_PORT", "0")
    return env


def default_docs() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def exit_on_signal(signum: int, frame: FrameType | None) -> NoReturn:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--fill", action="store_true", help="paste the output of commands shown without any")
    parser.add_argument("docs", nargs="*", type=Path, help="markdown files (default: README.md, docs/**/*.md)")
    args = parser.parse_args(argv)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, exit_on_signal)
    env = environment()
    try:
        failures = sum(check_doc(path, env, args.fill) for path in args.docs or default_docs())
    except KeyboardInterrupt:
        return 130
    say(f"{failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
