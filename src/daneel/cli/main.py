"""`daneel`: one command group; every subcommand fails with a one-line reason and a non-zero code."""

from __future__ import annotations

import click

from daneel.cli.fetch import fetch
from daneel.cli.predict import predict
from daneel.cli.serve import serve
from daneel.cli.validate import convert, schema, validate
from daneel.version import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="daneel")
def cli() -> None:
    """Serve machine-learning models and Python classes as microservices."""


cli.add_command(serve)
cli.add_command(predict)
cli.add_command(fetch)
cli.add_command(validate)
cli.add_command(convert)
cli.add_command(schema)


def main() -> None:
    cli()
