"""Captured request and response bytes parse into plain messages: chunked framing, gzip/deflate and interim
responses undone, malformed input refused by name; and what is sent back out (headers, body)."""

from __future__ import annotations

import gzip
import zlib

import pytest

from workers.replay.messages import HttpRequest
from workers.replay.parsing import (
    MessageParseError,
    gzip_body,
    parse_request,
    parse_response,
    wire_body,
    wire_headers,
)


def chunked(body: bytes, size: int) -> bytes:
    """``body`` in chunked transfer coding, ``size`` bytes a chunk."""
    parts = [b"%x\r\n%s\r\n" % (len(body[i:i + size]), body[i:i + size]) for i in range(0, len(body), size)]
    return b"".join(parts) + b"0\r\n\r\n"


def test_request_with_length_query_and_escaped_path() -> None:
    raw = (b"PUT /logs%2D2024/_doc/a%20b?refresh=true&routing=x%2Cy HTTP/1.1\r\nHost: source:9200\r\n"
           b"Content-Type: application/json\r\nContent-Length: 9\r\n\r\n{\"a\": 1}\n")
    req = parse_request(raw)
    assert (req.method, req.path, req.query) == ("PUT", "/logs%2D2024/_doc/a%20b", "refresh=true&routing=x%2Cy")
    assert req.segments == ["logs-2024", "_doc", "a b"]
    assert req.headers == (("Host", "source:9200"), ("Content-Type", "application/json"))
    assert req.body == b'{"a": 1}\n' and not req.gzip
    assert req.target == "/logs%2D2024/_doc/a%20b?refresh=true&routing=x%2Cy"


def test_chunked_gzip_request_with_expect_continue() -> None:
    body = b"".join(b'{"index":{"_id":"%d"}}\n{"n":%d}\n' % (i, i) for i in range(500))
    raw = (b"POST /_bulk HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Encoding: gzip\r\n"
           b"Transfer-Encoding: chunked\r\n\r\n" + chunked(gzip.compress(body), 1000))
    req = parse_request(raw)
    assert req.body == body
    assert [k for k, _ in req.headers] == ["Host", "Expect"]  # framing and coding undone, so their headers gone
    assert wire_headers(req) == [("Host", "h")]  # Expect is hop-by-hop


def test_chunk_extensions_and_trailers_are_not_headers() -> None:
    raw = (b"POST /i/_doc HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Checksum: 1\r\n\r\n")
    req = parse_request(raw)
    assert req.body == b"abcde" and req.header("X-Checksum") is None


@pytest.mark.parametrize("coding", ["deflate-zlib", "deflate-raw", "gzip-members", "x-gzip"])
def test_content_codings(coding: str) -> None:
    body = b'{"query":{"match_all":{}}}' * 50
    if coding == "deflate-zlib":
        name, data = b"deflate", zlib.compress(body)
    elif coding == "deflate-raw":
        co = zlib.compressobj(wbits=-15)
        name, data = b"deflate", co.compress(body) + co.flush()
    elif coding == "gzip-members":
        name, data = b"gzip", gzip.compress(body[:300]) + gzip.compress(body[300:])
    else:
        name, data = b"x-gzip", gzip.compress(body)
    raw = b"POST /_search HTTP/1.1\r\nContent-Encoding: %s\r\nContent-Length: %d\r\n\r\n%s" % (name, len(data), data)
    assert parse_request(raw).body == body


def test_absolute_form_and_bodiless_request() -> None:
    req = parse_request(b"GET http://source:9200/a,b/_search?q=x HTTP/1.1\r\nHost: source:9200\r\n\r\n")
    assert (req.path, req.query, req.body) == ("/a,b/_search", "q=x", b"")


@pytest.mark.parametrize(("raw", "message"), [
    (b"NOT HTTP AT ALL\r\n\r\n", "malformed HTTP request"),
    (b"GET / HTTP/1.1\r\nHost: h\r\n", "incomplete HTTP request head"),
    (b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc", "truncated HTTP request body"),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", "truncated HTTP request body"),
    (b"POST / HTTP/1.1\r\nContent-Encoding: gzip\r\nContent-Length: 3\r\n\r\nabc", "not valid gzip data"),
    (b"POST / HTTP/1.1\r\nContent-Encoding: br\r\nContent-Length: 3\r\n\r\nabc", "unsupported content coding 'br'"),
    (b"GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n", "bytes after its end"),
    (b"GET / HTTP/1.1\r\n\r\nxx", "bytes after its end"),
])
def test_malformed_requests_are_named(raw: bytes, message: str) -> None:
    with pytest.raises(MessageParseError, match=message):
        parse_request(raw)


def test_interim_continue_then_chunked_gzip_response() -> None:
    body = b'{"took":3,"errors":false,"items":[]}'
    raw = (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
           b"content-encoding: gzip\r\ntransfer-encoding: chunked\r\n\r\n" + chunked(gzip.compress(body), 7))
    resp = parse_response(raw)
    assert (resp.status, resp.body, resp.headers) == (200, body, (("content-type", "application/json"),))


def test_response_framings() -> None:
    head = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n", request_method="HEAD")
    assert (head.status, head.body) == (200, b"")
    until_close = parse_response(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it")
    assert until_close.body == b"all of it"
    assert parse_response(b"HTTP/1.1 204 No Content\r\n\r\n").status == 204
    assert parse_response(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}").body == b"{}"


@pytest.mark.parametrize(("raw", "message"), [
    (b"HTTP/1.1 100 Continue\r\n\r\n", "no final response"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", "truncated HTTP response body"),
    (b"HTTP/1.1 2000 OK\r\n\r\n", "malformed HTTP response"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200", "bytes after its end"),
])
def test_malformed_responses_are_named(raw: bytes, message: str) -> None:
    with pytest.raises(MessageParseError, match=message):
        parse_response(raw)


def test_wire_headers_drop_hop_by_hop_and_connection_named() -> None:
    req = HttpRequest("POST", "/_bulk", headers=(
        ("Host", "t:9200"), ("Connection", "keep-alive, X-Trace"), ("X-Trace", "1"), ("Keep-Alive", "5"),
        ("TE", "trailers"), ("Trailer", "X"), ("Upgrade", "h2c"), ("Proxy-Authorization", "Basic eA=="),
        ("Proxy-Foo", "1"), ("Content-Type", "application/x-ndjson"), ("Authorization", "Basic dGFyZ2V0")),
        body=b"x")
    assert wire_headers(req) == [("Host", "t:9200"), ("Content-Type", "application/x-ndjson"),
                                 ("Authorization", "Basic dGFyZ2V0")]
    zipped = HttpRequest("POST", "/_bulk", headers=(("Content-Encoding", "deflate"),), body=b"x" * 100, gzip=True)
    assert wire_headers(zipped) == [("Content-Encoding", "gzip")]


def test_wire_body_is_gzip_and_stable() -> None:
    body = b'{"index":{}}\n{"a":1}\n' * 100
    plain = HttpRequest("POST", "/_bulk", body=body)
    assert wire_body(plain) is body
    zipped = HttpRequest("POST", "/_bulk", body=body, gzip=True)
    sent = wire_body(zipped)
    assert gzip.decompress(sent) == body
    # The same bytes whenever asked (SigV4 signs them before the sender sends them), cached or not.
    assert wire_body(zipped) == sent == gzip_body(bytes(bytearray(body)))
