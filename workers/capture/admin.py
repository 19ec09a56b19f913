"""The cutover admin API: JSON over HTTP/1.1 on a listener of its own (--admin-listen), never the traffic listener.

Every endpoint needs ``Authorization: Bearer <token>`` (the token from the variable --admin-token-env names);
one request per connection. Endpoints (docs/cutover.md, "The proxy's switch"):

- ``GET /status``: the switch's state (``SwitchState.status``).
- ``POST /pause-writes`` (optional body ``{"max_hold_s": n}``): hold new writes, wait for those in flight to be
  answered and captured; 200 with the status, 504 when they do not finish within the hold's limit (released).
- ``POST /switch`` (body ``{"to": "target" | "source"}``): only while paused (409 otherwise), 400 without a
  --switch-target; 502 when the side's destination or capture topic is not usable (the side is unchanged).
- ``POST /resume``: release the held writes, on the current side.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
from typing import Any

from workers.capture.kafka_sink import KafkaSink
from workers.capture.switch import SwitchError, SwitchState
from workers.capture.upstream import connect

log = logging.getLogger("workers.capture.admin")

_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed",
            409: "Conflict", 413: "Payload Too Large", 502: "Bad Gateway", 504: "Gateway Timeout"}
_MAX_BODY = 64 << 10
_READ_TIMEOUT_S = 10.0
_ENDPOINTS = {"/status": "GET", "/pause-writes": "POST", "/switch": "POST", "/resume": "POST"}


class AdminApi:
    """Serves the admin endpoints of one proxy process."""

    def __init__(self, switch: SwitchState, token: bytes, sink: KafkaSink | None, connect_timeout_s: float) -> None:
        self._switch = switch
        self._token = token
        self._sink = sink
        self._connect_timeout_s = connect_timeout_s

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One request, one JSON answer, then close."""
        try:
            try:
                status, body = await self._answer(reader)
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError):
                status, body = 400, {"error": "malformed request"}
            data = json.dumps(body).encode() + b"\n"
            extra = "WWW-Authenticate: Bearer\r\n" if status == 401 else ""
            writer.write(f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\nContent-Type: application/json\r\n"
                         f"Content-Length: {len(data)}\r\n{extra}Connection: close\r\n\r\n".encode() + data)
            await writer.drain()
        except ConnectionError:
            pass
        except Exception:
            log.exception("admin request failed")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader) -> tuple[int, dict[str, Any]]:
        raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _READ_TIMEOUT_S)
        lines = raw.decode("latin-1").split("\r\n")
        method, target, _version = lines[0].split(" ", 2)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0") or "0")
        if length > _MAX_BODY or length < 0:
            return 413, {"error": "request body too large"}
        body = await asyncio.wait_for(reader.readexactly(length), _READ_TIMEOUT_S) if length else b""
        if not self._authorized(headers.get("authorization", "")):
            return 401, {"error": "unauthorized: send Authorization: Bearer <token>"}
        path = target.split("?", 1)[0]
        expected = _ENDPOINTS.get(path)
        if expected is None:
            return 404, {"error": f"no such endpoint {path}", "endpoints": sorted(_ENDPOINTS)}
        if method != expected:
            return 405, {"error": f"{path} takes {expected}"}
        try:
            payload = json.loads(body) if body.strip() else {}
        except ValueError:
            return 400, {"error": "the body must be JSON"}
        if not isinstance(payload, dict):
            return 400, {"error": "the body must be a JSON object"}
        try:
            return await self._endpoint(path, payload)
        except SwitchError as exc:
            return exc.status, {"error": str(exc), "status": self._switch.status()}

    def _authorized(self, header: str) -> bool:
        scheme, _, given = header.partition(" ")
        # compare_digest runs in time independent of where the strings differ.
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), self._token)

    async def _endpoint(self, path: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        switch = self._switch
        if path == "/status":
            return 200, switch.status()
        if path == "/pause-writes":
            max_hold = payload.get("max_hold_s")
            if max_hold is not None and (isinstance(max_hold, bool) or not isinstance(max_hold, int | float)
                                         or max_hold <= 0):
                return 400, {"error": "max_hold_s must be a number of seconds above 0"}
            await switch.pause(None if max_hold is None else float(max_hold))
            return 200, switch.status()
        if path == "/switch":
            to = payload.get("to")
            if not isinstance(to, str):
                return 400, {"error": 'switch needs a body {"to": "target"} or {"to": "source"}'}
            switch.switch_check(to)
            await self._check_route(to)
            switch.switch(to)  # checked again: the state may have changed meanwhile
            return 200, switch.status()
        switch.resume()
        return 200, switch.status()

    async def _check_route(self, side: str) -> None:
        """SwitchError (502) unless the side's destination accepts a connection and its capture topic exists."""
        route = self._switch.routes[side]
        if route is self._switch.route:
            return
        destination = route.destination
        try:
            upstream = await connect(destination, route.ssl, self._connect_timeout_s)
        except (OSError, TimeoutError) as exc:
            raise SwitchError(502, f"switch: the {side} {destination.url} is unreachable: "
                                   f"{exc or exc.__class__.__name__}") from None
        upstream.close()
        if self._sink is not None and route.topic is not None:
            error = await self._sink.topic_error(route.topic)
            if error is not None:
                raise SwitchError(502, f"switch: capture topic {route.topic} is not usable: {error}")
