"""The record schema: encoding round trip, refusal of other formats, reassembly of split messages."""

from __future__ import annotations

import orjson
import pytest

from workers.capture.reader import ConnectionClosed, ConnectionOpened, LocalAnswer, Transaction, reassemble
from workers.capture.records import _PREFIX, MAGIC, CaptureRecord, Kind, RecordFormatError, decode, encode


def record(kind: Kind, payload: bytes = b"", **meta: object) -> CaptureRecord:
    return decode(encode(kind, {"node": "n", "conn": "c1", **meta}, payload))


def parts(kind: Kind, seq: int, data: bytes, size: int, first: dict[str, object],
          last: dict[str, object]) -> list[CaptureRecord]:
    chunks = [data[i:i + size] for i in range(0, len(data), size)] or [b""]
    out = []
    for i, chunk in enumerate(chunks):
        meta: dict[str, object] = {"seq": seq, "part": i, "offset": i * size, "last": i == len(chunks) - 1}
        if i == 0:
            meta.update(first)
        if i == len(chunks) - 1:
            meta.update(last)
        out.append(record(kind, chunk, **meta))
    return out


def test_round_trip_keeps_bytes_and_metadata() -> None:
    payload = bytes(range(256)) * 3
    value = encode(Kind.REQUEST, {"node": "n", "conn": "c", "seq": 7}, payload)
    assert value.startswith(MAGIC)
    decoded = decode(value)
    assert (decoded.kind, decoded.meta["seq"], decoded.payload, decoded.connection_id) == (Kind.REQUEST, 7, payload,
                                                                                          "c")


@pytest.mark.parametrize("value", [b"", b"JUNKJUNKJUNK", MAGIC + bytes([3, 1, 0, 0, 0, 2]) + b"{}",
                                   MAGIC + bytes([1, 9, 0, 0, 0, 2]) + b"{}",
                                   MAGIC + bytes([1, 6, 0, 0, 0, 2]) + b"{}"])  # kind 6 is new in version 2
def test_other_formats_and_versions_are_refused(value: bytes) -> None:
    with pytest.raises(RecordFormatError):
        decode(value)


def test_split_messages_reassemble_in_any_interleaving() -> None:
    request = b"POST /_bulk HTTP/1.1\r\nContent-Length: 5000\r\n\r\n" + b"r" * 5000
    response = b"HTTP/1.1 200 OK\r\ncontent-length: 3000\r\n\r\n" + b"s" * 3000
    req = parts(Kind.REQUEST, 1, request, 1000, {"received": 1, "method": "POST", "target": "/_bulk"}, {})
    resp = parts(Kind.RESPONSE, 1, response, 700, {}, {"status": 200, "received": 1, "forwarded": 2,
                                                        "response_started": 3, "response_finished": 4})
    stream = [record(Kind.OPEN, t=0, client="127.0.0.1:1"), *req[:2], *resp[:1], *req[2:], *resp[1:],
              record(Kind.CLOSE, t=5, reason="closed", requests=1)]
    out = list(reassemble(stream))
    assert isinstance(out[0], ConnectionOpened) and isinstance(out[-1], ConnectionClosed)
    txn = out[1]
    assert isinstance(txn, Transaction)
    assert (txn.request, txn.response, txn.status, txn.method) == (request, response, 200, "POST")
    assert txn.timestamps == {"received": 1, "forwarded": 2, "response_started": 3, "response_finished": 4}


def test_a_missing_part_is_detected() -> None:
    req = parts(Kind.REQUEST, 1, b"x" * 3000, 1000, {"method": "PUT"}, {})
    with pytest.raises(RecordFormatError, match="missing"):
        list(reassemble([req[0], req[2]]))


def test_a_request_without_response_is_emitted_at_close() -> None:
    req = parts(Kind.REQUEST, 1, b"GET / HTTP/1.1\r\n\r\n", 1000, {"method": "GET"}, {})
    out = list(reassemble([*req, record(Kind.CLOSE, t=1, reason="client gone", requests=1)]))
    assert isinstance(out[0], Transaction) and out[0].response is None


