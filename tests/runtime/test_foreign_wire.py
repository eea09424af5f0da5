"""The frames daneel sends a Node.js or Java child, and what `daneel serve` says when the language is missing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.runtime.foreign import write_folder

from daneel.errors import InvalidInput
from daneel.runtime.languages import wire


def round_trip(data: Any) -> tuple[dict[str, Any], Any]:
    blobs: list[bytes] = []
    header = {"x": wire.value(data, blobs), "m": "predict"}
    frame = wire.encode(7, header, blobs)
    assert int.from_bytes(frame[:4], "little") == len(frame) - 4
    decoded = wire.decode(frame[4:])
    assert decoded.id == 7
    return decoded.header, wire.unvalue(decoded.header["x"], decoded.blobs)


def test_numbers_travel_as_float64_bytes_outside_the_header() -> None:
    header, data = round_trip(np.arange(6, dtype=np.int32).reshape(2, 3))

    assert header["x"] == {"f64": [2, 3], "blob": 0}
    assert header["blobs"] == [48]
    np.testing.assert_array_equal(data, [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]])
    assert data.dtype == np.float64
    data[0, 0] = 9  # a writable array, as a Python transformer after it may change it in place


def test_text_bytes_and_objects_travel_as_json() -> None:
    assert round_trip("hello")[1] == "hello"
    assert round_trip(np.array([b"a", b"b"], dtype=object))[1] == ["a", "b"]
    assert round_trip({"x": np.array([1.5]), "n": np.int64(2)})[1] == {"x": [1.5], "n": 2}


def test_what_cannot_be_sent_is_invalid_input_naming_the_field() -> None:
    with pytest.raises(InvalidInput) as caught:
        wire.value(object(), [], "truth")
    assert caught.value.message == "truth: object values cannot be sent to the component's process"


def test_a_missing_node_stops_serve_with_a_message_naming_it(serve: Any, tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "js", {"MyModel.js": "module.exports = class { predict(X) { return X; } };\n"})

    server = serve.exits(folder, env={"PATH": str(tmp_path / "nothing")})

    assert server.returncode != 0
    assert "a Node.js component needs node on the PATH" in server.stderr
