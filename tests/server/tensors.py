"""One 2x2 array of every V2 datatype, with the edge values of each, for round-trip tests."""

import numpy as np

ARRAYS = {
    "BOOL": np.array([[True, False], [False, True]]),
    "UINT8": np.array([[0, 1], [254, 255]], dtype=np.uint8),
    "UINT16": np.array([[0, 1], [2, 65535]], dtype=np.uint16),
    "UINT32": np.array([[0, 1], [2, 2**32 - 1]], dtype=np.uint32),
    "UINT64": np.array([[0, 1], [2, 2**64 - 1]], dtype=np.uint64),
    "INT8": np.array([[-128, -1], [0, 127]], dtype=np.int8),
    "INT16": np.array([[-(2**15), -1], [0, 2**15 - 1]], dtype=np.int16),
    "INT32": np.array([[-(2**31), -1], [0, 2**31 - 1]], dtype=np.int32),
    "INT64": np.array([[-(2**63), -1], [0, 2**63 - 1]], dtype=np.int64),
    "FP16": np.array([[-2.5, 0.0], [0.125, 65504.0]], dtype=np.float16),
    "FP32": np.array([[-1.5, 0.0], [0.25, 3.0e38]], dtype=np.float32),
    "FP64": np.array([[-1.0e300, 0.1], [2.5e-300, 1.0e300]], dtype=np.float64),
    "BYTES": np.array([[b"hello", "wörld".encode()], [b"", b"\xff\x00\x01"]], dtype=object),
}
