"""Container logs: written from the process's output pipe, served as the kubelet's ``/containerLogs`` over HTTPS.

File format (CRI-like, one record per line): ``<RFC3339Nano> <F|P> <bytes>``. ``F`` ends a line of output, ``P`` is
a piece of a line that was still open when it was read. A plain read concatenates the pieces (adding the newline
after ``F``), so it returns exactly what the process wrote; ``timestamps=true`` gives each output line the time its
first piece arrived.
"""

from __future__ import annotations

import os
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from migration_pipeline.sandbox.kubernetes.node_agent_status import parse_rfc3339, rfc3339_nano

FOLLOW_POLL_SECONDS = 0.1


# ---- writing ----------------------------------------------------------------------------------------------------

def encode_records(chunk: bytes, ns: int) -> tuple[bytes, int]:
    """One read of the pipe as records (the last is ``P`` unless the chunk ends with a newline), and the last
    timestamp used.

    Each record gets its own nanosecond, as lines have from a real runtime: PipesK8sClient joins lines that share a
    timestamp into one message, which would break its JSON messages apart from their lines.
    """
    parts = chunk.split(b"\n")
    pieces = [(p, True) for p in parts[:-1]] + ([(parts[-1], False)] if parts[-1] else [])
    out = []
    for i, (data, full) in enumerate(pieces):
        out.append(rfc3339_nano(ns + i).encode() + (b" F " if full else b" P ") + data + b"\n")
    return b"".join(out), ns + max(len(pieces) - 1, 0)


