"""A raw ASGI baseline for a PyTorch model: V2 inference on a `torch.export` program and nothing else.

The same stack as baseline.py (uvicorn with httptools and uvloop, orjson): it parses the V2 JSON,
runs the program's module on the first input as FP32 under torch.inference_mode and answers V2
JSON. It checks nothing and routes only the paths the benchmark calls: the ceiling that daneel's
PyTorch runtime is compared with.

Run: bench/.venv-daneel-torch/bin/python bench/baseline_torch.py MODEL.pt2 --port 9000 [--name mlp]
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import numpy as np
import orjson
import torch
import uvicorn

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON = [(b"content-type", b"application/json")]
HEALTH = ("/v2/health/ready", "/v2/health/live")


class TorchBaseline:
    """The whole server: one module behind one infer path and the two health paths."""

    def __init__(self, module: Any, name: str) -> None:
        self.module = module
        self.name = name
        self.infer_path = f"/v2/models/{name}/infer"

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        path = scope["path"]
        if path == self.infer_path and scope["method"] == "POST":
            await respond(send, 200, self.infer(await read_body(receive)))
        elif path in HEALTH:
            await respond(send, 200, b"")
        else:
            await respond(send, 404, b'{"error":"not found"}')

    def infer(self, body: bytes) -> bytes:
        tensor = orjson.loads(body)["inputs"][0]
        rows = np.asarray(tensor["data"], dtype=np.float32).reshape(tensor["shape"])
        with torch.inference_mode():
            result = self.module(torch.from_numpy(rows)).numpy()
        output = {"name": "output-0", "shape": list(result.shape), "datatype": "FP32", "data": result.ravel()}
        return orjson.dumps({"model_name": self.name, "outputs": [output]}, option=orjson.OPT_SERIALIZE_NUMPY)


async def read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def respond(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": JSON})
    await send({"type": "http.response.body", "body": body})


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("model", help="a torch.export program saved with torch.export.save (model.pt2)")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--name", default="mlp", help="the model name in the infer path")
    args = parser.parse_args()
    module = torch.export.load(args.model).module()
    app = TorchBaseline(module, args.name)
    uvicorn.run(app, host=args.host, port=args.port, loop="uvloop", http="httptools", lifespan="off", access_log=False)


if __name__ == "__main__":
    main()
