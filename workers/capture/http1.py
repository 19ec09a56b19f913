"""HTTP/1.1 message framing: where a request or response head ends, what it says, and where its body ends.

httptools (llhttp) parses and validates each head. It reports no byte offsets of message ends (it has no pause),
which a byte-exact proxy needs to split pipelined messages and to record each message's own bytes, so the body
boundaries are counted here from the framing the head declares (RFC 9112 section 6): Content-Length,
chunked, or until the connection closes (responses only).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from functools import cached_property

import httptools

HEAD_END = b"\r\n\r\n"
# A chunk-size line or a trailer line longer than this is refused rather than buffered without end.
MAX_LINE = 8192


class MalformedHttp(Exception):
    """The peer sent bytes that are not valid HTTP/1.1 framing."""


class Framing(Enum):
    """How a message's body ends."""

    NONE = "none"
    LENGTH = "length"
    CHUNKED = "chunked"
    UNTIL_CLOSE = "until-close"


class _Completion:
    """httptools callback target: only the end of the head, when llhttp knows whether the connection persists.

    Per-header callbacks cost more than llhttp's whole parse of a small head; the few headers the proxy needs are
    found in the raw bytes instead, once llhttp has validated them.
    """

    __slots__ = ("complete", "keep_alive", "parser")

    def __init__(self) -> None:
        self.complete = False
        self.keep_alive = True
        self.parser: httptools.HttpRequestParser | httptools.HttpResponseParser | None = None

    def on_headers_complete(self) -> None:
        self.complete = True
        # Asked here: once llhttp completes a bodiless message it resets the flags for the next one.
        if self.parser is not None:
            self.keep_alive = self.parser.should_keep_alive()


def _validate(raw: bytes, parser_class: type[httptools.HttpRequestParser] | type[httptools.HttpResponseParser],
              what: str) -> _Completion:
    completion = _Completion()
    parser = completion.parser = parser_class(completion)
    try:
        parser.feed_data(raw)
    except httptools.HttpParserUpgrade:
        pass  # an Upgrade request: the head itself is complete
    except httptools.HttpParserError as exc:
        raise MalformedHttp(str(exc)) from None
    if not completion.complete:
        raise MalformedHttp(f"incomplete {what} head")
    return completion


_CONTENT_LENGTH = b"\r\ncontent-length:"


def _values(raw: bytes, lower: bytes, name: bytes) -> list[bytes]:
    """Every value of header ``name`` (lower case) in a head llhttp has validated, in order."""
    key = b"\r\n" + name + b":"
    values = []
    at = lower.find(key)
    while at >= 0:
        start = at + len(key)
        end = raw.find(b"\r\n", start)
        values.append(raw[start:end].strip(b" \t"))
        at = lower.find(key, end)
    return values


def _header_list(raw: bytes) -> list[tuple[bytes, bytes]]:
    headers = []
    for line in raw.split(b"\r\n")[1:]:
        if line:
            name, _, value = line.partition(b":")
            headers.append((name, value.strip(b" \t")))
    return headers


@dataclass(frozen=True)
class RequestHead:
    """A parsed request head; ``raw`` holds its bytes exactly as received."""

    raw: bytes
    method: str
    target: bytes
    keep_alive: bool
    framing: Framing
    length: int
    expect_continue: bool

    @property
    def path(self) -> str:
        """The request target without its query, decoded as Latin-1 (bytes kept one to one)."""
        return self.target.split(b"?", 1)[0].decode("latin-1")

    @cached_property
    def headers(self) -> list[tuple[bytes, bytes]]:
        """The header fields in order, names as sent (only suppression rules by header need them)."""
        return _header_list(self.raw)


@dataclass(frozen=True)
class ResponseHead:
    """A parsed response head; ``raw`` holds its bytes exactly as received."""

    raw: bytes
    status: int
    keep_alive: bool
    framing: Framing
    length: int

    @property
    def interim(self) -> bool:
        """True for a 1xx response, which another response follows (101 switches protocols and is final)."""
        return 100 <= self.status < 200 and self.status != 101


def _body_framing(raw: bytes, lower: bytes, default: Framing) -> tuple[Framing, int]:
    # llhttp has already refused a head with both Transfer-Encoding and Content-Length, or a bad or repeated length.
    if b"\r\ntransfer-encoding:" in lower:
        # Chunked must be the last coding (RFC 9112 6.1); any other final coding reads until close.
        last = b",".join(_values(raw, lower, b"transfer-encoding")).rsplit(b",", 1)[-1].strip().lower()
        return (Framing.CHUNKED if last == b"chunked" else Framing.UNTIL_CLOSE), 0
    at = lower.find(_CONTENT_LENGTH)
    if at < 0:
        return default, 0
    value = raw[at + len(_CONTENT_LENGTH):raw.find(b"\r\n", at + len(_CONTENT_LENGTH))]
    try:
        length = int(value)  # surrounding spaces and tabs allowed, as in a field value
    except ValueError:
        raise MalformedHttp(f"bad Content-Length {value!r}") from None
    return (Framing.LENGTH if length else Framing.NONE), length


