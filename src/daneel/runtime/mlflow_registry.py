"""MLflow as a model source: registered models (`models:/NAME/VERSION`, `models:/NAME@ALIAS`,
`models:/NAME/latest`, `models:/NAME/STAGE`) and run artifacts (`runs:/RUN_ID/PATH`).

The tracking server is `MLFLOW_TRACKING_URI` (the registry `MLFLOW_REGISTRY_URI`, when set), read
each time a URI is resolved; MLflow's client reads `MLFLOW_TRACKING_USERNAME` and
`MLFLOW_TRACKING_PASSWORD`, or `MLFLOW_TRACKING_TOKEN`, itself when it calls the server. An alias,
`latest` and a stage move as versions are registered, so :func:`resolve` turns them into the version
they name now; a version never changes, so a resolved URI is what callers cache.

A folder fetched from `models:/` holds daneel's :data:`RECORD_FILE` beside `MLmodel`, naming the
version it holds: the version is known once, when the URI is resolved, and the folder may be served
by another process (`daneel fetch` in an init container, then `daneel serve DIR`).
"""

from __future__ import annotations

import logging
import os
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from daneel.errors import LoadError
from daneel.runtime.prepackaged import needs

log = logging.getLogger("daneel.mlflow")

SCHEMES = ("models", "runs")
#: What daneel writes beside MLmodel when it fetches a registered version: the URI, name and version.
RECORD_FILE = ".daneel-registered.yaml"
_FORMS = "expected models:/NAME/VERSION, models:/NAME@ALIAS, models:/NAME/latest or runs:/RUN_ID/PATH"
_CONNECT_TIMEOUT_S = 10.0
_RUN = re.compile(r"runs:/([^/]+)/(.+)")


@dataclass(frozen=True, slots=True)
class Reference:
    """A registry URI taken apart: the model's `name` and what picks its version (`3`, `@champion`,
    `latest`, a stage), or for `runs:/`, the run in `name` and the artifact path in `ref`."""

    uri: str
    scheme: str
    name: str
    ref: str

    @property
    def pinned(self) -> bool:
        """Whether the URI names a fixed set of files: a version, or a run's artifact."""
        return self.scheme == "runs" or self.ref.isdigit()

    @property
    def label(self) -> str:
        """A name for people reading the cache: `iris-3`, or the run's artifact path's last part."""
        return f"{self.name}-{self.ref.lstrip('@')}" if self.scheme == "models" else self.ref.rsplit("/", 1)[-1]

    @property
    def version(self) -> str | None:
        return self.ref if self.scheme == "models" and self.ref.isdigit() else None


def is_registry_uri(uri: str) -> bool:
    return uri.startswith(tuple(f"{scheme}:/" for scheme in SCHEMES))


def parse(uri: str) -> Reference:
    """The parts of a `models:/` or `runs:/` URI; any other form is a LoadError saying which are accepted."""
    if uri.startswith("runs:/"):
        match = _RUN.fullmatch(uri.rstrip("/"))
        if match is None:
            raise LoadError(f"{uri}: {_FORMS}")
        return Reference(uri, "runs", match.group(1), match.group(2))
    rest = uri.removeprefix("models:/").rstrip("/") if uri.startswith("models:/") else ""
    name, slash, ref = rest.partition("/")
    if not slash:
        name, at, alias = rest.partition("@")
        ref = f"@{alias}" if at and alias else ""
    if not name or not ref or "/" in ref or name.startswith("/"):
        raise LoadError(f"{uri}: {_FORMS}")
    return Reference(uri, "models", name, ref)


def resolve(uri: str, environ: Mapping[str, str] | None = None) -> Reference:
    """The pinned form of `uri`: an alias, `latest` or a stage becomes `models:/NAME/VERSION`.

    Only those ask the server; a version or a run's artifact is returned as it is.
    """
    reference = parse(uri)
    if reference.pinned:
        return reference
    version = _ask(reference, lambda client: _version(client, reference), environ)
    pinned = Reference(f"models:/{reference.name}/{version}", "models", reference.name, version)
    log.info("%s is version %s of %s (%s)", uri, version, reference.name, pinned.uri)
    return pinned


