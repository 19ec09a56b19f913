"""The record schema: encoding round trip, refusal of other formats, reassembly of split messages."""

from __future__ import annotations

import pytest

from workers.capture.reader import ConnectionClosed, ConnectionOpened, Transaction, reassemble
from workers.capture.records import MAGIC, CaptureRecord, Kind, RecordFormatError, decode, encode


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


@pytest.mark.parametrize("value", [b"", b"JUNKJUNKJUNK", MAGIC + bytes([2, 1, 0, 0, 0, 2]) + b"{}",
                                   MAGIC + bytes([1, 9, 0, 0, 0, 2]) + b"{}"])
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
