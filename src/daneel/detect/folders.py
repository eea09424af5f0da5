"""The detector folder: `detector.json`, `arrays.npz` and, for isolation-forest, `model.joblib`.

`detector.json` says what the detector is (format, kind, method, threshold, window, settings, feature names,
the daneel that wrote it); `arrays.npz` holds the features' low, high, mean and std and the method's arrays
(training scores, reference sample, location and precision, category codes and counts). The same detector and
data always give the same bytes: the archive's entries carry a fixed date.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from daneel.detect.detectors import Fitted, assemble, check_method, percentile_threshold
from daneel.detect.features import Features
from daneel.detect.options import LOAD_OPTIONS, check
from daneel.errors import InvalidInput, LoadError
from daneel.version import __version__

FORMAT = 1
SPEC = "detector.json"
ARRAYS = "arrays.npz"
MODEL = "model.joblib"
_FEATURES = ("low", "high", "mean", "std")
_FIXED_DATE = (1980, 1, 1, 0, 0, 0)


def save(fitted: Fitted, folder: Path) -> None:
    """Write `fitted` into `folder` (created if missing), replacing a detector saved there before."""
    folder.mkdir(parents=True, exist_ok=True)
    features = fitted.features
    arrays = {"low": features.low, "high": features.high, "mean": features.mean, "std": features.std}
    _write_arrays(folder / ARRAYS, {**arrays, **fitted.arrays})
    model = folder / MODEL
    if fitted.method == "isolation-forest":
        import joblib

        joblib.dump(getattr(fitted.scorer, "model", None), model)
    else:
        model.unlink(missing_ok=True)
    (folder / SPEC).write_text(json.dumps(_spec(fitted), indent=2, sort_keys=True) + "\n")


def is_detector(folder: Path) -> bool:
    return (folder / SPEC).is_file()


def load(folder: Path, overrides: Mapping[str, Any] | None = None) -> Fitted:
    """The detector saved in `folder`, with `overrides` (a deployment's parameters) applied.

    LoadError says why it cannot: not a detector folder, a format this daneel does not read, a missing file or
    framework, or a parameter that is unknown or wrong (`parameters.<key>: ...`).
    """
    spec = _read_spec(folder)
    kind, method = spec["kind"], spec["method"]
    arrays = _read_arrays(folder / ARRAYS)
    try:
        features = Features(tuple(map(str, spec["features"])), *(arrays.pop(name) for name in _FEATURES))
        if any(len(array) != len(features.names) for array in (features.low, features.high, features.mean)):
            raise LoadError(f"{folder}: {ARRAYS} does not describe the {len(features.names)} features {SPEC} lists")
        threshold, window, settings = _overridden(spec, arrays, overrides or {})
        model = _read_model(folder / MODEL) if method == "isolation-forest" else None
        return assemble(kind, method, features, threshold, window, settings, arrays, model)
    except KeyError as exc:
        raise LoadError(f"{folder}: the detector lacks {exc.args[0]!r}; fit it again") from None
    except ValueError as exc:  # settings that do not match the features, such as a categorical column it lacks
        raise LoadError(f"{folder}: the detector is inconsistent ({exc}); fit it again") from None


def _spec(fitted: Fitted) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "kind": fitted.kind,
        "method": fitted.method,
        "threshold": fitted.threshold,
        "window": fitted.window,
        "settings": fitted.settings,
        "features": list(fitted.features.names),
        "daneel": __version__,
    }


def _read_spec(folder: Path) -> dict[str, Any]:
    path = folder / SPEC
    if not path.is_file():
        raise LoadError(f"{folder} is not a detector folder: it has no {SPEC} (make one with `daneel detector fit`)")
    try:
        spec = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LoadError(f"{path}: cannot read it: {exc}") from None
    if not isinstance(spec, dict) or spec.get("format") != FORMAT:
        found = spec.get("format") if isinstance(spec, dict) else None
        raise LoadError(f"{path}: format {found!r} is not one daneel {__version__} reads (it reads {FORMAT})")
    try:
        check_method(spec.get("kind", ""), spec.get("method", ""))
    except InvalidInput as exc:
        raise LoadError(f"{path}: {exc.message}") from None
    if not isinstance(spec.get("features"), list) or not isinstance(spec.get("settings"), dict):
        raise LoadError(f"{path}: expected a list of features and a mapping of settings")
    return spec


def _overridden(
    spec: dict[str, Any], arrays: dict[str, np.ndarray], overrides: Mapping[str, Any]
) -> tuple[float, int, dict[str, Any]]:
    """The threshold, window and settings once a deployment's parameters are applied."""
    method, settings = spec["method"], dict(spec["settings"])
    threshold, window = float(spec["threshold"]), int(spec["window"])
    allowed = LOAD_OPTIONS[method]
    if "threshold" in overrides and "percentile" in overrides:
        raise LoadError("parameters.threshold: give a threshold or a percentile, not both")
    for key, value in overrides.items():
        if key not in allowed:
            raise LoadError(
                f"parameters.{key}: not a parameter of {method} detectors; expected one of {', '.join(allowed)}"
            )
        try:
            checked = check(key, value)
        except ValueError as exc:
            raise LoadError(f"parameters.{key}: {exc}") from None
        if key == "percentile":
            threshold, settings["percentile"] = percentile_threshold(arrays["scores"], checked), checked
        elif key == "threshold":
            threshold, settings["percentile"] = checked, None
        elif key == "p_value":
            threshold = checked
        elif key == "window":
            window = checked
        else:
            settings[key] = checked
    return threshold, window, settings


def _write_arrays(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        for name in sorted(arrays):
            entry = zipfile.ZipInfo(f"{name}.npy", date_time=_FIXED_DATE)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            archive.writestr(entry, buffer.getvalue())


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise LoadError(f"{path}: cannot read the detector's arrays: {exc}") from None


def _read_model(path: Path) -> Any:
    from daneel.runtime.prepackaged import needs

    needs("sklearn.ensemble", "detectors")
    import joblib

    try:
        return joblib.load(path)
    except Exception as exc:  # unpickling raises whatever the pickled classes raise
        raise LoadError(f"{path}: cannot load the isolation forest: {type(exc).__name__}: {exc}") from exc
