"""`daneel`: one command group; every subcommand fails with a one-line reason and a non-zero code."""

from __future__ import annotations

import difflib
import gc
import importlib

import click

from daneel.version import __version__

#: Each subcommand and the module that defines it under the same name (a dash there is an underscore). A module
#: is imported when its command runs (or help lists it), so `daneel serve` does not pay for the imports of
#: `daneel predict`.
COMMANDS = {
    "build": "daneel.cli.build",
    "convert": "daneel.cli.validate",
    "deploy-mlflow": "daneel.cli.deploy_mlflow",
    "detector": "daneel.cli.detector",
    "fetch": "daneel.cli.fetch",
    "init": "daneel.cli.init",
    "manifest": "daneel.cli.manifest",
    "operator": "daneel.cli.operator",
    "predict": "daneel.cli.predict",
    "schema": "daneel.cli.validate",
    "serve": "daneel.cli.serve",
    "validate": "daneel.cli.validate",
}


class _Commands(click.Group):
    """A group whose commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMANDS.get(cmd_name)
        if module is None:
            return None
        if cmd_name == "serve":
            # Starting a server makes many objects and frees few (imports, the model): collecting meanwhile
            # only costs time. The server turns the collector back on once its models have loaded.
            gc.disable()
        command: click.Command = getattr(importlib.import_module(module), cmd_name.replace("-", "_"))
        return command

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """As click's, with the commands a mistyped name is close to (click's own list is empty here)."""
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as exc:
            close = difflib.get_close_matches(args[0], COMMANDS) if args and args[0] not in COMMANDS else []
            if not close:
                raise
            raise click.UsageError(f"{exc.message} Did you mean {' or '.join(map(repr, close))}?", ctx) from None


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="daneel")
def cli() -> None:
    """Serve machine-learning models and Python classes as microservices."""


def main() -> None:
    cli()
