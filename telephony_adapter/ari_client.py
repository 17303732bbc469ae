"""A small asynchronous ARI client: REST requests with httpx, the event stream with websockets.

ARI authenticates with HTTP basic auth (or ``api_key=user:password``); the WebSocket is
``<ari url>/events?app=<application>``, ``ws://`` for ``http://`` and ``wss://`` for
``https://``. Request parameters go in the query string, as Asterisk documents them
(``channels.json``: ``paramType: query``); a body is only for ``variables``.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import httpx
from websockets.asyncio.client import ClientConnection, connect


@dataclass
class AriHttpError(Exception):
    """ARI refused a request: its status (404 channel gone, 409 not in Stasis …)."""

    method: str
    path: str
    status: int
    message: str

    def __str__(self) -> str:
        return f"{self.method} {self.path}: {self.status} {self.message}"


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(_query_value(v) for v in value)
    return str(value)


class AriClient:
    def __init__(self, url: str, user: str, password: str, app: str, *, timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.user, self.password, self.app = user, password, app
        self.timeout = timeout
        self._http: httpx.AsyncClient | None = None

    @property
    def events_url(self) -> str:
        parts = urlsplit(self.url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        return urlunsplit((scheme, parts.netloc, parts.path + "/events", urlencode({"app": self.app}), ""))

    def _auth_header(self) -> str:
        return "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()

    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(
                base_url=self.url,
                headers={"Authorization": self._auth_header()},
                timeout=self.timeout,
                limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
            )
        return self._http

    async def request(self, method: str, path: str, params: dict[str, Any] | None = None, body: dict[str, Any] | None = None) -> Any:
        """One ARI request; the decoded JSON answer (None for 204). Raises :class:`AriHttpError`."""
        query = {k: _query_value(v) for k, v in (params or {}).items() if v is not None}
        response = await self.http().request(method, quote(path, safe="/:@.,-_~"), params=query, json=body)
        if response.status_code >= 400:
            try:
                message = response.json().get("message", response.text)
            except ValueError:
                message = response.text
            raise AriHttpError(method, path, response.status_code, str(message))
        if response.status_code == 204 or not response.content:
            return None
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.content

    async def events(self) -> ClientConnection:
        """Opens the event WebSocket (``async with await client.events() as ws``)."""
        return await connect(
            self.events_url,
            additional_headers={"Authorization": self._auth_header()},
            open_timeout=self.timeout,
            ping_interval=20,
            ping_timeout=20,
            max_size=2**22,
        )

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None


def decode(message: str | bytes) -> dict[str, Any]:
    value = json.loads(message)
    if not isinstance(value, dict):
        raise ValueError("an ARI message is a JSON object")
    return value
