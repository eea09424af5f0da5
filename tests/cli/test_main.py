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


def test_an_unknown_command_fails_with_one_line(daneel_cli: Any) -> None:
    done = daneel_cli("serv")
    assert done.returncode != 0
    assert "No such command 'serv'" in done.stderr
