"""Capture records and transactions as text for people (``console kafka dump``): one line per record, or readable
HTTP with bodies de-chunked, decompressed and shortened. For display only: it tolerates what a replay must refuse
(truncated bodies, broken framing) and says so rather than failing."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson

from workers.capture.reader import ConnectionClosed, ConnectionOpened, Event, LocalAnswer, Reassembler, Transaction
from workers.capture.records import CaptureRecord, Kind, RecordFormatError, decode
from workers.capture.topic_range import TopicRecord

DEFAULT_MAX_BODY = 500
# Credentials a client sent are shown by their scheme only: a dump often ends up in a ticket or a chat.
_REDACTED = {"authorization", "proxy-authorization", "cookie", "set-cookie"}


def iso_ns(ns: int | None) -> str:
    """Nanoseconds since the epoch as an ISO 8601 UTC time with milliseconds ("-" when unknown)."""
    if not ns:
        return "-"
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def raw_line(record: TopicRecord) -> str:
    """One tab-separated line: partition, offset, kind, connection, seq, metadata JSON, payload size."""
    try:
        decoded = decode(record.value)
    except RecordFormatError as exc:
        return f"{record.partition}\t{record.offset}\t!\t-\t-\t{orjson.dumps({'error': str(exc)}).decode()}\t" \
               f"{len(record.value)}"
    meta = decoded.meta
    seq = meta.get("seq", "-")
    return (f"{record.partition}\t{record.offset}\t{decoded.kind.name.lower()}\t{meta.get('conn', '-')}\t{seq}\t"
            f"{orjson.dumps(meta).decode()}\t{len(decoded.payload)}")


@dataclass
class HttpDump:
    """Feeds records to a Reassembler and renders the events they complete. A dump that starts mid-topic meets
    parts of messages whose beginning it did not read: those are skipped and counted, not taken for lost records."""

    max_body: int = DEFAULT_MAX_BODY
    assembler: Reassembler = field(default_factory=Reassembler)
    skipped: int = 0
    not_capture: int = 0
    _started: set[tuple[str, int, Kind]] = field(default_factory=set)

    def feed(self, record: TopicRecord) -> list[list[str]]:
        """The rendered events ``record`` completes, each as its lines (often none: a part of a larger message)."""
        where = f"p{record.partition}@{record.offset}"
        try:
            decoded = decode(record.value)
        except RecordFormatError as exc:
            self.not_capture += 1
            return [[f"{where} not a capture record: {exc}"]]
        if not self._follows(decoded):
            self.skipped += 1
            return []
        try:
            events = self.assembler.add(decoded)
        except RecordFormatError as exc:
            self.skipped += 1
            return [[f"{where} skipped: {exc}"]]
        return [render(event, where, self.max_body) for event in events]

    def _follows(self, record: CaptureRecord) -> bool:
        """False for a later part of a message whose first part came before the dump's start."""
        if record.kind not in (Kind.REQUEST, Kind.RESPONSE):
            return True
        key = (str(record.meta.get("conn")), int(record.meta.get("seq", 0)), record.kind)
        if int(record.meta.get("offset", 0)) == 0:
            self._started.add(key)
            if record.meta.get("last"):
                self._started.discard(key)
            return True
        if key not in self._started:
            return False
        if record.meta.get("last"):
            self._started.discard(key)
        return True

    def summary(self) -> list[str]:
        """What the dump could not show: transactions unfinished at its end, parts and records it skipped."""
        notes = []
        if self.assembler.pending:
            notes.append(f"{self.assembler.pending} transaction(s) not complete within the records read")
        if self.skipped:
            notes.append(f"{self.skipped} record(s) skipped: parts of messages that began before the first record "
                         "read")
        if self.not_capture:
            notes.append(f"{self.not_capture} record(s) are not capture records")
        return notes


def render(event: Event, where: str, max_body: int = DEFAULT_MAX_BODY) -> list[str]:
    """The lines of one event; ``where`` (``pP@OFFSET``) is the record that completed it."""
    if isinstance(event, ConnectionOpened):
        return [f"{where} open {event.conn} from {event.client or '?'}{' (TLS)' if event.tls else ''} at "
                f"{iso_ns(event.time_ns)}"]
    if isinstance(event, ConnectionClosed):
        missing = "" if event.missing is None else f", {event.missing} missing"
        return [f"{where} close {event.conn}: {event.reason or '?'} after {event.requests} request(s){missing} at "
                f"{iso_ns(event.time_ns)}"]
    if isinstance(event, LocalAnswer):
        request = f"{event.method} {event.target}" if event.method else "(unparsed head)"
        error = f" ({event.error})" if event.error else ""
        return [f"{where} answered by the proxy {event.conn} #{event.seq}: {request} -> {event.status} "
                f"{event.cause}{error} at {iso_ns(event.timestamps.get('received'))}"]
    return _transaction(event, where, max_body)


