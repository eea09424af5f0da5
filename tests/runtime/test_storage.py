"""Model sources: local paths, a loopback HTTP server, and moto's S3 server in a subprocess."""

from __future__ import annotations

import io
import socket
import subprocess
import sys
import tarfile
import threading
import zipfile
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests

from conftest import free_port
from daneel.errors import LoadError
from daneel.runtime import storage

MODEL_FILES = ["model.joblib"]


class Site:
    """A loopback HTTP server on a thread: `files` maps a path to its body; a path in `short`
    announces its whole length but sends half of the body, then closes the connection."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.short: set[str] = set()
        self.requests: list[str] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), type("Handler", (_Handler,), {"site": self}))
        self.thread = threading.Thread(target=self.server.serve_forever)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


class _Handler(BaseHTTPRequestHandler):
    site: Site

    def do_GET(self) -> None:
        self.site.requests.append(self.path)
        body = self.site.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if self.path in self.site.short else body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def site() -> Iterator[Site]:
    server = Site()
    yield server
    server.close()


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def tar_bytes(files: dict[str, bytes], mode: str = "w:gz") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        for name, data in files.items():
            zipped.writestr(name, data)
    return buffer.getvalue()


@pytest.fixture
def model_bytes(iris: Any) -> bytes:
    return bytes((iris.path / "model.joblib").read_bytes())


# HTTP


def test_a_model_file_url_becomes_a_folder_holding_it(site: Site, cache: Path, model_bytes: bytes) -> None:
    site.files["/models/iris/model.joblib"] = model_bytes
    uri = site.url("/models/iris/model.joblib")
    folder = storage.fetch(uri, cache)
    assert folder.parent == cache
    assert listing(folder) == MODEL_FILES
    assert (folder / "model.joblib").read_bytes() == model_bytes
    assert storage.model_name(uri, folder) == "iris"


@pytest.mark.parametrize("suffix", [".tar.gz", ".tgz", ".zip"])
@pytest.mark.parametrize("top", ["", "iris/"])
def test_archives_are_unpacked(site: Site, cache: Path, model_bytes: bytes, suffix: str, top: str) -> None:
    files = {f"{top}model.joblib": model_bytes, f"{top}extra/notes.txt": b"notes"}
    site.files[f"/iris{suffix}"] = zip_bytes(files) if suffix == ".zip" else tar_bytes(files)
    folder = storage.fetch(site.url(f"/iris{suffix}"), cache)
    assert listing(folder) == ["extra/notes.txt", "model.joblib"]  # one top-level folder is the model folder
    assert (folder / "model.joblib").read_bytes() == model_bytes
    assert storage.model_name(site.url(f"/iris{suffix}"), folder) == "iris"


def test_a_complete_download_is_reused(site: Site, cache: Path, model_bytes: bytes) -> None:
    site.files["/iris.tar.gz"] = tar_bytes({"model.joblib": model_bytes})
    first = storage.fetch(site.url("/iris.tar.gz"), cache)
    second = storage.fetch(site.url("/iris.tar.gz"), cache)
    assert first == second
    assert site.requests == ["/iris.tar.gz"]


def test_a_connection_closed_mid_body_leaves_nothing_and_a_later_fetch_downloads(
    site: Site, cache: Path, model_bytes: bytes
) -> None:
    site.files["/iris/model.joblib"] = model_bytes
    site.short.add("/iris/model.joblib")
    uri = site.url("/iris/model.joblib")
    with pytest.raises(LoadError, match=rf"^{uri}: incomplete download"):
        storage.fetch(uri, cache)
    assert list(cache.iterdir()) == []
    site.short.clear()
    folder = storage.fetch(uri, cache)
    assert (folder / "model.joblib").read_bytes() == model_bytes
    assert site.requests == ["/iris/model.joblib"] * 2


def test_a_missing_file_is_a_load_error_naming_the_uri(site: Site, cache: Path) -> None:
    uri = site.url("/no/model.joblib")
    with pytest.raises(LoadError, match=rf"^{uri}: HTTP 404 Not Found$"):
        storage.fetch(uri, cache)
    assert list(cache.iterdir()) == []


def test_a_refused_connection_is_a_load_error(cache: Path) -> None:
    uri = f"http://127.0.0.1:{free_port()}/model.joblib"
    with pytest.raises(LoadError, match=rf"^{uri}: cannot connect \(.*[Cc]onnection refused"):
        storage.fetch(uri, cache)


def test_passwords_stay_out_of_messages(site: Site, cache: Path) -> None:
    uri = site.url("/private/model.joblib").replace("http://", "http://reader:s3cret@")
    with pytest.raises(LoadError) as caught:
        storage.fetch(uri, cache)
    assert "s3cret" not in caught.value.message
    assert caught.value.message.startswith("http://reader:***@127.0.0.1:")


def test_a_url_must_name_a_file(site: Site, cache: Path) -> None:
    with pytest.raises(LoadError, match="the URL names no file"):
        storage.fetch(site.url("/"), cache)


def test_an_archive_that_does_not_unpack_is_a_load_error(site: Site, cache: Path, model_bytes: bytes) -> None:
    site.files["/iris.tar.gz"] = tar_bytes({"model.joblib": model_bytes})[:200]
    with pytest.raises(LoadError, match=r"cannot unpack iris\.tar\.gz"):
        storage.fetch(site.url("/iris.tar.gz"), cache)
    assert list(cache.iterdir()) == []


def _symlink_out() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        link = tarfile.TarInfo("model/passwords")
        link.type, link.linkname = tarfile.SYMTYPE, "../../../etc/passwd"
        tar.addfile(link)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "archive"),
    [
        ("up.tar.gz", tar_bytes({"model.joblib": b"x", "../escaped.txt": b"gotcha"})),
        ("deep.tgz", tar_bytes({"a/../../escaped.txt": b"gotcha"})),
        ("absolute.tar.gz", tar_bytes({"/tmp/escaped.txt": b"gotcha"})),
        ("link.tar.gz", _symlink_out()),
        ("up.zip", zip_bytes({"model.joblib": b"x", "../escaped.txt": b"gotcha"})),
    ],
)
def test_archive_members_that_would_land_outside_are_refused(
    site: Site, tmp_path: Path, name: str, archive: bytes
) -> None:
    cache = tmp_path / "deep" / "cache"
    site.files[f"/{name}"] = archive
    with pytest.raises(LoadError, match=r"refusing '.*': it would be written outside the model folder"):
        storage.fetch(site.url(f"/{name}"), cache)
    assert list(cache.iterdir()) == []
    assert not list(tmp_path.rglob("escaped.txt"))


def test_progress_is_reported_up_to_the_total(site: Site, cache: Path) -> None:
    body = bytes(3 * storage.CHUNK + 5)
    site.files["/big/model.joblib"] = body
    calls: list[tuple[str, int, int | None]] = []
    storage.fetch(site.url("/big/model.joblib"), cache, lambda *call: calls.append(call))
    assert calls[-1] == (site.url("/big/model.joblib"), len(body), len(body))
    assert [done for _, done, _ in calls] == sorted(done for _, done, _ in calls)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_progress_line_is_drawn_on_a_terminal_only() -> None:
    assert storage.terminal_progress(io.StringIO()) is None
    terminal = Terminal()
    progress = storage.terminal_progress(terminal)
    assert progress is not None
    for done in (0, 1_000_000, 1_000_000, 4_000_000):
        progress("s3://b/iris", done, 4_000_000)
    assert terminal.getvalue() == (
        "\rs3://b/iris: 0.0 MB of 4.0 MB (0%)"
        "\rs3://b/iris: 1.0 MB of 4.0 MB (25%)"
        "\rs3://b/iris: 4.0 MB of 4.0 MB (100%)\n"
    )


# Local paths and the cache


def test_a_local_folder_is_used_where_it_is(iris: Any, cache: Path) -> None:
    assert storage.fetch(str(iris.path), cache) == iris.path.resolve()
    assert storage.fetch(iris.path.resolve().as_uri(), cache) == iris.path.resolve()
    assert not cache.exists()


def test_a_local_archive_is_unpacked_into_the_cache(tmp_path: Path, cache: Path, model_bytes: bytes) -> None:
    archive = tmp_path / "iris.zip"
    archive.write_bytes(zip_bytes({"model.joblib": model_bytes}))
    folder = storage.fetch(archive.as_uri(), cache)
    assert folder.parent == cache
    assert listing(folder) == MODEL_FILES
    assert storage.model_name(str(archive), folder) == "iris"


@pytest.mark.parametrize("uri", ["/no/such/model", "file:///no/such/model.zip"])
def test_a_missing_local_path_is_a_load_error(uri: str, cache: Path) -> None:
    with pytest.raises(LoadError, match=f"^{uri}: no such file or folder$"):
        storage.fetch(uri, cache)


def test_other_schemes_are_refused(cache: Path) -> None:
    with pytest.raises(LoadError, match=r"ftp://host/m: unsupported scheme ftp://; expected a local path, file://"):
        storage.fetch("ftp://host/m", cache)


def test_the_cache_folder_comes_from_the_environment_given() -> None:
    assert storage.default_cache_dir({"DANEEL_CACHE_DIR": "/srv/cache"}) == Path("/srv/cache")
    assert storage.default_cache_dir({}) == Path.home() / ".cache" / "daneel" / "models"


def test_a_download_into_an_existing_folder_replaces_what_it_brings(
    site: Site, tmp_path: Path, model_bytes: bytes
) -> None:
    mount = tmp_path / "mnt" / "models"
    (mount / "extra").mkdir(parents=True)
    (mount / "extra" / "stale.txt").write_text("stale")
    (mount / "keep.txt").write_text("kept")
    site.files["/m.tar.gz"] = tar_bytes({"model.joblib": model_bytes, "extra/new.txt": b"new"})
    assert storage.download(site.url("/m.tar.gz"), mount) == mount
    assert listing(mount) == ["extra/new.txt", "keep.txt", "model.joblib"]


@pytest.mark.parametrize(
    ("uri", "files", "name"),
    [
        ("s3://bucket/models/iris", ["model.joblib"], "iris"),
        ("s3://bucket/models/iris/", ["model.joblib"], "iris"),
        ("s3://iris", ["model.joblib"], "iris"),
        ("s3://bucket/iris/model.joblib", ["model.joblib"], "iris"),
        ("s3://bucket/model.joblib", ["model.joblib"], "bucket"),
        ("https://host/model.joblib", ["model.joblib"], "model"),
        ("https://host/a/iris.tgz", ["model.joblib"], "iris"),
        ("https://host/a/model.joblib", ["model.joblib", "other.txt"], "model.joblib"),
    ],
)
def test_the_name_a_uri_gives(tmp_path: Path, uri: str, files: list[str], name: str) -> None:
    for file in files:
        (tmp_path / file).write_text("")
    assert storage.model_name(uri, tmp_path) == name


# S3, on moto's server


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_listening(port, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _wait_listening(port: int, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(600):
        assert proc.poll() is None, "moto's server exited"
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        threading.Event().wait(0.1)
    pytest.fail("moto's server did not listen")


@pytest.fixture
def aws(s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The AWS variables a client and `daneel serve` read, pointing at moto; also set in this process."""
    env = {
        "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "DANEEL_CACHE_DIR": str(tmp_path / "cache"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return env


@pytest.fixture
def bucket(aws: dict[str, str], request: pytest.FixtureRequest) -> Callable[[dict[str, bytes]], str]:
    """Create a bucket of this test's own holding `objects` (key → bytes); return its name."""
    import boto3

    client = boto3.client("s3")  # the endpoint comes from AWS_ENDPOINT_URL

    def create(objects: dict[str, bytes]) -> str:
        name = request.node.name.lower().replace("_", "-")[:50].strip("-[]")
        client.create_bucket(Bucket=name)
        for key, data in objects.items():
            client.put_object(Bucket=name, Key=key, Body=data)
        return name

    return create


def test_an_s3_prefix_is_fetched_keeping_relative_paths(bucket: Any, model_bytes: bytes) -> None:
    name = bucket(
        {
            "models/iris/model.joblib": model_bytes,
            "models/iris/extra/notes.txt": b"notes",
            "models/iris/": b"",
            "models/iris-v2/model.joblib": b"other",
        }
    )
    folder = storage.fetch(f"s3://{name}/models/iris")
    assert folder.parent == storage.default_cache_dir()
    assert listing(folder) == ["extra/notes.txt", "model.joblib"]
    assert (folder / "model.joblib").read_bytes() == model_bytes


def test_an_s3_object_is_fetched_alone(bucket: Any, model_bytes: bytes) -> None:
    name = bucket({"iris/model.joblib": model_bytes, "iris/model.joblib.bak": b"old"})
    folder = storage.fetch(f"s3://{name}/iris/model.joblib")
    assert listing(folder) == MODEL_FILES
    assert storage.model_name(f"s3://{name}/iris/model.joblib", folder) == "iris"


def test_an_s3_archive_is_unpacked(bucket: Any, model_bytes: bytes) -> None:
    name = bucket({"iris.tar.gz": tar_bytes({"iris/model.joblib": model_bytes})})
    assert listing(storage.fetch(f"s3://{name}/iris.tar.gz")) == MODEL_FILES


def test_s3_errors_say_what_is_missing(bucket: Any, aws: dict[str, str]) -> None:
    name = bucket({"iris/model.joblib": b"x"})
    with pytest.raises(LoadError, match=r"^s3://no-such-bucket/iris: no such bucket 'no-such-bucket'$"):
        storage.fetch("s3://no-such-bucket/iris")
    with pytest.raises(LoadError, match=rf"^s3://{name}/wine: no objects under wine/$"):
        storage.fetch(f"s3://{name}/wine")
    assert list(Path(aws["DANEEL_CACHE_DIR"]).iterdir()) == []


def test_daneel_serve_an_s3_uri(serve: Any, bucket: Any, aws: dict[str, str], iris: Any) -> None:
    name = bucket({"models/iris/model.joblib": (iris.path / "model.joblib").read_bytes()})
    server = serve(f"s3://{name}/models/iris", env=aws)
    assert_predicts(server.url, "iris", iris)
    assert len(list(Path(aws["DANEEL_CACHE_DIR"]).iterdir())) == 1


def test_daneel_serve_an_http_archive(serve: Any, site: Site, tmp_path: Path, iris: Any) -> None:
    site.files["/iris.tar.gz"] = tar_bytes({"model.joblib": (iris.path / "model.joblib").read_bytes()})
    server = serve(site.url("/iris.tar.gz"), env={"DANEEL_CACHE_DIR": str(tmp_path / "cache")})
    assert_predicts(server.url, "iris", iris)


def assert_predicts(url: str, name: str, iris: Any) -> None:
    rows = iris.X[:2]
    body = {"inputs": [{"name": "x", "shape": list(rows.shape), "datatype": "FP64", "data": rows.ravel().tolist()}]}
    response = requests.post(f"{url}/v2/models/{name}/infer", json=body, timeout=30)
    assert response.status_code == 200, response.text
    np.testing.assert_allclose(
        np.array(response.json()["outputs"][0]["data"]).reshape(2, 3), iris.model.predict_proba(rows)
    )


def test_s3_keys_that_would_land_outside_are_refused(bucket: Any, aws: dict[str, str], tmp_path: Path) -> None:
    name = bucket({"iris/model.joblib": b"x", "iris/../../escaped.txt": b"gotcha"})
    with pytest.raises(LoadError, match=r"refusing '\.\./\.\./escaped\.txt': it would be written outside"):
        storage.fetch(f"s3://{name}/iris")
    assert list(Path(aws["DANEEL_CACHE_DIR"]).iterdir()) == []
    assert not list(tmp_path.rglob("escaped.txt"))
