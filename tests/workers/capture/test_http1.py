"""Message framing: boundaries of bodies however the bytes are split, and refusal of malformed framing."""

from __future__ import annotations

import pytest

from workers.capture.http1 import BodyFramer, Framing, MalformedHttp, parse_request_head, parse_response_head

CHUNKED = b"5\r\nhello\r\n1a;ext=1\r\n" + b"z" * 26 + b"\r\n0\r\nX-Trailer: t\r\n\r\n"
NEXT = b"GET / HTTP/1.1\r\n\r\n"


def consume(framer: BodyFramer, data: bytes, step: int) -> int:
    """Offer ``data`` in slices of ``step`` bytes as a socket would; returns the bytes taken as body."""
    pending, taken = b"", 0
    for i in range(0, len(data), step):
        pending += data[i:i + step]
        n = framer.feed(pending)
        taken += n
        pending = pending[n:]
        if framer.done:
            break
    return taken


@pytest.mark.parametrize("step", [1, 2, 3, 7, 64, 10_000])
def test_chunked_body_ends_exactly_before_the_next_message(step: int) -> None:
    framer = BodyFramer(Framing.CHUNKED)
    assert consume(framer, CHUNKED + NEXT, step) == len(CHUNKED)
    assert framer.done


def test_length_body_and_until_close() -> None:
    framer = BodyFramer(Framing.LENGTH, 10)
    assert framer.feed(b"0123456789" + NEXT) == 10 and framer.done
    until = BodyFramer(Framing.UNTIL_CLOSE)
    assert until.feed(b"abc") == 3 and not until.done
    assert until.finish_at_eof()
    truncated = BodyFramer(Framing.LENGTH, 10)
    truncated.feed(b"01234")
    assert not truncated.finish_at_eof()


@pytest.mark.parametrize("body", [b"zz\r\nhello\r\n", b"5\r\nhelloXX0\r\n\r\n", b"5\nhello\r\n"])
def test_malformed_chunks_are_refused(body: bytes) -> None:
    with pytest.raises(MalformedHttp):
        BodyFramer(Framing.CHUNKED).feed(body)


def test_request_heads() -> None:
    head = parse_request_head(b"POST /idx/_bulk?refresh=true HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n"
                              b"Expect: 100-continue\r\n\r\n")
    assert (head.method, head.path, head.framing, head.length, head.keep_alive, head.expect_continue) == (
        "POST", "/idx/_bulk", Framing.LENGTH, 12, True, True)
    chunked = parse_request_head(b"PUT /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
    assert chunked.framing is Framing.CHUNKED and not chunked.keep_alive
    http10 = parse_request_head(b"GET / HTTP/1.0\r\n\r\n")
    assert http10.framing is Framing.NONE and not http10.keep_alive
    for bad in (b"GARBAGE\r\n\r\n", b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                b"GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"):
        with pytest.raises(MalformedHttp):
            parse_request_head(bad)


def test_response_heads() -> None:
    ok = parse_response_head(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n", "GET")
    assert (ok.status, ok.framing, ok.length, ok.keep_alive) == (200, Framing.LENGTH, 5, True)
    head = parse_response_head(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n", "HEAD")
    assert head.framing is Framing.NONE
    assert parse_response_head(b"HTTP/1.1 100 Continue\r\n\r\n", "POST").interim
    until = parse_response_head(b"HTTP/1.1 200 OK\r\n\r\n", "GET")
    assert until.framing is Framing.UNTIL_CLOSE and not until.keep_alive


def test_connection_close_is_seen_on_bodiless_messages() -> None:
    assert not parse_request_head(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n").keep_alive
    assert parse_request_head(b"GET / HTTP/1.1\r\n\r\n").keep_alive
    assert not parse_response_head(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n", "GET").keep_alive
