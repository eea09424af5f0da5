"""Helpers for the tests of Node.js and Java components: folders, and waits on a child or a server."""

from __future__ import annotations

import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import requests

#: Long enough for a restart after a few backoffs, or a JDK compiling, on a loaded two-core machine.
WAIT_S = 90.0


def write_folder(folder: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return folder


def wait_for(condition: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:.0f}s for {what}")
        time.sleep(0.05)


def wait_status(url: str, status: int, containing: str = "", timeout: float = WAIT_S) -> requests.Response:
    """The first answer from GET `url` with `status` (and `containing` in its body)."""
    found: list[requests.Response] = []

    def answered() -> bool:
        response = requests.get(url, timeout=10)
        found[:] = [response]
        return response.status_code == status and containing in response.text

    wait_for(answered, f"{url} to answer {status} {containing}".strip(), timeout)
    return found[0]


def child_gone(pid: int) -> bool:
    """Whether process `pid` has exited (a zombie not yet reaped counts as gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return "\nState:\tZ" in status
