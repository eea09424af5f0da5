"""A raw ASGI baseline for a PyTorch model: V2 inference on a `torch.export` program and nothing else.

The same stack as baseline.py (uvicorn with httptools and uvloop, orjson): it parses the V2 JSON,
runs the program's module on the first input as FP32 under torch.inference_mode and answers V2
JSON. It checks nothing and routes only the paths the benchmark calls: the ceiling that daneel's
PyTorch runtime is compared with.

Run: bench/.venv-daneel-torch/bin/python bench/baseline_torch.py MODEL.pt2 --port 9000 [--name mlp]
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import torch
from baseline import V2Baseline, run


class TorchBaseline(V2Baseline):
    """One module behind the infer path."""

    def __init__(self, module: Any, name: str) -> None:
        super().__init__(name)
        self.module = module

    def infer(self, body: bytes) -> bytes:
        tensor = orjson.loads(body)["inputs"][0]
        rows = np.asarray(tensor["data"], dtype=np.float32).reshape(tensor["shape"])
        with torch.inference_mode():
            result = self.module(torch.from_numpy(rows)).numpy()
        output = {"name": "output-0", "shape": list(result.shape), "datatype": "FP32", "data": result.ravel()}
        return orjson.dumps({"model_name": self.name, "outputs": [output]}, option=orjson.OPT_SERIALIZE_NUMPY)


def main() -> None:
    def load(model: str, name: str) -> TorchBaseline:
        return TorchBaseline(torch.export.load(model).module(), name)

    run((__doc__ or "").splitlines()[0], "a torch.export program saved with torch.export.save (model.pt2)", "mlp", load)


if __name__ == "__main__":
    main()
