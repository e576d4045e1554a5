"""Who may talk to the engine host: the request checks that keep web pages out.

A local server without a key is reachable by any page the user visits: a cross-origin "simple" POST
(text/plain, no CORS preflight) runs, and DNS rebinding (a page's own name re-pointed at 127.0.0.1)
lets the page read the answers. So, before anything else runs:

- the ``Host`` header must name the address the host is bound to (or the connection's own local
  address) or a loopback name, with the bound port; otherwise 403 (this defeats DNS rebinding);
- a request carrying an ``Origin`` must come from an origin the user allowed (``--allow-origin``);
  otherwise 403. Browsers send ``Origin`` on every cross-origin POST, so pages are refused;
- a request body must be ``application/json`` (415 otherwise), so a simple form or text/plain POST
  never reaches an endpoint even if the other checks were relaxed.

Then Starlette's ``CORSMiddleware`` answers allowed origins (preflight included), and the key check
runs last so that an allowed page can read its 401. API keys are compared in constant time.
"""
from __future__ import annotations

import hmac
import ipaddress
import json
from typing import Iterable

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
_BODY_METHODS = ("POST", "PUT", "PATCH", "DELETE")


def is_loopback(address: str) -> bool:
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


def _host_name(address: str) -> str:
    """An address as it appears in a Host header (IPv6 in brackets)."""
    return f"[{address}]" if ":" in address and not address.startswith("[") else address


async def _refuse(send: Send, status: int, kind: str, message: str, error_type: str = "") -> None:
    error = {"kind": kind, "type": error_type or kind, "message": message, "path": None}
    body = json.dumps({"error": error}).encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


class BrowserGuard:
    """Host, Origin and Content-Type checks (see the module docstring)."""

    def __init__(self, app: ASGIApp, bound_host: str = "127.0.0.1", allowed_origins: Iterable[str] = ()) -> None:
        self.app = app
        self.bound_host = bound_host
        self.allowed_origins = {o.rstrip("/") for o in allowed_origins}

    def _allowed_hosts(self, scope: Scope) -> set[str]:
        server = scope.get("server") or (self.bound_host, None)
        local_address, port = server[0], server[1]
        names = {*LOOPBACK_NAMES, _host_name(self.bound_host), _host_name(str(local_address))}
        allowed = {f"{name}:{port}" for name in names}
        if port in (80, None):
            allowed |= names
        return {a.lower() for a in allowed}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        host = headers.get("host", "").lower()
        if host not in self._allowed_hosts(scope):
            await _refuse(send, 403, "forbidden_host",
                          f"Host {host or '(none)'!r} is not this engine host's address. Connect to "
                          f"127.0.0.1 or localhost on this port; other names are refused so web pages cannot "
                          f"reach the host through DNS rebinding.")
            return
        origin = headers.get("origin")
        if origin is not None and origin.rstrip("/") not in self.allowed_origins:
            await _refuse(send, 403, "forbidden_origin",
                          f"Requests from the web origin {origin!r} are refused. To let a web front end use "
                          f"Hearth, start it with 'serve --allow-origin {origin}'.")
            return
        if scope["method"] in _BODY_METHODS and not _json_or_empty(headers):
            await _refuse(send, 415, "unsupported_media_type",
                          f"Request bodies must be JSON with 'Content-Type: application/json' "
                          f"(got {headers.get('content-type') or 'no Content-Type'!r}).")
            return
        await self.app(scope, receive, send)


def _json_or_empty(headers: dict[str, str]) -> bool:
    content_type = headers.get("content-type")
    if content_type is None:
        # A call without a body (e.g. POST /hearth/tune/compare/release) needs no type.
        return headers.get("content-length", "0") == "0" and "transfer-encoding" not in headers
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


class KeyCheck:
    """``Authorization: Bearer KEY`` on every request when a key is set; 401 otherwise."""

    def __init__(self, app: ASGIApp, api_key: str | None = None) -> None:
        self.app = app
        self.expected = f"Bearer {api_key}".encode("utf-8") if api_key else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.expected is not None and scope["type"] == "http":
            given = _headers(scope).get("authorization", "").encode("latin-1")
            if not hmac.compare_digest(given, self.expected):
                await _refuse(send, 401, "auth", "Missing or wrong API key: send 'Authorization: Bearer KEY'.",
                              "invalid_api_key")
                return
        await self.app(scope, receive, send)


def install(app, *, api_key: str | None, bound_host: str, allowed_origins: Iterable[str]) -> None:
    """Wrap ``app`` (outermost first): BrowserGuard -> CORS for allowed origins -> KeyCheck."""
    origins = [o.rstrip("/") for o in allowed_origins]
    app.add_middleware(KeyCheck, api_key=api_key)
    if origins:
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST", "OPTIONS"],
                           allow_headers=["Authorization", "Content-Type"], expose_headers=["X-Hearth-Request-Id"],
                           max_age=600)
    app.add_middleware(BrowserGuard, bound_host=bound_host, allowed_origins=origins)
