"""`daneel serve TARGET`.

The serving stack is imported when the command runs rather than with this module, so that the
settings in :data:`BLAS_DEFAULTS` are in place before numpy, which everything serving imports,
loads OpenBLAS.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from pydantic import ValidationError

    from daneel.dataplane.repository import Scanner
    from daneel.runtime import loader
    from daneel.server import runner

#: OpenBLAS (numpy's and SciPy's each) starts a thread per core that, after each parallel call and once
#: as it loads, spins for about 0.1 s before it sleeps. A server's loop needs that core: spinning cost
#: `daneel serve` of the iris model 0.2 s of CPU while it started, which on a busy two-core machine
#: delayed readiness. 2**20 cycles (under a millisecond) still keeps the threads awake between calls
#: made back to back. Set by `daneel serve` unless the environment sets it already.
BLAS_DEFAULTS = {"OPENBLAS_THREAD_TIMEOUT": "20"}


@click.command()
@click.argument("target")
@click.option("--http-port", type=int, help="HTTP port (default 8080; 0 picks a free one).")
@click.option("--grpc-port", type=int, help="gRPC port (default 8081; 0 picks a free one).")
@click.option("--grpc/--no-grpc", default=None, help="Serve gRPC beside HTTP (default on).")
@click.option("--grpc-max-message-bytes", type=int, help="Largest gRPC message in or out (default 64 MiB).")
@click.option("--host", help="Address to listen on (default 0.0.0.0).")
@click.option("--workers", type=int, help="Processes serving the port (default 1).")
@click.option("--name", help="Serve the model under this name instead of the folder's.")
@click.option("--parameters", "params", help="Component parameters: JSON object or Seldon's [{name,value,type}] list.")
@click.option("--keep-going", is_flag=True, default=None, help="Keep serving other models if one fails to load.")
@click.option("--max-body-bytes", type=int, help="Reject larger request bodies with 413 (default 64 MiB).")
@click.option("--executor", type=click.Choice(["auto", "inline", "thread"]), help="Where sync user code runs.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), help="Log verbosity.")
@click.option("--log-format", type=click.Choice(["auto", "text", "json"]), help="text (default), json, or auto.")
@click.option(
    "--access-log", is_flag=True, default=None, help="Log each HTTP request and gRPC call: method, path, status, time."
)
@click.option(
    "--metrics/--no-metrics", default=None, help="Record Prometheus metrics, served at GET /metrics (default on)."
)
@click.option("--metrics-port", type=int, help="Serve GET /metrics on this port too (0 picks a free one).")
@click.option(
    "--request-log",
    metavar="URL|FILE",
    help="Log every request and response: CloudEvents to an http(s) URL, or JSON lines to a file.",
)
@click.option("--header-timeout", type=float, help="Seconds to send a request's headers; then 408 (default 10).")
@click.option("--body-timeout", type=float, help="Seconds to send a request's body; then 408 (default 60).")
@click.option("--keep-alive-timeout", type=float, help="Seconds an idle connection stays open (default 5).")
@click.option("--max-connections", type=int, help="Connections per process; one more gets 503 (default 2048).")
@click.option("--max-header-bytes", type=int, help="Largest request line and headers; then 431 (default 64 KiB).")
@click.option("--max-headers", type=int, help="Most headers in a request; then 431 (default 100).")
@click.option("--request-timeout", type=float, help="Seconds a model may take per request; then 504 (default none).")
@click.option("--shutdown-timeout", type=float, help="Seconds to finish requests after SIGTERM; then 503 (default 25).")
@click.option(
    "--auth-token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Clients must send this file's token as Authorization: Bearer (or set DANEEL_AUTH_TOKEN).",
)
@click.option(
    "--auth-protect",
    metavar="GROUPS",
    help="What the token guards: repository (default), metrics, feedback, inference, comma-separated, or all.",
)
@click.option("--tls-cert", type=click.Path(dir_okay=False, path_type=Path), help="Serve TLS with this certificate.")
@click.option("--tls-key", type=click.Path(dir_okay=False, path_type=Path), help="The TLS certificate's key.")
@click.option(
    "--tls-client-ca",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Mutual TLS: clients must present a certificate this CA signed.",
)
@click.option(
    "--components",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Deployments: DIR/<node name> holds the code of a node that only names a container image.",
)
def serve(target: str, name: str | None, params: str | None, components: Path | None, **options: Any) -> None:
    """Serve TARGET: a deployment file (.yaml), a model folder, a folder of model folders, a model file
    such as model.joblib (served under its folder's name), a model URI (file://, http(s)://, s3://, or
    a local .tar.gz/.zip) or an import path pkg.module:Class.

    Parameters also come from Seldon's PREDICTIVE_UNIT_PARAMETERS variable;
    --parameters wins over it. Seldon's PREDICTIVE_UNIT_HTTP_SERVICE_PORT and
    PREDICTIVE_UNIT_GRPC_SERVICE_PORT set the ports when no option or DANEEL_* variable does.
    """
    quiet_blas(os.environ)
    from pydantic import ValidationError

    from daneel.errors import DaneelError
    from daneel.observe import tracing
    from daneel.observe.logs import setup_logging
    from daneel.runtime import parameters
    from daneel.server import runner
    from daneel.server.settings import ServerSettings

    try:
        given = {**_seldon_ports(os.environ), **{k: v for k, v in options.items() if v is not None}}
        settings = ServerSettings(**given)
    except ValidationError as exc:
        raise click.UsageError(_as_options(exc)) from None
    setup_logging(settings.log_level, settings.log_format, capture=True)
    try:
        tracing.settings(os.environ)  # a bad OTEL_* value fails here, in one line, before anything listens
        extra = {
            **parameters.parse(os.environ.get("PREDICTIVE_UNIT_PARAMETERS"), "PREDICTIVE_UNIT_PARAMETERS"),
            **parameters.parse(params, "--parameters"),
        }
        specs, scan, build = _models(target, name, extra, components, settings.executor)
    except DaneelError as exc:
        raise click.ClickException(exc.message) from None
    try:
        code = runner.serve(specs, settings, build, scan)
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)


def quiet_blas(environ: MutableMapping[str, str]) -> None:
    """Put :data:`BLAS_DEFAULTS` in `environ` where it has no value of its own; before numpy is imported."""
    for key, value in BLAS_DEFAULTS.items():
        environ.setdefault(key, value)


def _models(
    target: str, name: str | None, extra: dict[str, Any], components: Path | None, executor: str
) -> tuple[list[loader.ComponentSpec], Scanner, runner.Build]:
    """What TARGET serves, how to build it, and how to find models added to it since.

    Each is built once here, to check all that can be checked before anything listens.
    """
    from daneel.runtime import loader, storage

    if _is_deployment(target):
        from daneel.traffic.build import build  # the graph machinery: for deployment files only

        specs = [_deployment(Path(target), name, extra, components)]
        build(specs[0], executor, state=":memory:")
        return specs, specs.copy, build
    found = loader.catalog(target, name, extra, progress=storage.terminal_progress(sys.stderr))
    specs = found.specs()
    for spec in specs:
        loader.build(spec, executor)
    return specs, found.specs, loader.build


def _is_deployment(target: str) -> bool:
    return Path(target).suffix.lower() in (".yaml", ".yml") and Path(target).is_file()


def _deployment(path: Path, name: str | None, extra: dict[str, Any], components: Path | None) -> loader.ComponentSpec:
    from daneel.errors import DaneelError

    if name is not None or extra:
        raise DaneelError("--name and --parameters are for a model; a deployment file names and configures its nodes")
    from daneel.spec import load
    from daneel.traffic.build import deployment_spec

    return deployment_spec(path, load(path, components), components)


#: Seldon's variables for a microservice's ports, and the settings they stand for.
_SELDON_PORTS = {
    "http_port": ("PREDICTIVE_UNIT_HTTP_SERVICE_PORT", "PREDICTIVE_UNIT_SERVICE_PORT"),
    "grpc_port": ("PREDICTIVE_UNIT_GRPC_SERVICE_PORT",),
}


def _seldon_ports(environ: Mapping[str, str]) -> dict[str, str]:
    """Ports from Seldon's variables, as a Seldon component image is run, unless daneel's own are set."""
    found = {}
    for setting, names in _SELDON_PORTS.items():
        value = next((environ[name] for name in names if environ.get(name)), None)
        if value is not None and f"DANEEL_{setting.upper()}" not in environ:
            found[setting] = value
    return found


def _as_options(exc: ValidationError) -> str:
    """Settings errors in terms of the options the user typed."""
    return "; ".join(f"--{'-'.join(str(p) for p in e['loc']).replace('_', '-')}: {e['msg']}" for e in exc.errors())
