"""Bearer-token authentication for the REST and gRPC edges (`daneel serve --auth-token-file`).

Endpoints fall into groups; a token guards the groups named by `--auth-protect` (the repository
alone unless told otherwise). Health, liveness and readiness belong to no group and stay open, so
that probes need no token; so do the console's page and files, which hold no data and must load
for the browser to ask for a token.

    repository  /v2/repository/..., gRPC ModelRepositoryService, the console's data (/console/api/...)
    metrics     /metrics, on the HTTP port and the metrics port
    feedback    Seldon's feedback paths
    inference   predictions and V2 inference, server and model metadata, /docs and /openapi.json,
                text generation (/v2/models/.../generate[_stream], the OpenAI-compatible /v1/...)

A client sends `Authorization: Bearer TOKEN` (over gRPC, as `authorization` metadata). Tokens are
compared in constant time, and never written to a log.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daneel.errors import Unauthenticated
from daneel.server import http
from daneel.server.http import Scope
from daneel.server.rest import _strip_gateway

if TYPE_CHECKING:
    from daneel.server.settings import ServerSettings

GROUPS = ("repository", "metrics", "feedback", "inference")
DEFAULT_GROUPS = frozenset({"repository"})

_EXACT = {
    "/metrics": "metrics",
    "/api/v1.0/feedback": "feedback",
    "/api/v0.1/feedback": "feedback",
    "/send-feedback": "feedback",
    "/v2": "inference",
    "/docs": "inference",
    "/openapi.json": "inference",
    "/api/v1.0/predictions": "inference",
    "/api/v0.1/predictions": "inference",
    "/api/v1.0/metadata": "inference",
    "/metadata": "inference",
    "/predict": "inference",
    "/transform-input": "inference",
    "/transform-output": "inference",
    "/route": "inference",
    "/aggregate": "inference",
}
_GRPC_SERVICES = {
    "/inference.model_repository.ModelRepositoryService/": "repository",
    "/inference.GRPCInferenceService/": "inference",
}
#: The inference service's calls that answer probes, open to all like REST's health paths.
_GRPC_OPEN = frozenset(
    f"/inference.GRPCInferenceService/{name}" for name in ("ServerLive", "ServerReady", "ModelReady")
)


def parse_groups(text: str) -> frozenset[str]:
    """`repository,metrics` as a set of group names; `all` names every group. ValueError names a stranger."""
    names = {name.strip().lower() for name in text.split(",") if name.strip()}
    if "all" in names:
        return frozenset(GROUPS)
    unknown = sorted(names - set(GROUPS))
    if unknown or not names:
        raise ValueError(f"expected a comma-separated list of {', '.join(GROUPS)} or all; got {text!r}")
    return frozenset(names)


def check_token(token: str, source: str) -> str:
    """The token, once it is one that fits in an HTTP header; ValueError naming `source` otherwise."""
    if not token:
        raise ValueError(f"{source} is empty")
    if not all(33 <= ord(char) <= 126 for char in token):
        raise ValueError(f"{source}: a token is visible ASCII characters, without spaces")
    return token


def read_token(path: Path) -> str:
    """A token file's token: its text without surrounding whitespace (a trailing newline, say)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read the token from {path}: {exc}") from None
    return check_token(text.strip(), str(path))


def rest_group(path: str) -> str | None:
    """The group an HTTP path belongs to; None for health paths and paths that lead nowhere."""
    path = _strip_gateway(path)
    found = _EXACT.get(path)
    if found is not None:
        return found
    if path.startswith(("/v2/repository/", "/console/api/")):
        return "repository"
    if path.startswith("/v1/"):
        return "inference"
    if path.startswith("/v2/models/"):
        return None if path.endswith("/ready") else "inference"
    return None


def grpc_group(method: str) -> str | None:
    """The group a gRPC method (/package.Service/Method) belongs to; None for the probes' calls."""
    if method in _GRPC_OPEN:
        return None
    return next((group for prefix, group in _GRPC_SERVICES.items() if method.startswith(prefix)), None)


@dataclass(frozen=True, slots=True)
class Auth:
    """The token a server expects, and the groups of endpoints it guards."""

    token: bytes
    protected: frozenset[str]

    @classmethod
    def from_settings(cls, settings: ServerSettings) -> Auth | None:
        """The server's token, from DANEEL_AUTH_TOKEN or the token file; None when it has none."""
        if settings.auth_token is not None:
            token = settings.auth_token.get_secret_value()
        elif settings.auth_token_file is not None:
            token = read_token(settings.auth_token_file)
        else:
            return None
        groups = parse_groups(settings.auth_protect) if settings.auth_protect else DEFAULT_GROUPS
        return cls(token.encode("ascii"), groups)

    def guards(self, group: str | None) -> bool:
        return group is not None and group in self.protected

    def refusal(self, authorization: str | None) -> str | None:
        """Why an `Authorization` value is refused; None when it carries the token."""
        if not authorization:
            return "this endpoint needs a token: send the header Authorization: Bearer <token>"
        scheme, _, credentials = authorization.strip().partition(" ")
        if scheme.lower() != "bearer":
            return "expected Authorization: Bearer <token>"
        if not hmac.compare_digest(credentials.strip().encode("latin-1", "replace"), self.token):
            return "the bearer token is not accepted"
        return None


class Guard:
    """An ASGI app that answers 401, in the path's protocol's error shape, before a guarded path runs."""

    def __init__(self, app: Any, auth: Auth) -> None:
        self.app = app
        self.auth = auth

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and self.auth.guards(rest_group(scope["path"])):
            refused = self.auth.refusal(http.header(scope, b"authorization"))
            if refused is not None:
                path = _strip_gateway(scope["path"])
                if path.startswith("/v1/"):  # OpenAI's clients read OpenAI's error shape
                    response = http.openai_error(Unauthenticated(refused))
                else:
                    response = http.error_response(Unauthenticated(refused), not path.startswith("/v2"))
                response.headers.append((b"www-authenticate", b'Bearer realm="daneel"'))
                await http.send(send, response)
                return
        await self.app(scope, receive, send)
