"""`daneel fetch URI DIR`, against Python's own HTTP server in a subprocess."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import free_port

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def site(tmp_path: Path, iris: Any, wait_for: Callable[..., None]) -> Iterator[tuple[str, Path]]:
    """`python -m http.server` serving tmp_path/site, which holds iris.tar.gz; (its URL, the folder)."""
    root = tmp_path / "site"
    root.mkdir()
    shutil.make_archive(str(root / "iris"), "gztar", iris.path)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(root)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: _listening(port) or proc.poll() is not None, "http.server to listen")
        assert proc.poll() is None, "http.server exited"
        yield f"http://127.0.0.1:{port}", root
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_fetch_downloads_and_unpacks_into_the_folder(daneel_cli: Run, site: tuple[str, Path], tmp_path: Path) -> None:
    url, _ = site
    target = tmp_path / "mnt" / "models"
    result = daneel_cli("fetch", f"{url}/iris.tar.gz", str(target))
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == f"fetched {url}/iris.tar.gz into {target}\n"
    assert sorted(p.name for p in target.iterdir()) == ["model.joblib"]


def test_fetch_fills_a_folder_that_exists(daneel_cli: Run, site: tuple[str, Path], tmp_path: Path) -> None:
    url, _ = site
    target = tmp_path / "volume"
    target.mkdir()
    assert daneel_cli("fetch", f"{url}/iris.tar.gz", str(target)).returncode == 0
    assert sorted(p.name for p in target.iterdir()) == ["model.joblib"]  # nothing half-written beside it


def test_fetch_fails_with_one_line_naming_the_url(daneel_cli: Run, site: tuple[str, Path], tmp_path: Path) -> None:
    url, _ = site
    result = daneel_cli("fetch", f"{url}/wine.tar.gz", str(tmp_path / "wine"))
    assert result.returncode == 1
    assert result.stderr == f"Error: {url}/wine.tar.gz: HTTP 404 File not found\n"
    assert not (tmp_path / "wine").exists()


def test_fetch_unpacks_a_local_archive(daneel_cli: Run, site: tuple[str, Path], tmp_path: Path, iris: Any) -> None:
    _, root = site
    result = daneel_cli("fetch", str(root / "iris.tar.gz"), str(tmp_path / "copy"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "copy" / "model.joblib").read_bytes() == (iris.path / "model.joblib").read_bytes()


def test_fetch_needs_a_uri_and_a_folder(daneel_cli: Run) -> None:
    result = daneel_cli("fetch", "s3://bucket/model")
    assert result.returncode == 2
    assert "Missing argument 'DIR'" in result.stderr
