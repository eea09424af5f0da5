"""Model sources: a local folder or archive, file://, http(s):// and s3:// URIs, and MLflow's
models:/ and runs:/ URIs (resolved through the tracking server, see :mod:`daneel.runtime.mlflow_registry`).

:func:`fetch` gives a local folder for any of them. Downloads go to a cache folder named after
a hash of the URI and are reused once complete. Each is built in a hidden staging folder and
moved into place only when every byte has arrived (HTTP Content-Length and S3 object sizes are
checked) and every archive has unpacked, so a failed or interrupted download leaves nothing a
later call could take for a model: that call downloads again.

A single file becomes a folder holding it under its own name; a `.tar.gz`, `.tgz`, `.tar` or
`.zip` is unpacked instead, refusing members that would land outside the folder. An archive
whose entries all sit in one top-level folder gives that folder.

An MLflow alias (`models:/iris@champion`) or `latest` is resolved to the version it names now, and
that version (`models:/iris/3`, on that tracking server) is what is cached: an alias moves, a
version does not. The folder of a registered version holds daneel's record of that version
(:func:`daneel.runtime.mlflow_registry.record`), which is what the model's metadata reports.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tarfile
import uuid
import zipfile
import zlib
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import unquote, urlsplit

from daneel.errors import LoadError
from daneel.runtime import mlflow_registry
from daneel.runtime.prepackaged import needs

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("daneel.storage")

ARCHIVES = (".tar.gz", ".tgz", ".tar", ".zip")
SCHEMES = ("file", "http", "https", "s3", *mlflow_registry.SCHEMES)
CHUNK = 1024 * 1024
_TIMEOUT_S = 60.0
_CONNECT_TIMEOUT_S = 10.0
_UNSAFE = re.compile(r"[^\w.-]")

#: Called as bytes arrive with what is fetched, the bytes so far, and the total when known.
Progress = Callable[[str, int, int | None], None]


class _Failed(Exception):
    """Why a download failed; :func:`download` makes it a LoadError naming the URI."""


def is_uri(target: str) -> bool:
    return re.match(r"[A-Za-z][A-Za-z0-9+.-]*://|(models|runs):/", target) is not None


def is_archive(name: str) -> bool:
    return name.lower().endswith(ARCHIVES)


def default_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """`$DANEEL_CACHE_DIR`, else ~/.cache/daneel/models; read when called, never at import."""
    env = os.environ if environ is None else environ
    return Path(env.get("DANEEL_CACHE_DIR") or Path.home() / ".cache" / "daneel" / "models")


def fetch(uri: str, cache_dir: Path | None = None, progress: Progress | None = None) -> Path:
    """A local folder holding what `uri` names. A local folder is used where it is."""
    scheme = _scheme(uri)
    local = _local_path(uri) if scheme == "file" else None
    if local is not None and local.is_dir():
        return local.resolve()
    if scheme in mlflow_registry.SCHEMES:
        uri = mlflow_registry.resolve(uri).uri  # an alias moves: the version it names now is what is cached
    dest = (cache_dir or default_cache_dir()) / cache_key(uri)
    if _cached(dest, scheme):
        log.info("using %s, cached in %s", shown(uri), dest)
        return dest
    return download(uri, dest, progress)


def download(uri: str, dest: Path, progress: Progress | None = None) -> Path:
    """Put what `uri` names into the folder `dest`, all of it or nothing.

    A `dest` that exists (a volume's mount point, say) is staged inside and filled entry by entry;
    otherwise it is staged beside and renamed into place.
    """
    scheme = _scheme(uri)
    inside = dest.is_dir()
    staging = (dest if inside else dest.parent) / f".{dest.name}.partial-{uuid.uuid4().hex[:12]}"
    try:
        staging.mkdir(parents=True)
        _settle(_stage(uri, scheme, staging, progress), dest, inside)
    except _Failed as exc:
        raise LoadError(f"{shown(uri)}: {exc}") from exc.__cause__
    except OSError as exc:
        raise LoadError(f"{shown(uri)}: {exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("fetched %s into %s", shown(uri), dest)
    return dest


def _cached(dest: Path, scheme: str) -> bool:
    """Whether `dest` holds a finished download. A registered version's holds daneel's record of its
    version too: a copy cached without one, by a daneel before the record, is fetched again."""
    return dest.is_dir() and (scheme != "models" or mlflow_registry.registered_version(dest) is not None)


def cache_key(uri: str) -> str:
    """The cache folder of `uri`: a hash, then its last segment for people reading the cache."""
    identity = uri
    scheme = _scheme(uri)
    local = _local_path(uri) if scheme == "file" else None
    if local is not None and local.is_file():
        stat = local.stat()  # a local archive that changes is another model
        identity = f"{local.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    if scheme in mlflow_registry.SCHEMES:
        identity = f"{mlflow_registry.server()} {uri}"  # version 3 of iris on one server is not on another
    digest = hashlib.sha256(identity.encode()).hexdigest()[:16]
    segments = [mlflow_registry.parse(uri).label] if scheme in mlflow_registry.SCHEMES else _segments(uri)
    return f"{digest}-{_UNSAFE.sub('_', _without_archive_suffix(segments[-1]))[:60]}" if segments else digest


def model_name(uri: str, folder: Path) -> str:
    """The name a fetched model is served under: the URI's last segment without an archive suffix.

    A single model file is named after the segment before it: `.../iris/model.joblib` is `iris`.
    """
    if uri.startswith("models:/"):
        return mlflow_registry.parse(uri).name
    segments = _segments(uri)
    if not segments:
        return "model"
    last = segments[-1]
    if _without_archive_suffix(last) != last:
        return _without_archive_suffix(last)
    if [entry.name for entry in folder.iterdir()] == [last] and (folder / last).is_file():
        return segments[-2] if len(segments) > 1 else PurePosixPath(last).stem
    return last


def _without_archive_suffix(name: str) -> str:
    for suffix in ARCHIVES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def shown(uri: str) -> str:
    """The URI as messages show it, without a password."""
    return re.sub(r"//([^/@:]*):[^/@]*@", r"//\1:***@", uri)


def _scheme(uri: str) -> str:
    scheme = urlsplit(uri).scheme.lower() if is_uri(uri) else "file"
    if scheme not in SCHEMES:
        raise LoadError(
            f"{shown(uri)}: unsupported scheme {scheme}://; expected a local path, file://, http://, https://, s3://,"
            " models:/ or runs:/"
        )
    return scheme


def _local_path(uri: str) -> Path:
    if not is_uri(uri):
        return Path(uri)
    parts = urlsplit(uri)
    if parts.netloc not in ("", "localhost"):
        raise LoadError(f"{uri}: a file:// URI names a file on this machine (file:///path)")
    return Path(unquote(parts.path))


def _segments(uri: str) -> list[str]:
    if not is_uri(uri):
        return [part for part in Path(uri).parts if part not in ("/", ".", "..")]
    parts = urlsplit(uri)
    segments = [unquote(part) for part in parts.path.split("/") if part]
    return [parts.netloc, *segments] if parts.scheme == "s3" else segments


def _stage(uri: str, scheme: str, staging: Path, progress: Progress | None) -> Path:
    """Build the model folder for `uri` under `staging` and return it."""
    model = staging / "model"
    if scheme in mlflow_registry.SCHEMES:
        return _registry(uri, staging, model)
    if scheme == "s3":
        file = _s3(uri, staging, model, progress)
    elif scheme in ("http", "https"):
        file = _http(uri, staging, progress)
    else:
        file = _local(uri, staging, model)
    return model if file is None else _as_folder(file, model)


def _registry(uri: str, staging: Path, model: Path) -> Path:
    """A registered version or a run's artifact, resolved once: the version fetched is the one recorded."""
    reference = mlflow_registry.resolve(uri)
    got = mlflow_registry.download(reference, staging / "download")
    folder = got if got.is_dir() else _as_folder(got, model)
    mlflow_registry.record(folder, reference)
    return folder


def _settle(model: Path, dest: Path, inside: bool) -> None:
    if not inside:
        try:
            model.rename(dest)
        except OSError:
            if not dest.is_dir():
                raise  # otherwise another process has just finished the same download
        return
    for entry in model.iterdir():
        target = dest / entry.name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(entry, target)


def _as_folder(file: Path, model: Path) -> Path:
    """One file as a model folder: an archive unpacked, any other file in a folder of its own."""
    model.mkdir()
    if not is_archive(file.name):
        file.rename(model / file.name)
        return model
    try:
        if file.name.lower().endswith(".zip"):
            _unzip(file, model)
        else:
            _untar(file, model)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, OSError) as exc:
        raise _Failed(f"cannot unpack {file.name}: {exc}") from exc
    entries = [entry for entry in model.iterdir() if entry.name != "__MACOSX"]
    if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink():
        return entries[0]
    return model