class LogPump:
    """Copies a process's combined stdout/stderr from ``fd`` into the record file until end of file."""

    def __init__(self, fd: int, path: Path) -> None:
        self.path = path
        self.done = threading.Event()
        self._fd = fd
        self._thread = threading.Thread(target=self._run, name=f"log-{path.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            last = 0
            with open(self.path, "ab", buffering=0) as out:
                while True:
                    chunk = os.read(self._fd, 65536)
                    if not chunk:
                        break
                    data, last = encode_records(chunk, max(time.time_ns(), last + 1))
                    out.write(data)
        except OSError as exc:
            print(f"node-agent: log pump for {self.path} stopped: {exc}", file=sys.stderr, flush=True)
        finally:
            os.close(self._fd)
            self.done.set()

    def wait(self, timeout: float | None = None) -> bool:
        return self.done.wait(timeout)


# ---- reading ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Record:
    stamp: str
    full: bool
    data: bytes

    @property
    def epoch(self) -> float:
        return parse_rfc3339(self.stamp.strip())


def parse_record(line: bytes) -> Record | None:
    stamp, sep, rest = line.rstrip(b"\n").partition(b" ")
    if not sep or len(rest) < 2:
        return None
    return Record(stamp.decode(), rest[:1] == b"F", rest[2:])


@dataclass(frozen=True)
class LogQuery:
    follow: bool = False
    tail_lines: int | None = None
    limit_bytes: int | None = None
    timestamps: bool = False
    since: float | None = None  # epoch seconds
    previous: bool = False


def parse_query(query: str, now: float | None = None) -> LogQuery:
    params = {k: v[-1] for k, v in parse_qs(query).items()}

    def flag(name: str) -> bool:
        return params.get(name, "false").lower() in ("true", "1")

    def number(name: str) -> int | None:
        return int(params[name]) if params.get(name, "").lstrip("-").isdigit() else None

    since = None
    if number("sinceSeconds") is not None:
        since = (time.time() if now is None else now) - (number("sinceSeconds") or 0)
    elif params.get("sinceTime"):
        since = parse_rfc3339(params["sinceTime"])
    return LogQuery(follow=flag("follow"), tail_lines=number("tailLines"), limit_bytes=number("limitBytes"),
                    timestamps=flag("timestamps"), since=since, previous=flag("previous"))


def group_lines(records: list[Record]) -> list[list[Record]]:
    """Records grouped into output lines (pieces plus their closing record; a trailing open line counts too)."""
    lines: list[list[Record]] = []
    current: list[Record] = []
    for rec in records:
        current.append(rec)
        if rec.full:
            lines.append(current)
            current = []
    if current:
        lines.append(current)
    return lines


def render(records: list[Record], timestamps: bool) -> bytes:
    """Records as output: exactly the process's bytes, or one ``<time> <line>`` per output line."""
    if not timestamps:
        return b"".join(r.data + (b"\n" if r.full else b"") for r in records)
    return b"".join(g[0].stamp.encode() + b" " + b"".join(r.data for r in g) + (b"\n" if g[-1].full else b"")
                    for g in group_lines(records))


def select(records: list[Record], query: LogQuery) -> list[Record]:
    """``sinceSeconds``/``sinceTime`` then ``tailLines``, applied to whole lines."""
    lines = group_lines(records)
    if query.since is not None:
        lines = [g for g in lines if g[0].epoch >= query.since]
    if query.tail_lines is not None:
        lines = lines[-query.tail_lines:] if query.tail_lines > 0 else []
    return [r for g in lines for r in g]


def read_records(handle: object, pending: bytearray) -> list[Record]:
    """Complete records newly in the file (a half-written record waits in ``pending``)."""
    chunk = handle.read()  # type: ignore[attr-defined]
    if not chunk:
        return []
    pending.extend(chunk)
    end = pending.rfind(b"\n")
    if end < 0:
        return []
    complete, pending[:] = bytes(pending[:end + 1]), pending[end + 1:]
    return [r for r in (parse_record(line) for line in complete.splitlines(keepends=True)) if r]


def render_more(records: list[Record], timestamps: bool, open_line: bool) -> tuple[bytes, bool]:
    """Render records that follow earlier output; with timestamps, an open line is continued without a new stamp."""
    if not records:
        return b"", open_line
    head: list[Record] = []
    if timestamps and open_line:
        cut = next((i + 1 for i, r in enumerate(records) if r.full), len(records))
        head, records = records[:cut], records[cut:]
    data = render(head, False) + render(records, timestamps)
    last = records[-1] if records else head[-1]
    return data, not last.full


def stream_log(path: Path, query: LogQuery, finished: Callable[[], bool],
               alive: Callable[[], bool] = lambda: True) -> Iterator[bytes]:
    """The log as a client asked for it; with ``follow``, new output until the writer is finished and drained."""
    budget = query.limit_bytes
    pending = bytearray()
    open_line = False
    with open(path, "rb") as handle:
        batch = select(read_records(handle, pending), query)
        while True:
            data, open_line = render_more(batch, query.timestamps, open_line)
            if budget is not None:
                data, budget = data[:budget], budget - len(data)
            if data:
                yield data
            if (budget is not None and budget <= 0) or not query.follow or not alive():
                return
            done = finished()  # checked before reading, so nothing written before the end is missed
            batch = read_records(handle, pending)
            if not batch:
                if done:
                    return
                time.sleep(FOLLOW_POLL_SECONDS)


# ---- serving ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LogSource:
    path: Path
    finished: Callable[[], bool]


# (namespace, pod, container, previous) -> where that log is, or a message saying why there is none
LogLocator = Callable[[str, str, str, bool], "LogSource | str"]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _LogHTTPServer

    def log_message(self, format: str, *args: object) -> None:  # quiet: one line per request is noise
        pass

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        parts = [unquote(p) for p in url.path.strip("/").split("/")]
        if parts == ["healthz"]:
            self._reply(200, b"ok")
        elif len(parts) == 4 and parts[0] == "containerLogs":
            self._logs(parts[1], parts[2], parts[3], url.query)
        else:
            self._reply(404, b"404 page not found\n")

    def _logs(self, namespace: str, pod: str, container: str, raw_query: str) -> None:
        try:
            query = parse_query(raw_query)
        except ValueError as exc:
            self._reply(400, f"bad query: {exc}\n".encode())
            return
        found = self.server.locate(namespace, pod, container, query.previous)
        if isinstance(found, str):
            # as the kubelet: 404 for an unknown pod or container, 400 for a log that does not exist (yet)
            missing = "not found" in found and not found.startswith("previous")
            self._reply(404 if missing else 400, (found + "\n").encode())
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for data in stream_log(found.path, query, found.finished, lambda: not self.server.stopping.is_set()):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass  # the client went away
        self.close_connection = True

    def _reply(self, code: int, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _LogHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    locate: LogLocator
    stopping: threading.Event


def tls_context(cert: str, key: str, client_ca: str | None) -> ssl.SSLContext:
    """The kubelet's serving certificate; the API server's client certificate is checked when a CA is given."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    if client_ca:
        context.load_verify_locations(client_ca)
        # OPTIONAL: a client without a certificate only gets logs anyway, and /healthz must answer probes
        context.verify_mode = ssl.CERT_OPTIONAL
    return context


class LogServer:
    """HTTPS on 127.0.0.1:port, one thread per request."""

    def __init__(self, port: int, context: ssl.SSLContext, locate: LogLocator, host: str = "127.0.0.1") -> None:
        self._server = _LogHTTPServer((host, port), _Handler)
        self._server.locate = locate
        self._server.stopping = threading.Event()
        # the handshake happens in the request's thread, so a slow client cannot hold up accept()
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True,
                                                  do_handshake_on_connect=False)
        self._thread = threading.Thread(target=self._server.serve_forever, name="log-server", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()