def download(reference: Reference, into: Path, environ: Mapping[str, str] | None = None) -> Path:
    """Download a pinned reference's files into the folder `into`; the folder or file they landed in."""
    artifacts = needs("mlflow.artifacts", "mlflow")
    tracking, registry = _uris(environ)
    into.mkdir(parents=True, exist_ok=True)
    local = _ask(
        reference,
        lambda _: artifacts.download_artifacts(
            artifact_uri=reference.uri, dst_path=str(into), tracking_uri=tracking, registry_uri=registry
        ),
        environ,
    )
    return Path(local)


def server(environ: Mapping[str, str] | None = None) -> str:
    """The tracking server that resolves registry URIs; a LoadError when none is set."""
    return _uris(environ)[0]


def record(folder: Path, reference: Reference) -> None:
    """Note in a fetched folder which registered version it holds; nothing for a run's artifact."""
    if reference.version is not None:
        fields = {"uri": reference.uri, "name": reference.name, "version": reference.version}
        (folder / RECORD_FILE).write_text(yaml.safe_dump(fields, sort_keys=False))


def registered_version(folder: Path) -> str | None:
    """The registered version a folder fetched from `models:/` holds, from daneel's record; else None."""
    try:
        fields = yaml.safe_load((folder / RECORD_FILE).read_text())
    except (OSError, yaml.YAMLError):
        return None
    version = fields.get("version") if isinstance(fields, dict) else None
    return str(version) if version is not None else None


def _uris(environ: Mapping[str, str] | None) -> tuple[str, str]:
    env = os.environ if environ is None else environ
    tracking = env.get("MLFLOW_TRACKING_URI", "")
    if not tracking:
        raise LoadError(
            "models:/ and runs:/ URIs are resolved by an MLflow tracking server: set MLFLOW_TRACKING_URI"
            " (and MLFLOW_TRACKING_USERNAME/PASSWORD or MLFLOW_TRACKING_TOKEN if it asks for them)"
        )
    return tracking, env.get("MLFLOW_REGISTRY_URI") or tracking


def _ask(reference: Reference, call: Callable[[Any], Any], environ: Mapping[str, str] | None = None) -> Any:
    """`call(client)`, with MLflow's errors made a LoadError naming the URI and the server."""
    tracking_module = needs("mlflow.tracking", "mlflow")
    exceptions = needs("mlflow.exceptions", "mlflow")
    tracking, registry = _uris(environ)
    _reachable(reference, tracking)
    try:
        return call(tracking_module.MlflowClient(tracking_uri=tracking, registry_uri=registry))
    except exceptions.MlflowException as exc:
        raise LoadError(f"{reference.uri}: {_reason(exc)} (MLflow at {_server(tracking)})") from exc
    except OSError as exc:
        raise LoadError(f"{reference.uri}: {exc} (MLflow at {_server(tracking)})") from exc


def _reachable(reference: Reference, tracking: str) -> None:
    """Fail at once when an HTTP tracking server does not accept connections: MLflow's client would
    retry for minutes before saying so."""
    parts = urlsplit(tracking)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=_CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise LoadError(
            f"{reference.uri}: cannot connect to the MLflow tracking server at {_server(tracking)} ({exc})"
        ) from exc


def _version(client: Any, reference: Reference) -> str:
    if reference.ref.startswith("@"):
        return str(client.get_model_version_by_alias(reference.name, reference.ref[1:]).version)
    versions = client.search_model_versions(f"name={_quoted(reference.name)}")
    if reference.ref.lower() != "latest":
        versions = [v for v in versions if str(v.current_stage).lower() == reference.ref.lower()]
    if not versions:
        picked = "" if reference.ref.lower() == "latest" else f" in stage {reference.ref!r}"
        raise LoadError(f"{reference.uri}: registered model {reference.name!r} has no versions{picked}")
    return str(max(int(v.version) for v in versions))


def _quoted(name: str) -> str:
    return f'"{name}"' if "'" in name else f"'{name}'"


def _reason(exc: Any) -> str:
    """MLflow's message without the traceback-like detail some of its errors append."""
    message = str(getattr(exc, "message", exc)).strip()
    return message.splitlines()[0] if message else type(exc).__name__


def _server(tracking: str) -> str:
    """Where the tracking server is, for messages: its host and port, never a user or password in the URI."""
    return urlsplit(tracking).netloc.rpartition("@")[2] or tracking
