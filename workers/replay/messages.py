"""Parsed HTTP messages, the unit transforms and comparisons work on.

A captured request is parsed once: its framing (chunked transfer coding) and compression (gzip) are undone, so
``body`` is the plain entity. ``encode`` frames it again for the wire with a Content-Length.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from urllib.parse import quote, unquote


def first_header(headers: tuple[tuple[str, str], ...], name: str) -> str | None:
    """The first value of header ``name`` (case-insensitive) among ``headers``, or None."""
    lowered = name.lower()
    for key, value in headers:
        if key.lower() == lowered:
            return value
    return None


@dataclass(frozen=True)
class HttpRequest:
    """One request: names and values as text (Latin-1 on the wire), the body decoded."""

    method: str
    # The path without the query, percent-encoded as sent (``/logs-2024/_doc/a%2Fb``): a decoded path could not tell
    # an id holding "/" from two segments. ``segments`` gives the decoded parts.
    path: str
    # The query string as sent (without ``?``), kept verbatim so parameters round-trip unchanged.
    query: str = ""
    # In order, names as the client spelled them.
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    # Set by a transform: sent to the target with gzip content coding.
    gzip: bool = False

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        return first_header(self.headers, name)

    def without_headers(self, *names: str) -> HttpRequest:
        """A copy without these headers (case-insensitive)."""
        drop = {n.lower() for n in names}
        return replace(self, headers=tuple((k, v) for k, v in self.headers if k.lower() not in drop))

    def with_header(self, name: str, value: str) -> HttpRequest:
        """A copy where ``name`` has exactly this one value."""
        return replace(self.without_headers(name), headers=(*self.without_headers(name).headers, (name, value)))

    @property
    def target(self) -> str:
        """The request target for the wire: the path, then the query."""
        return f"{self.path}?{self.query}" if self.query else self.path

    @property
    def segments(self) -> list[str]:
        """The path's non-empty segments, each decoded: ``/a/_doc/x%2Fy`` gives ``['a', '_doc', 'x/y']``."""
        return [unquote(s) for s in self.path.split("/") if s]


@dataclass(frozen=True)
class HttpResponse:
    """One response: status, headers, decoded body."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        return first_header(self.headers, name)


@dataclass
class TransformOutcome:
    """What the transform pipeline made of one captured request: the requests to send (possibly none) and, when a
    transform failed, why (then nothing is sent)."""

    requests: list[HttpRequest] = field(default_factory=list)
    error: str | None = None


def encode_segment(segment: str) -> str:
    """One path segment for the wire: "/" and other reserved characters percent-encoded."""
    return quote(segment, safe=",*:@!$&'()+;=-._~<>{}")


def path_of(segments: list[str] | tuple[str, ...]) -> str:
    """A path made of these decoded segments."""
    return "/" + "/".join(encode_segment(s) for s in segments)


@dataclass
class TargetExchange:
    """One request sent to the target and what came back (after retries: ``attempts`` counts them)."""

    request: HttpRequest
    response: HttpResponse | None
    # Nanoseconds since the epoch: the first attempt's send, the final attempt's last response byte.
    started_ns: int = 0
    finished_ns: int = 0
    attempts: int = 1
    # Why there is no usable response (connection refused, timeout, retries exhausted ...).
    error: str | None = None


@dataclass
class ReplayedTransaction:
    """A captured transaction and what replaying it did: the tuple that is written and compared."""

    conn: str
    seq: int
    # Where the transaction's last record sits in the topic.
    partition: int
    offset: int
    source_request: HttpRequest | None
    source_response: HttpResponse | None
    # Nanoseconds since the epoch on the proxy's clock: the request arrived, the response was finished.
    source_received_ns: int
    source_finished_ns: int | None
    exchanges: list[TargetExchange] = field(default_factory=list)
    # A transform failed, a request could not be parsed, or the record was dead-lettered: why.
    error: str | None = None
    dead_lettered: bool = False
