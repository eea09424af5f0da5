"""`daneel predict URL`: send an array to a running server, in either protocol."""

from __future__ import annotations

import csv
import io
import json
import ssl
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import httpx
import numpy as np

from daneel.protocol.datatypes import from_numpy


@click.command()
@click.argument("url")
@click.option("--data", "data_text", help="JSON: an array of rows, or a whole request body.")
@click.option(
    "--file",
    "data_file",
    type=click.Path(exists=True, dir_okay=False, allow_dash=True),
    help="A .json, .csv or .npy file; - reads JSON from standard input.",
)
@click.option("--model", help="Model name; sends an Open Inference Protocol (V2) request to it.")
@click.option("--protocol", type=click.Choice(["seldon", "v2"]), help="Force a protocol (default: from URL).")
@click.option("--timeout", type=float, default=30.0, show_default=True, help="Seconds to wait for the answer.")
@click.option("--token", envvar="DANEEL_TOKEN", help="Send Authorization: Bearer TOKEN (or set DANEEL_TOKEN).")
@click.option("--token-file", type=click.Path(exists=True, dir_okay=False), help="Read the token from this file.")
@click.option("--ca-cert", type=click.Path(exists=True, dir_okay=False), help="Trust https servers this CA signed.")
@click.option("--cert", type=click.Path(exists=True, dir_okay=False), help="Client certificate, for mutual TLS.")
@click.option("--key", type=click.Path(exists=True, dir_okay=False), help="The client certificate's private key.")
def predict(
    url: str,
    data_text: str | None,
    data_file: str | None,
    model: str | None,
    protocol: str | None,
    timeout: float,
    **security: str | None,
) -> None:
    """Send data to the server at URL and print its answer.

    URL is a server (http://localhost:8080, https://...) or a full endpoint path. Arrays go as
    Seldon's data.ndarray, or as one V2 input tensor with --model or a /v2 URL.
    """
    if (data_text is None) == (data_file is None):
        raise click.UsageError("give exactly one of --data or --file")
    endpoint, protocol = _endpoint(url, model, protocol)
    body = _request(*_read(data_text, data_file), protocol)
    headers = _authorization(security["token"], security["token_file"])
    verify = _tls(security["ca_cert"], security["cert"], security["key"])
    try:
        response = httpx.post(endpoint, json=body, timeout=timeout, headers=headers, verify=verify)
    except httpx.HTTPError as exc:
        raise click.ClickException(f"cannot reach {endpoint}: {exc}") from None
    if response.status_code >= 400:
        raise click.ClickException(f"{endpoint} answered {response.status_code}: {response.text.strip()}")
    click.echo(json.dumps(response.json(), indent=2))


def _authorization(token: str | None, token_file: str | None) -> dict[str, str]:
    if token is not None and token_file is not None:
        raise click.UsageError("give --token or --token-file, not both")
    if token_file is not None:
        token = Path(token_file).read_text(encoding="utf-8").strip()
    return {"Authorization": f"Bearer {token}"} if token else {}


def _tls(ca_cert: str | None, cert: str | None, key: str | None) -> ssl.SSLContext | bool:
    """How to check an https server: against --ca-cert, else the system's CAs; with --cert, as a client too."""
    if key is not None and cert is None:
        raise click.UsageError("--key goes with --cert")
    if ca_cert is None and cert is None:
        return True
    context = ssl.create_default_context(cafile=ca_cert)
    if cert is not None:
        try:
            context.load_cert_chain(cert, key)
        except ssl.SSLError as exc:
            raise click.UsageError(f"--cert/--key: cannot use them ({exc})") from None
    return context


def _endpoint(url: str, model: str | None, protocol: str | None) -> tuple[str, str]:
    parts = urlsplit(url if "://" in url else f"http://{url}")
    base = f"{parts.scheme}://{parts.netloc}"
    path = parts.path.rstrip("/")
    if path:
        detected = "v2" if "/v2/" in path else "seldon"
        if detected == "v2" and not path.endswith("/infer"):
            path += "/infer"
        return base + path, protocol or detected
    if model:
        return f"{base}/v2/models/{model}/infer", "v2"
    if protocol == "v2":
        raise click.UsageError("a V2 request needs --model or a /v2/models/NAME URL")
    return f"{base}/api/v1.0/predictions", "seldon"


def _read(data_text: str | None, data_file: str | None) -> tuple[Any, list[str]]:
    if data_text is not None:
        return _json(data_text, "--data"), []
    if data_file == "-":
        return _json(sys.stdin.read(), "standard input"), []
    path = Path(str(data_file))
    if path.suffix == ".npy":
        return np.load(path, allow_pickle=False), []
    if path.suffix == ".csv":
        return _csv(path.read_text())
    return _json(path.read_text(), str(path)), []


def _json(text: str, source: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.UsageError(f"{source}: invalid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None


def _csv(text: str) -> tuple[np.ndarray, list[str]]:
    rows = [row for row in csv.reader(io.StringIO(text)) if row]
    names: list[str] = []
    if rows and not _numeric(rows[0]):
        names, rows = rows[0], rows[1:]
    try:
        return np.array(rows, dtype=np.float64), names
    except ValueError:
        raise click.UsageError("CSV rows must hold numbers (a header row is allowed)") from None


def _numeric(row: list[str]) -> bool:
    try:
        [float(cell) for cell in row]
    except ValueError:
        return False
    return True


def _request(data: Any, names: list[str], protocol: str) -> Any:
    if isinstance(data, dict):
        return data
    array = np.asarray(data)
    if protocol == "seldon":
        body: dict[str, Any] = {"ndarray": array.tolist()}
        if names:
            body["names"] = names
        return {"data": body}
    datatype = from_numpy(array.dtype)
    flat = array.reshape(-1).tolist()
    return {"inputs": [{"name": "input-0", "shape": list(array.shape), "datatype": datatype, "data": flat}]}
