"""`daneel serve TARGET`."""

from __future__ import annotations

import os
import sys
from typing import Any

import click
from pydantic import ValidationError

from daneel.errors import DaneelError
from daneel.runtime import loader, parameters
from daneel.server import runner
from daneel.server.logs import setup_logging
from daneel.server.settings import ServerSettings


@click.command()
@click.argument("target")
@click.option("--http-port", type=int, help="HTTP port (default 8080; 0 picks a free one).")
@click.option("--host", help="Address to listen on (default 0.0.0.0).")
@click.option("--workers", type=int, help="Processes serving the port (default 1).")
@click.option("--name", help="Serve the model under this name instead of the folder's.")
@click.option("--parameters", "params", help="Component parameters: JSON object or Seldon's [{name,value,type}] list.")
@click.option("--keep-going", is_flag=True, default=None, help="Keep serving other models if one fails to load.")
@click.option("--max-body-bytes", type=int, help="Reject larger request bodies with 413 (default 64 MiB).")
@click.option("--executor", type=click.Choice(["auto", "inline", "thread"]), help="Where sync user code runs.")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), help="Log verbosity.")
def serve(target: str, name: str | None, params: str | None, **options: Any) -> None:
    """Serve TARGET: a model folder or an import path pkg.module:Class.

    Parameters also come from Seldon's PREDICTIVE_UNIT_PARAMETERS variable;
    --parameters wins over it.
    """
    try:
        settings = ServerSettings(**{k: v for k, v in options.items() if v is not None})
    except ValidationError as exc:
        raise click.UsageError(_as_options(exc)) from None
    setup_logging(settings.log_level)
    try:
        extra = {
            **parameters.parse(os.environ.get("PREDICTIVE_UNIT_PARAMETERS"), "PREDICTIVE_UNIT_PARAMETERS"),
            **parameters.parse(params, "--parameters"),
        }
        spec = loader.resolve(target, name, extra)
        loader.build(spec, settings.executor)  # checks parameters before anything listens
    except DaneelError as exc:
        raise click.ClickException(exc.message) from None
    try:
        code = runner.serve([spec], settings)
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)


def _as_options(exc: ValidationError) -> str:
    """Settings errors in terms of the options the user typed."""
    return "; ".join(f"--{'-'.join(str(p) for p in e['loc']).replace('_', '-')}: {e['msg']}" for e in exc.errors())
