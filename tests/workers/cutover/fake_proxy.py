"""A stand-in for a capture proxy's admin API (the contract in docs/cutover.md): a FAKE, used to inject faults the
real proxy cannot produce on demand (one of several proxies refusing its pause or its switch halfway through the
sequence, a proxy that answers on the wrong side) and so test the sequence's undo paths. The state machine only
(side, pause, switch, resume). The sequence against real proxies, engines and Kafka is tests/workers/cutover/
test_cutover_live.py."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeProxy:
    """One proxy's admin endpoint on 127.0.0.1, serving from a thread."""

    def __init__(self, token: str = "secret-token", topic: str = "capture", max_hold_s: float = 30.0) -> None:
        self.token = token
        self.side = "source"
        self.paused = False
        self.switches = 0
        self.max_hold_s = max_hold_s
        self.topics = {"source": topic, "target": f"{topic}.reverse"}
        # Paths answered 500 instead (once each, unless listed again).
        self.fail: list[str] = []
        self.calls: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                fake.handle(self, "GET")

            def do_POST(self) -> None:
                fake.handle(self, "POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def status(self) -> dict[str, Any]:
        return {"side": self.side, "paused": self.paused, "held": 0, "in_flight_writes": 0, "hold_started_at": None,
                "max_hold_s": self.max_hold_s, "topic": self.topics[self.side], "topics": self.topics,
                "destinations": {"source": "http://s:9200", "target": "http://t:9200"}, "switches": self.switches,
                "last_abort": None}

    def handle(self, request: BaseHTTPRequestHandler, method: str) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        body = json.loads(request.rfile.read(length) or b"{}") if length else {}
        path = request.path
        self.calls.append(f"{method} {path}" + (f" {body['to']}" if "to" in body else ""))
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return self._answer(request, 401, {"error": "unauthorized"})
        if path in self.fail:
            self.fail.remove(path)
            return self._answer(request, 500, {"error": "injected failure"})
        if method == "GET" and path == "/status":
            return self._answer(request, 200, self.status())
        if method == "POST" and path == "/pause-writes":
            self.paused = True
        elif method == "POST" and path == "/switch":
            if not self.paused:
                return self._answer(request, 409, {"error": "not paused"})
            if body.get("to") != self.side:
                self.side, self.switches = body["to"], self.switches + 1
        elif method == "POST" and path == "/resume":
            self.paused = False
        else:
            return self._answer(request, 404, {"error": "no such endpoint"})
        return self._answer(request, 200, self.status())

    @staticmethod
    def _answer(request: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)
