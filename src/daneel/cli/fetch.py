"""`daneel fetch URI DIR`: download a model, as an init container does before `daneel serve DIR`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from daneel.errors import DaneelError
from daneel.runtime import storage


@click.command()
@click.argument("uri")
@click.argument("directory", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
def fetch(uri: str, directory: Path) -> None:
    """Download the model at URI into the folder DIR.

    URI is an s3://bucket/prefix, an http(s):// URL of a model file or archive (.tar.gz, .tgz,
    .zip), an MLflow models:/NAME/VERSION, models:/NAME@ALIAS or runs:/RUN_ID/PATH (through
    MLFLOW_TRACKING_URI), a file:// URI or a local path. Archives are unpacked. DIR is created if missing; entries
    of the same name in it are replaced. Nothing is written unless all of it arrives.
    """
    try:
        storage.download(uri, directory, storage.terminal_progress(sys.stderr))
    except DaneelError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"fetched {storage.shown(uri)} into {directory}")