def parse_request_head(raw: bytes) -> RequestHead:
    """The request head in ``raw`` (which ends with an empty line)."""
    completion = _validate(raw, httptools.HttpRequestParser, "request")
    lower = raw.lower()
    framing, length = _body_framing(raw, lower, Framing.NONE)
    if framing is Framing.UNTIL_CLOSE:
        raise MalformedHttp("a request body must be chunked or have a Content-Length")
    expect = b"\r\nexpect:" in lower and any(v.lower() == b"100-continue" for v in _values(raw, lower, b"expect"))
    # llhttp accepted the request line: method, target and version, apart by spaces (it tolerates runs of them).
    method, target, _ = raw[:raw.find(b"\r\n")].split(None, 2)
    return RequestHead(raw, method.decode("latin-1"), target, completion.keep_alive, framing, length, expect)


def parse_response_head(raw: bytes, request_method: str) -> ResponseHead:
    """The response head in ``raw``; the request's method decides whether a body follows (HEAD)."""
    completion = _validate(raw, httptools.HttpResponseParser, "response")
    assert isinstance(completion.parser, httptools.HttpResponseParser)
    status = completion.parser.get_status_code()
    # RFC 9112 6.3: these responses never have a body, whatever their headers say.
    if request_method == "HEAD" or 100 <= status < 200 or status in (204, 304):
        framing, length = Framing.NONE, 0
    else:
        framing, length = _body_framing(raw, raw.lower(), Framing.UNTIL_CLOSE)
    return ResponseHead(raw, status, completion.keep_alive and framing is not Framing.UNTIL_CLOSE, framing, length)


class BodyFramer:
    """Counts how many of the bytes offered belong to the current message's body, and when it ends."""

    __slots__ = ("_framing", "_remaining", "_state", "done")

    def __init__(self, framing: Framing, length: int = 0) -> None:
        self._framing = framing
        self._remaining = length
        self._state = "size"
        self.done = framing is Framing.NONE or (framing is Framing.LENGTH and length == 0)

    def feed(self, data: bytes | bytearray | memoryview) -> int:
        """The number of leading bytes of ``data`` that belong to this body (possibly 0 until more arrives)."""
        if self.done:
            return 0
        if self._framing is Framing.LENGTH:
            taken = min(self._remaining, len(data))
            self._remaining -= taken
            self.done = self._remaining == 0
            return taken
        if self._framing is Framing.UNTIL_CLOSE:
            return len(data)
        return self._feed_chunked(data)

    def finish_at_eof(self) -> bool:
        """At end of input: True when that ends the body (until-close framing), else the body is truncated."""
        if self._framing is Framing.UNTIL_CLOSE:
            self.done = True
        return self.done

    def _feed_chunked(self, data: bytes | bytearray | memoryview) -> int:
        pos, size = 0, len(data)
        view = memoryview(data)
        while pos < size and not self.done:
            if self._state == "data":
                taken = min(self._remaining, size - pos)
                pos += taken
                self._remaining -= taken
                if self._remaining == 0:
                    self._state = "crlf"
                continue
            end = bytes(view[pos:pos + MAX_LINE]).find(b"\n")
            if end < 0:
                if size - pos >= MAX_LINE:
                    raise MalformedHttp("chunk line too long")
                break  # the line is not complete yet: offer these bytes again with more
            line = bytes(view[pos:pos + end + 1])
            if not line.endswith(b"\r\n"):
                raise MalformedHttp("chunk line without CRLF")
            pos += end + 1
            if self._state == "crlf":
                if line != b"\r\n":
                    raise MalformedHttp("chunk data not followed by CRLF")
                self._state = "size"
            elif self._state == "size":
                digits = line[:-2].split(b";", 1)[0].strip()
                try:
                    self._remaining = int(digits, 16)
                except ValueError:
                    raise MalformedHttp(f"bad chunk size {digits[:20]!r}") from None
                if self._remaining < 0 or not digits.isalnum():
                    raise MalformedHttp(f"bad chunk size {digits[:20]!r}")
                self._state = "data" if self._remaining else "trailer"
            elif line == b"\r\n":  # the empty line that ends the trailer section
                self.done = True
        return pos
