"""A raw ASGI baseline: V2 inference on one scikit-learn model with nothing between the socket and predict_proba.

It parses the V2 JSON with orjson, calls predict_proba on the first input and answers V2 JSON, on
uvicorn with httptools and uvloop. It checks nothing and routes only the paths the benchmark calls,
so it marks the ceiling that this Python stack allows on the machine: the row daneel is held to.

Run: .venv/bin/python bench/baseline.py MODEL.joblib --port 9000 [--name iris]
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import numpy as np
import orjson
import uvicorn

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON = [(b"content-type", b"application/json")]
HEALTH = ("/v2/health/ready", "/v2/health/live")


class V2Baseline:
    """The whole server: one infer path, answered by :meth:`infer`, and the two health paths."""

    def __init__(self, name: str) -> None:
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
        """The V2 JSON answer to the V2 JSON request `body`."""
        raise NotImplementedError


class Baseline(V2Baseline):
    """One scikit-learn model's predict_proba behind the infer path."""

    def __init__(self, model: Any, name: str) -> None:
        super().__init__(name)
        self.predict_proba = model.predict_proba

    def infer(self, body: bytes) -> bytes:
        tensor = orjson.loads(body)["inputs"][0]
        proba = self.predict_proba(np.asarray(tensor["data"], dtype=np.float64).reshape(tensor["shape"]))
        output = {"name": "predict_proba", "shape": list(proba.shape), "datatype": "FP64", "data": proba.ravel()}
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


def run(description: str, model_help: str, name: str, app: Callable[[str, str], V2Baseline]) -> None:
    """Serves `app(model, name)` as the command line asks, on uvicorn with uvloop and httptools."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("model", help=model_help)
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--name", default=name, help="the model name in the infer path")
    args = parser.parse_args()
    served = app(args.model, args.name)
    uvicorn.run(
        served, host=args.host, port=args.port, loop="uvloop", http="httptools", lifespan="off", access_log=False
    )


def main() -> None:
    import joblib  # here, not above: baseline_torch.py's virtualenv, which imports this module, has none

    def load(model: str, name: str) -> Baseline:
        return Baseline(joblib.load(model), name)

    run((__doc__ or "").splitlines()[0], "a joblib file holding an estimator with predict_proba", "iris", load)


if __name__ == "__main__":
    main()