def _transaction(tx: Transaction, where: str, max_body: int) -> list[str]:
    stamps = tx.timestamps
    took = ""
    if "response_finished" in stamps and "received" in stamps:
        took = f", {(stamps['response_finished'] - stamps['received']) / 1e6:.1f} ms"
    lines = [f"--- {where} {tx.conn} #{tx.seq} at {iso_ns(stamps.get('received'))}{took}"]
    lines += http_message(tx.request, max_body)
    if tx.response is None:
        lines.append("-> no response (the client or the source went away)")
        return lines
    error = f" (proxy: {tx.error})" if tx.error else ""
    lines.append(f"-> {tx.status if tx.status is not None else '?'}{error}")
    lines += http_message(tx.response, max_body, bodiless=tx.method == "HEAD")
    return lines


def http_message(data: bytes, max_body: int = DEFAULT_MAX_BODY, *, bodiless: bool = False) -> list[str]:
    """A request or response as lines: its head (credentials redacted), a blank line, its body shortened. Interim
    ``1xx`` responses before the final one are shown by their status line."""
    lines: list[str] = []
    while True:
        end, sep = _head_end(data)
        if end < 0:
            return [*lines, *_text(data, max_body).splitlines(), "(head incomplete)"]
        head = data[:end].decode("latin-1").split("\r\n" if sep == 4 else "\n")
        rest = data[end + sep:]
        status = head[0].split(" ", 2)
        if head[0].startswith("HTTP/") and len(status) > 1 and status[1].startswith("1") and rest:
            lines.append(head[0])
            data = rest
            continue
        break
    headers = [_header(line) for line in head[1:] if line]
    lines += [head[0], *(f"{name}: {value}" for name, value in headers)]
    if bodiless or not rest:
        return lines
    return [*lines, "", *_body(rest, {name.lower(): value.lower() for name, value in headers}, max_body)]


def _head_end(data: bytes) -> tuple[int, int]:
    crlf, lf = data.find(b"\r\n\r\n"), data.find(b"\n\n")
    if crlf >= 0 and (lf < 0 or crlf <= lf):
        return crlf, 4
    return lf, 2


def _header(line: str) -> tuple[str, str]:
    name, _, value = line.partition(":")
    value = value.strip()
    if name.strip().lower() in _REDACTED:
        scheme = value.split(" ", 1)[0] if " " in value else ""
        value = f"{scheme} <redacted>".strip()
    return name.strip(), value


def _body(body: bytes, headers: dict[str, str], max_body: int) -> list[str]:
    notes = []
    if "chunked" in headers.get("transfer-encoding", ""):
        body, complete = dechunk(body)
        notes.append("chunked" if complete else "chunked, framing incomplete")
    encoding = headers.get("content-encoding", "")
    if encoding in ("gzip", "x-gzip", "deflate"):
        try:
            # wbits 47: a gzip or zlib header, whichever it is.
            decoded = zlib.decompressobj(47).decompress(body)
            notes.append(f"{encoding}, {len(body)} bytes compressed")
            body = decoded
        except zlib.error as exc:
            notes.append(f"{encoding} body not decodable: {exc}")
    elif encoding:
        notes.append(f"{encoding}: shown as received")
    lines = [f"({'; '.join(notes)})"] if notes else []
    return lines + _text(body, max_body).splitlines()


def dechunk(body: bytes) -> tuple[bytes, bool]:
    """The payload of a chunked body and whether its framing was complete (display: what it holds, either way)."""
    out, pos = bytearray(), 0
    while True:
        line_end = body.find(b"\r\n", pos)
        if line_end < 0:
            return bytes(out), False
        try:
            size = int(body[pos:line_end].split(b";", 1)[0].strip(), 16)
        except ValueError:
            return bytes(out), False
        if size == 0:
            return bytes(out), True
        start = line_end + 2
        out += body[start:start + size]
        if start + size > len(body):
            return bytes(out), False
        pos = start + size + 2


def _text(body: bytes, max_body: int) -> str:
    """The body as text, cut after ``max_body`` characters; binary bodies by their size only."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return f"<{len(body)} bytes, binary>"
    if any(ord(c) < 32 and c not in "\r\n\t" for c in text[:max_body]):
        return f"<{len(body)} bytes, binary>"
    if len(text) <= max_body:
        return text
    return f"{text[:max_body]}… ({len(text) - max_body} more characters)"
