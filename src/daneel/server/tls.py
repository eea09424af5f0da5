"""TLS on the HTTP, metrics and gRPC ports (`daneel serve --tls-cert FILE --tls-key FILE [--tls-client-ca FILE]`).

All three ports present the same certificate. With a client CA the server asks every client for a
certificate and refuses a connection without one signed by that CA (mutual TLS), on every port.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import grpc

    from daneel.server.settings import ServerSettings


def check(cert: Path, key: Path, client_ca: Path | None) -> None:
    """Load the files as the server will, so that a wrong one fails at start; ValueError says why."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"cannot use {cert} with the key {key}: {exc}") from None
    if client_ca is not None:
        try:
            context.load_verify_locations(client_ca)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"cannot read CA certificates from {client_ca}: {exc}") from None


def uvicorn_options(settings: ServerSettings) -> dict[str, Any]:
    """uvicorn's TLS settings for the server's certificate; none without one."""
    if settings.tls_cert is None:
        return {}
    options: dict[str, Any] = {"ssl_certfile": str(settings.tls_cert), "ssl_keyfile": str(settings.tls_key)}
    if settings.tls_client_ca is not None:
        options |= {"ssl_ca_certs": str(settings.tls_client_ca), "ssl_cert_reqs": ssl.CERT_REQUIRED}
    return options


def grpc_credentials(settings: ServerSettings) -> grpc.ServerCredentials | None:
    """gRPC's server credentials for the server's certificate; None without one."""
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    import grpc

    ca = settings.tls_client_ca.read_bytes() if settings.tls_client_ca is not None else None
    pair = (settings.tls_key.read_bytes(), settings.tls_cert.read_bytes())
    return grpc.ssl_server_credentials([pair], root_certificates=ca, require_client_auth=ca is not None)
