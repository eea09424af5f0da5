"""Server settings: command-line options, or DANEEL_* environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from daneel.server import auth, tls


class ServerSettings(BaseSettings):
    """How `daneel serve` listens and runs; read when the command starts, never at import."""

    model_config = SettingsConfigDict(env_prefix="DANEEL_", extra="forbid")

    host: str = Field("0.0.0.0", description="Address to listen on.")
    http_port: int = Field(8080, ge=0, le=65535, description="HTTP port; 0 picks a free one.")
    grpc: bool = Field(True, description="Serve the Open Inference Protocol over gRPC too.")
    grpc_port: int = Field(8081, ge=0, le=65535, description="gRPC port; 0 picks a free one.")
    grpc_max_message_bytes: int = Field(
        64 * 1024 * 1024, gt=0, description="Largest gRPC message in or out; larger ones fail RESOURCE_EXHAUSTED."
    )
    workers: int = Field(1, ge=1, description="Processes serving the same port.")
    max_body_bytes: int = Field(64 * 1024 * 1024, gt=0, description="Larger request bodies get 413.")
    keep_going: bool = Field(False, description="Keep serving the other models when one fails to load.")
    executor: Literal["auto", "inline", "thread"] = Field(
        "auto", description="Where synchronous user code runs: measured (auto), on the loop, or on threads."
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Log verbosity.")
    log_format: Literal["auto", "text", "json"] = Field(
        "text", description="Log lines as text, as JSON lines, or auto: text on a terminal, JSON elsewhere."
    )
    metrics: bool = Field(True, description="Record Prometheus metrics and serve them at GET /metrics.")
    metrics_port: int | None = Field(
        None, ge=0, le=65535, description="Serve /metrics on this port as well (0 picks a free one)."
    )
    access_log: bool = Field(
        False, description="Log one line per HTTP request and gRPC call: method, path, status, duration, request id."
    )
    request_log: str | None = Field(
        None, description="Log every request and response: to an http(s) URL as CloudEvents, or to a JSON-lines file."
    )
    auth_token: SecretStr | None = Field(
        None, description="Token clients send as `Authorization: Bearer TOKEN`; set by DANEEL_AUTH_TOKEN, no option."
    )
    auth_token_file: Path | None = Field(
        None, validate_default=True, description="File holding the token; surrounding whitespace is ignored."
    )
    auth_protect: str | None = Field(
        None,
        validate_default=True,
        description="Endpoint groups the token guards: repository (the default), metrics, feedback, inference, all.",
    )
    tls_cert: Path | None = Field(None, description="Certificate (PEM, with its chain) for TLS on every port.")
    tls_key: Path | None = Field(None, validate_default=True, description="The certificate's private key (PEM).")
    tls_client_ca: Path | None = Field(
        None, validate_default=True, description="CA certificates (PEM): clients must present a certificate it signed."
    )

    @field_validator("auth_token_file")
    @classmethod
    def _one_token(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        token = info.data.get("auth_token")
        if token is not None and value is not None:
            raise ValueError("give the token in a file or in DANEEL_AUTH_TOKEN, not both")
        if token is not None:
            auth.check_token(token.get_secret_value(), "DANEEL_AUTH_TOKEN")
        if value is not None:
            auth.read_token(value)
        return value

    @field_validator("auth_protect")
    @classmethod
    def _groups(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        auth.parse_groups(value)
        if info.data.get("auth_token") is None and info.data.get("auth_token_file") is None:
            raise ValueError("needs a token: --auth-token-file FILE or DANEEL_AUTH_TOKEN")
        return value

    @field_validator("tls_key")
    @classmethod
    def _key_pair(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        cert = info.data.get("tls_cert")
        if (cert is None) != (value is None):
            raise ValueError("--tls-cert and --tls-key go together")
        if cert is not None and value is not None:
            tls.check(cert, value, None)
        return value

    @field_validator("tls_client_ca")
    @classmethod
    def _client_ca(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is not None and info.data.get("tls_key") is None:
            raise ValueError("mutual TLS needs the server's own --tls-cert and --tls-key too")
        if value is not None:
            tls.check(info.data["tls_cert"], info.data["tls_key"], value)
        return value

    header_timeout: float = Field(
        10.0, gt=0, description="Seconds a client has to send a request's line and headers; then 408."
    )
    body_timeout: float = Field(60.0, gt=0, description="Seconds a client has to send a request's body; then 408.")
    keep_alive_timeout: float = Field(5.0, gt=0, description="Seconds an idle keep-alive connection stays open.")
    max_connections: int = Field(
        2048, gt=0, description="Connections each process serves at once; a request on one more gets 503."
    )
    max_header_bytes: int = Field(
        64 * 1024, gt=0, description="Largest request line and headers together, in bytes; larger get 431."
    )
    max_headers: int = Field(100, gt=0, description="Most headers in one request; more get 431.")
    request_timeout: float | None = Field(
        None, gt=0, description="Seconds a model may take to answer a request; then 504 (default: no limit)."
    )
    shutdown_timeout: float = Field(
        25.0, ge=0, description="Seconds requests in flight get to finish after SIGTERM; then 503 and exit."
    )

    @field_validator("request_log")
    @classmethod
    def _http_or_file(cls, value: str | None) -> str | None:
        if value is not None and "://" in value:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.hostname or parts.port == 0:
                raise ValueError(f"expected an http:// or https:// URL, or a file path; got {value!r}")
        return value