def test_a_small_read_is_one_transaction_record() -> None:
    request, response = b"GET / HTTP/1.1\r\n\r\n", b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"
    one = record(Kind.TRANSACTION, request + response, seq=3, method="GET", target="/", received=1, forwarded=2,
                 response_started=3, response_finished=4, status=200, request_bytes=len(request),
                 response_bytes=len(response))
    (txn,) = list(reassemble([one]))
    assert isinstance(txn, Transaction)
    assert (txn.seq, txn.request, txn.response, txn.status) == (3, request, response, 200)
    assert txn.timestamps == {"received": 1, "forwarded": 2, "response_started": 3, "response_finished": 4}


def version_1(kind: Kind, payload: bytes = b"", **meta: object) -> CaptureRecord:
    """A record as a version 1 proxy wrote it."""
    head = orjson.dumps({"node": "n", "conn": "c1", **meta})
    return decode(_PREFIX.pack(MAGIC, 1, kind, len(head)) + head + payload)


def small_read(seq: int) -> CaptureRecord:
    request, response = b"GET / HTTP/1.1\r\n\r\n", b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
    return record(Kind.TRANSACTION, request + response, seq=seq, method="GET", target="/", status=200,
                  request_bytes=len(request), response_bytes=len(response))


def test_version_1_records_are_still_read() -> None:
    request, response = b"GET / HTTP/1.1\r\n\r\n", b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
    stream = [version_1(Kind.OPEN, t=0), version_1(Kind.TRANSACTION, request + response, seq=2, method="GET",
                                                   target="/", status=200, request_bytes=len(request)),
              version_1(Kind.CLOSE, t=1, reason="client closed", requests=2)]
    assert stream[0].version == 1 and record(Kind.OPEN, t=0).version == 2
    _, txn, closed = reassemble(stream)
    assert isinstance(txn, Transaction) and txn.seq == 2 and txn.response == response
    # Version 1 does not say why seq 1 is missing (suppressed, answered by the proxy, or lost).
    assert isinstance(closed, ConnectionClosed) and closed.suppressed is None and closed.missing is None


def test_a_local_answer_is_its_own_event_and_fills_its_seq() -> None:
    request, answer = b"POST /i/_doc HTTP/1.1\r\nContent-Length: 9\r\n\r\n", b"HTTP/1.1 503 Service Unavailable\r\n\r\n"
    local = record(Kind.LOCAL, request + answer, seq=2, method="POST", target="/i/_doc", status=503,
                   cause="capture unavailable", received=5, answered=6, request_bytes=len(request),
                   response_bytes=len(answer), truncated=True)
    stream = [record(Kind.OPEN, t=0), small_read(1), local, small_read(4),
              record(Kind.CLOSE, t=9, reason="client closed", requests=4, suppressed=1)]
    events = list(reassemble(stream))
    (answered,) = [e for e in events if isinstance(e, LocalAnswer)]
    assert (answered.seq, answered.status, answered.cause, answered.method, answered.target) == (
        2, 503, "capture unavailable", "POST", "/i/_doc")
    assert (answered.request, answered.response, answered.truncated) == (request, answer, True)
    assert answered.timestamps == {"received": 5, "answered": 6}
    closed = events[-1]
    # seq 3 is the suppressed one: no gap is left unexplained.
    assert isinstance(closed, ConnectionClosed) and (closed.suppressed, closed.missing) == (1, 0)


def test_gaps_that_nothing_explains_are_counted() -> None:
    partial = parts(Kind.REQUEST, 3, b"PUT /i/_doc/1 HTTP/1.1\r\nContent-Length: 5000\r\n\r\n" + b"x" * 900, 1000,
                    {"method": "PUT"}, {})[0]
    partial.meta["last"] = False
    stream = [record(Kind.OPEN, t=0), small_read(1), partial,
              record(Kind.CLOSE, t=9, reason="body timeout", requests=3, suppressed=0, incomplete=3)]
    *_, closed = reassemble(stream)
    # seq 3 was cut short (the close record says so); seq 2 came from nowhere: one record lost.
    assert isinstance(closed, ConnectionClosed) and (closed.incomplete, closed.missing) == (3, 1)
