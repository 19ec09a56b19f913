"""Captured HTTP/1.1 bytes into :class:`HttpRequest` / :class:`HttpResponse`, and what goes back on the wire.

A captured message holds exactly what the client sent or received (docs/capture-format.md): chunked framing,
``Content-Encoding: gzip``, an interim ``100 Continue`` before the final response. Parsing undoes all of that, so
``body`` is the plain entity and the framing headers (Content-Length, Transfer-Encoding, Content-Encoding) are
dropped from ``headers``. llhttp (httptools) validates the syntax and removes the chunked framing in C; nothing
here walks the body byte by byte in Python.

For sending, :func:`wire_headers` gives the end-to-end headers and :func:`wire_body` the bytes to send (gzip'd when
the request asks for it). SigV4 signs :func:`wire_body`, so a sender must send exactly those bytes.
"""

from __future__ import annotations

from typing import cast
from urllib.parse import urlsplit

import httptools
from isal import igzip, isal_zlib

from workers.common.errors import MigrationError
from workers.replay.messages import HttpRequest, HttpResponse

# Headers describing the framing or coding of the captured bytes: they are undone by parsing, so they go.
_FRAMING = frozenset({"content-length", "transfer-encoding", "content-encoding"})
# Hop-by-hop headers (RFC 9110 7.6.1) and headers tied to how this message was framed and coded: the sender's
# HTTP client frames and codes the replayed request itself.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding",
                        "expect", "upgrade", "te", "trailer", "proxy-connection", "proxy-authorization",
                        "proxy-authenticate"})
# isal's fastest level: the target decompresses whatever level we pick, and CPU is the replayer's budget.
GZIP_LEVEL = 1
# isal's stub declares its error an instance; it is the exception class its decompressors raise.
_ISAL_ERROR = cast("type[Exception]", isal_zlib.error)


class MessageParseError(MigrationError):
    """Captured bytes are not one valid HTTP/1.1 message; the message says what is wrong."""


class _Collector:
    """httptools callback target: one message's head and body (interim responses are skipped by the caller)."""

    __slots__ = ("begun", "body", "complete", "headers", "heads", "trailers", "url")

    def __init__(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        # How many messages began, had their head end, completed (a 100 Continue then the final response: 2 each).
        self.begun = 0
        self.heads = 0
        self.complete = 0
        self.trailers = False

    def on_message_begin(self) -> None:
        # A new message: an interim response's head is forgotten, the final one's kept.
        self.begun += 1
        self.headers = []
        self.body = []
        self.trailers = False

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        # Fields after the head are chunked trailers: not part of the replayed request.
        if not self.trailers:
            self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.heads += 1
        self.trailers = True

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.complete += 1


def _feed(parser: httptools.HttpRequestParser | httptools.HttpResponseParser, collector: _Collector, raw: bytes,
          what: str) -> None:
    try:
        parser.feed_data(raw)
    except httptools.HttpParserUpgrade:
        pass  # an Upgrade request or 101 response: the head is complete, what follows is another protocol
    except httptools.HttpParserError as exc:
        if collector.complete and collector.begun > collector.complete:
            raise MessageParseError(f"captured {what} holds bytes after its end ({exc})") from None
        raise MessageParseError(f"malformed HTTP {what}: {exc}") from None


def _body(chunks: list[bytes]) -> bytes:
    if not chunks:
        return b""
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _header_values(headers: list[tuple[bytes, bytes]], name: bytes) -> list[bytes]:
    """Every comma-separated element of header ``name`` (lower case), lower case, in order."""
    out: list[bytes] = []
    for key, value in headers:
        if key.lower() == name:
            out += (v.strip().lower() for v in value.split(b",") if v.strip())
    return out


def _decode_codings(body: bytes, headers: list[tuple[bytes, bytes]], what: str) -> bytes:
    """The body with its content codings (and any transfer coding but chunked, which llhttp removed) undone."""
    codings = [c for c in _header_values(headers, b"transfer-encoding") if c != b"chunked"]
    codings = _header_values(headers, b"content-encoding") + codings
    # Codings are listed in the order they were applied: undo them last first.
    for coding in reversed(codings):
        if body:
            body = _decode(body, coding, what)
    return body


def _decode(body: bytes, coding: bytes, what: str) -> bytes:
    if coding == b"identity":
        return body
    if coding not in (b"gzip", b"x-gzip", b"deflate"):
        raise MessageParseError(f"{what} has an unsupported content coding {coding.decode('latin-1')!r}")
    try:
        if coding != b"deflate":
            # igzip reads concatenated gzip members as one stream, as RFC 1952 allows.
            return igzip.decompress(body)
        # RFC 9110 says zlib-wrapped; some clients send raw deflate: accept both.
        try:
            return isal_zlib.decompress(body)
        except _ISAL_ERROR:
            return isal_zlib.decompress(body, wbits=-15)
    except (_ISAL_ERROR, EOFError, OSError) as exc:
        raise MessageParseError(f"{what} body is not valid {coding.decode('latin-1')} data: {exc}") from None


def _text_headers(headers: list[tuple[bytes, bytes]]) -> tuple[tuple[str, str], ...]:
    return tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in headers
                 if k.lower().decode("latin-1") not in _FRAMING)