def _inside(root: Path, name: str) -> Path:
    """Where archive member or object `name` lands under root; names that would escape it are refused."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and path.parts[0].endswith(":")):
        raise _Failed(f"refusing {name!r}: it would be written outside the model folder")
    return root.joinpath(*path.parts)


def _untar(archive: Path, into: Path) -> None:
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        for member in members:
            _inside(into, member.name)
            if member.issym():
                _inside(into, str(PurePosixPath(member.name).parent / member.linkname))
            elif member.islnk():
                _inside(into, member.linkname)
            elif not (member.isfile() or member.isdir()):
                raise _Failed(f"refusing {member.name!r}: not a file, folder or link")
        if hasattr(tarfile, "data_filter"):
            tar.extractall(into, members, filter="data")
        else:  # Python before 3.11.4: the checks above are all there is
            tar.extractall(into, members)


def _unzip(archive: Path, into: Path) -> None:
    with zipfile.ZipFile(archive) as zipped:
        for info in zipped.infolist():
            _inside(into, info.filename)
        zipped.extractall(into)


def _local(uri: str, staging: Path, model: Path) -> Path | None:
    """A local folder copied into `model`, or the local file to place; None for a folder."""
    path = _local_path(uri)
    if path.is_dir():
        shutil.copytree(path, model, symlinks=True)
        return None
    if not path.is_file():
        raise _Failed("no such file or folder")
    if is_archive(path.name):
        return path
    copy = staging / "download" / path.name
    copy.parent.mkdir()
    shutil.copyfile(path, copy)
    return copy


def _http(uri: str, staging: Path, progress: Progress | None) -> Path:
    name = unquote(urlsplit(uri).path.rstrip("/").rpartition("/")[2])
    if not name or name in (".", ".."):
        raise _Failed("the URL names no file; point it at a model file or an archive")
    target = staging / "download" / name
    target.parent.mkdir()
    import httpx  # only for downloads: importing it costs every `daneel serve` of a local folder startup time

    timeout = httpx.Timeout(_TIMEOUT_S, connect=_CONNECT_TIMEOUT_S)
    try:
        with httpx.stream("GET", uri, follow_redirects=True, timeout=timeout) as response:
            if response.status_code != 200:
                raise _Failed(f"HTTP {response.status_code} {response.reason_phrase}")
            length = response.headers.get("content-length")
            expected = int(length) if length and length.isdigit() else None
            with target.open("wb") as out:
                for chunk in response.iter_bytes(CHUNK):
                    out.write(chunk)
                    if progress is not None:
                        progress(shown(uri), response.num_bytes_downloaded, expected)
            received = response.num_bytes_downloaded
    except httpx.HTTPError as exc:
        raise _Failed(_http_reason(exc)) from exc
    if expected is not None and received != expected:
        raise _Failed(f"incomplete download: {received} of {expected} bytes")
    if progress is not None:
        progress(shown(uri), received, received)
    return target


def _http_reason(exc: httpx.HTTPError) -> str:
    import httpx

    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect ({exc})"
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({type(exc).__name__})"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"incomplete download ({exc})"
    return f"{type(exc).__name__}: {exc}"


def _s3(uri: str, staging: Path, model: Path, progress: Progress | None) -> Path | None:
    """Every object under the URI's prefix into `model`, keeping relative paths; a single object
    (the key names one) is returned to be placed instead."""
    parts = urlsplit(uri)
    bucket, key = parts.netloc, unquote(parts.path.lstrip("/"))
    boto3 = needs("boto3", "s3")
    errors = needs("botocore.exceptions", "s3")
    single = None
    try:
        client = _s3_client(boto3)
        listed = dict(_s3_list(client, bucket, key))
        prefix = key.rstrip("/") + "/" if key else ""
        objects = {_inside(model, k[len(prefix) :]): (k, size) for k, size in listed.items() if k.startswith(prefix)}
        if not objects and key in listed:
            single = staging / "download" / PurePosixPath(key).name
            objects = {single: (key, listed[key])}
        if not objects:
            raise _Failed(f"no objects under {prefix}" if key else "the bucket is empty")
        _s3_download(client, bucket, objects, shown(uri), progress)
    except errors.ClientError as exc:
        raise _Failed(_s3_reason(exc, bucket)) from exc
    except errors.NoCredentialsError as exc:
        raise _Failed("no AWS credentials; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE") from exc
    except errors.BotoCoreError as exc:
        raise _Failed(str(exc)) from exc
    return single


def _s3_client(boto3: Any) -> Any:
    """An S3 client; credentials and region from the standard AWS variables and files.

    The endpoint is read here as well, since boto3 before 1.28.57 ignores AWS_ENDPOINT_URL.
    """
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None
    return boto3.client("s3", endpoint_url=endpoint)


def _s3_list(client: Any, bucket: str, key: str) -> list[tuple[str, int]]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key)
    found = [(item["Key"], int(item["Size"])) for page in pages for item in page.get("Contents", [])]
    return [(k, size) for k, size in found if not k.endswith("/")]  # folder markers hold nothing


def _s3_download(
    client: Any, bucket: str, objects: dict[Path, tuple[str, int]], label: str, progress: Progress | None
) -> None:
    total = sum(size for _, size in objects.values())
    done = 0
    for target, (key, size) in objects.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        written = 0
        with target.open("wb") as out:
            for chunk in client.get_object(Bucket=bucket, Key=key)["Body"].iter_chunks(CHUNK):
                out.write(chunk)
                written += len(chunk)
                if progress is not None:
                    progress(label, done + written, total)
        if written != size:
            raise _Failed(f"{key}: incomplete download: {written} of {size} bytes")
        done += written


def _s3_reason(exc: Any, bucket: str) -> str:
    error = exc.response.get("Error", {})
    code, message = str(error.get("Code", "")), str(error.get("Message", ""))
    if code == "NoSuchBucket":
        return f"no such bucket {bucket!r}"
    if code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
        return f"access denied ({code}: {message}); check the AWS credentials"
    return f"{code}: {message}" if message else code


class TerminalProgress:
    """One line per download on a terminal: `what: 12.3 MB of 45.6 MB (27%)`."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._last = ""

    def __call__(self, label: str, done: int, total: int | None) -> None:
        line = f"{label}: {_mb(done)}"
        if total:
            line += f" of {_mb(total)} ({100 * done // total}%)"
        if line == self._last:
            return
        self._last = line
        end = "\n" if total is not None and done >= total else ""
        self._stream.write(f"\r{line}{end}")
        self._stream.flush()


def terminal_progress(stream: TextIO) -> Progress | None:
    """A progress line on `stream` when it is a terminal; nothing for logs and pipes."""
    return TerminalProgress(stream) if stream.isatty() else None


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"
