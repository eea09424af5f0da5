"""`daneel`: the command group, whose commands are imported only when used."""

from __future__ import annotations

from typing import Any

import pytest

from daneel.cli.main import COMMANDS


def test_help_lists_every_command_with_its_summary(daneel_cli: Any) -> None:
    done = daneel_cli("--help")
    assert done.returncode == 0, done.stderr
    listed = done.stdout.split("Commands:")[1].split()
    assert [word for word in listed if word in COMMANDS] == sorted(COMMANDS)
    assert "Serve TARGET" in done.stdout


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_each_command_has_its_own_help(daneel_cli: Any, command: str) -> None:
    done = daneel_cli(command, "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"Usage: daneel {command} ")


@pytest.mark.parametrize(
    ("typed", "meant"), [("serv", "serve"), ("predcit", "predict"), ("deploy-mlfow", "deploy-mlflow")]
)
def test_a_mistyped_command_is_a_usage_error_naming_the_command_meant(daneel_cli: Any, typed: str, meant: str) -> None:
    done = daneel_cli(typed)
    assert done.returncode == 2
    assert done.stderr.startswith("Usage: daneel [OPTIONS] COMMAND [ARGS]...")
    assert done.stderr.strip().splitlines()[-1] == f"Error: No such command '{typed}'. Did you mean '{meant}'?"


def test_a_command_like_none_suggests_nothing(daneel_cli: Any) -> None:
    done = daneel_cli("xyzzy")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == "Error: No such command 'xyzzy'."
