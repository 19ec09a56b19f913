"""Commit positions with unfinished transactions, reassembly from the middle of a partition, auto-id pinning."""

from __future__ import annotations

import orjson

from workers.capture.records import Kind, encode
from workers.replay.autoid import pin_auto_ids
from workers.replay.feed import PartitionFeed
from workers.replay.messages import HttpRequest, HttpResponse
from workers.replay.offsets import PartitionOffsets


def test_position_stops_at_the_oldest_unfinished_transaction() -> None:
    offsets = PartitionOffsets(None)
    assert offsets.position() is None
    for offset, key in ((10, "a"), (11, "b"), (12, "c")):
        offsets.seen(offset)
        offsets.begin(key, offset)
    offsets.seen(13)
    assert offsets.position() == 10
    offsets.finish("b")  # finished out of order: still held by "a"
    assert offsets.position() == 10
    offsets.finish("a")
    assert offsets.position() == 12
    offsets.finish("c")
    assert offsets.position() == 14 and offsets.unfinished == 0


def _request(conn: str, seq: int, raw: bytes, **meta: object) -> bytes:
    return encode(Kind.REQUEST, {"node": "n", "conn": conn, "seq": seq, "part": 0, "offset": 0, "last": True,
                                 "received": 1_000_000_000, "method": "PUT", "target": "/i/_doc/1", **meta}, raw)


def _response(conn: str, seq: int, raw: bytes, received_ns: int) -> bytes:
    return encode(Kind.RESPONSE, {"node": "n", "conn": conn, "seq": seq, "part": 0, "offset": 0, "last": True,
                                  "status": 200, "received": received_ns, "forwarded": received_ns,
                                  "response_started": received_ns, "response_finished": received_ns}, raw)


REQ = b"PUT /i/_doc/1 HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}"
RESP = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"


def test_a_feed_started_after_a_request_drops_its_response_and_commits_past_it() -> None:
    feed = PartitionFeed(0, 100)
    # The request of #1 came before this reader's start: only its response is read, then a whole transaction #2.
    assert feed.add(100, _response("c", 1, RESP, received_ns=1_000 * 1_000_000), timestamp_ms=5_000) == []
    assert feed.counts.before_start == 1 and feed.offsets.unfinished == 0
    assert feed.add(101, _request("c", 2, REQ), timestamp_ms=5_001) == []
    ready = feed.add(102, _response("c", 2, RESP, received_ns=5_001 * 1_000_000), timestamp_ms=5_002)
    assert [(r.offset, r.tx.seq) for r in ready] == [(101, 2)]
    assert feed.offsets.position() == 101  # held by #2 until the replayer finishes it
    feed.offsets.finish(("c", 2))
    assert feed.offsets.position() == 103


def test_a_transaction_never_completed_is_given_up_after_its_timeout() -> None:
    feed = PartitionFeed(0, 0)
    feed.add(0, _request("c", 1, REQ), timestamp_ms=1)
    assert feed.offsets.position() == 0
    assert feed.expire(older_than_s=0.0) == 1
    assert feed.counts.incomplete == 1 and feed.offsets.position() == 1


def _bulk(lines: list[dict[str, object]]) -> bytes:
    return b"".join(orjson.dumps(line) + b"\n" for line in lines)


def test_auto_ids_are_pinned_to_the_ids_the_source_gave() -> None:
    single = pin_auto_ids(HttpRequest("POST", "/logs/_doc", "op_type=create&refresh=true", body=b'{"a":1}'),
                          HttpResponse(201, body=b'{"_index":"logs","_id":"Xy-1","result":"created"}'))
    assert (single.request.method, single.request.path, single.request.query) == ("PUT", "/logs/_doc/Xy-1",
                                                                                   "refresh=true")
    assert single.pinned == 1
    typed = pin_auto_ids(HttpRequest("POST", "/logs/event", body=b"{}"), HttpResponse(201, body=b'{"_id":"q/1"}'))
    assert typed.request.path == "/logs/event/q%2F1"

    body = _bulk([{"index": {"_index": "a"}}, {"n": 1}, {"delete": {"_index": "a", "_id": "d"}},
                  {"create": {"_index": "a"}}, {"n": 2}, {"index": {"_index": "a", "_id": "k"}}, {"n": 3},
                  {"index": {"_index": "a"}}, {"n": 4}])
    source = {"errors": True, "items": [
        {"index": {"_id": "g1", "status": 201}}, {"delete": {"_id": "d", "status": 404}},
        {"create": {"_id": "g2", "status": 201}}, {"index": {"_id": "k", "status": 200}},
        {"index": {"status": 400, "error": {"type": "mapper_parsing_exception"}}}]}
    pinned = pin_auto_ids(HttpRequest("POST", "/_bulk", body=body), HttpResponse(200, body=orjson.dumps(source)))
    lines = [orjson.loads(line) for line in pinned.request.body.splitlines()]
    assert lines[0] == {"index": {"_index": "a", "_id": "g1"}} and lines[3] == {"index": {"_index": "a", "_id": "g2"}}
    assert lines[1] == {"n": 1} and lines[2] == {"delete": {"_index": "a", "_id": "d"}}
    # The item the source refused is sent as it was: it wrote nothing, so it cannot become a duplicate.
    assert lines[7] == {"index": {"_index": "a"}}
    assert (pinned.pinned, pinned.unpinned) == (2, 0)

    unanswered = pin_auto_ids(HttpRequest("POST", "/_bulk", body=body), None)
    assert unanswered.request.body == body and unanswered.unpinned == 3
    every_id = _bulk([{"index": {"_index": "a", "_id": "1"}}, {"n": 1}])
    untouched = HttpRequest("POST", "/_bulk", body=every_id)
    assert pin_auto_ids(untouched, None).request is untouched