def _split_target(url: bytes) -> tuple[str, str]:
    """The request target as (path as sent, verbatim query)."""
    if not url.startswith(b"/"):
        if url == b"*":
            return "*", ""
        # absolute-form (http://host/path?query), as a client talking to a proxy sends it
        try:
            parts = urlsplit(url.decode("latin-1"))
        except ValueError:
            raise MessageParseError(f"request target {url[:200]!r} is not a path nor an absolute URL") from None
        path, query = parts.path or "/", parts.query
    else:
        raw_path, _, query_bytes = url.partition(b"?")
        query = query_bytes.partition(b"#")[0].decode("latin-1")
        try:
            # Raw non-ASCII in a target is out of spec; when it is UTF-8 (as clients that send it mean) keep it so.
            path = raw_path.decode("utf-8")
        except UnicodeDecodeError:
            path = raw_path.decode("latin-1")
    return path, query


def parse_request(raw: bytes) -> HttpRequest:
    """One captured request (request line, headers, body as sent) as an :class:`HttpRequest` with a plain body."""
    collector = _Collector()
    parser = httptools.HttpRequestParser(collector)
    _feed(parser, collector, raw, "request")
    if collector.heads == 0:
        raise MessageParseError(f"incomplete HTTP request head ({len(raw)} bytes, no empty line ending it)")
    if collector.complete == 0:
        raise MessageParseError(f"truncated HTTP request body ({len(raw)} bytes captured)")
    if collector.begun > 1:
        raise MessageParseError("captured request holds bytes after its end")
    method = parser.get_method().decode("latin-1")
    path, query = _split_target(collector.url)
    body = _decode_codings(_body(collector.body), collector.headers, "request")
    return HttpRequest(method, path, query, _text_headers(collector.headers), body)


def _final_head_end(raw: bytes) -> int:
    """Where the first non-1xx response head in ``raw`` ends (interim responses have no body)."""
    at = 0
    while True:
        end = raw.find(b"\r\n\r\n", at)
        if end < 0:
            raise MessageParseError(f"incomplete HTTP response head ({len(raw)} bytes, no empty line ending it)")
        status = raw[at:raw.find(b"\r\n", at)].split(None, 2)[1:2]
        if not (status and status[0].startswith(b"1") and status[0] != b"101"):
            return end + 4
        at = end + 4


def parse_response(raw: bytes, *, request_method: str | None = None) -> HttpResponse:
    """The final response in captured bytes (interim 1xx responses skipped) with a plain body.

    ``request_method``: the request's method; a response to HEAD declares a length but has no body.
    """
    collector = _Collector()
    parser = httptools.HttpResponseParser(collector)
    if request_method == "HEAD":
        raw = raw[:_final_head_end(raw)]
    _feed(parser, collector, raw, "response")
    status = parser.get_status_code() if collector.heads else 0
    # Interim responses (100 Continue, 103 Early Hints) come before the final one: keep feeding past them.
    if collector.heads == 0 or (100 <= status < 200 and status != 101):
        raise MessageParseError(f"incomplete HTTP response head ({len(raw)} bytes, no final response)")
    if collector.begun > collector.heads:
        raise MessageParseError("captured response holds bytes after its end")
    if collector.complete < collector.heads and request_method != "HEAD":
        # Neither a length nor chunked framing: the body ran until the connection closed, so all of it is here.
        framed = any(k.lower() in (b"content-length", b"transfer-encoding") for k, _ in collector.headers)
        if framed:
            raise MessageParseError(f"truncated HTTP response body ({len(raw)} bytes captured)")
    body = b"" if request_method == "HEAD" else _decode_codings(_body(collector.body), collector.headers, "response")
    return HttpResponse(status, _text_headers(collector.headers), body)


def wire_headers(req: HttpRequest) -> list[tuple[str, str]]:
    """The headers to send: the request's own minus hop-by-hop ones (and those its Connection header names), plus
    ``Content-Encoding: gzip`` when the body is sent compressed. Content-Length is the sender's to set."""
    drop = HOP_BY_HOP
    connection = req.header("Connection")
    if connection:
        drop = drop | {t.strip().lower() for t in connection.split(",")}
    out = [(k, v) for k, v in req.headers if k.lower() not in drop and not k.lower().startswith("proxy-")]
    if req.gzip:
        out.append(("Content-Encoding", "gzip"))
    return out


# The last body compressed and its gzip bytes: SigV4 signs the compressed body and the sender then sends it, so
# one request's body is asked for twice in a row; keeping the body object itself makes the identity check sound.
_last_gzip: tuple[bytes, bytes] = (b"", b"")


def gzip_body(body: bytes) -> bytes:
    """``body`` gzip'd, the same bytes every time (a zlib-made gzip member has mtime 0), as :func:`wire_body` sends
    and SigV4 signs them."""
    global _last_gzip
    cached = _last_gzip
    if cached[0] is body and body:
        return cached[1]
    compressed = isal_zlib.compress(body, GZIP_LEVEL, wbits=31)
    _last_gzip = (body, compressed)
    return compressed


def wire_body(req: HttpRequest) -> bytes:
    """The body bytes to send: gzip'd when ``req.gzip`` (then :func:`wire_headers` says so)."""
    return gzip_body(req.body) if req.gzip else req.body
