"""Comparing the source's response with the target's: statuses, bulk items, search hits, other bodies."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from workers.replay import compare as compare_module
from workers.replay.compare import (
    BODY_MISMATCH,
    BULK_ITEMS_MISMATCH,
    HITS_MISMATCH,
    MATCH,
    NO_SOURCE_RESPONSE,
    NOT_SENT,
    STATUS_MISMATCH,
    TARGET_ERROR,
    bulk_errors_flag,
    compare,
    first_difference,
    target_status,
)
from workers.replay.messages import HttpRequest, HttpResponse, ReplayedTransaction, TargetExchange


def body(value: Any) -> bytes:
    return value if isinstance(value, bytes) else orjson.dumps(value)


def tx(source: tuple[int, Any] | None, *targets: tuple[int, Any] | None, method: str = "GET", path: str = "/",
       error: str | None = None) -> ReplayedTransaction:
    """A transaction: the source's (status, body) and one exchange per target (status, body); None: no response."""
    request = HttpRequest(method, path)
    return ReplayedTransaction(
        "conn-1", 1, 0, 10, request, HttpResponse(source[0], (), body(source[1])) if source else None, 1, 2,
        [TargetExchange(request, HttpResponse(t[0], (), body(t[1])) if t else None, 3, 4,
                        error=None if t else "connection refused") for t in targets],
        error=error)


def bulk(*items: tuple[int, str | None], took: int = 5) -> dict[str, Any]:
    """A bulk response: one (status, error type) per item."""
    out = []
    for i, (status, error) in enumerate(items):
        item: dict[str, Any] = {"_index": "logs", "_id": str(i), "status": status, "_seq_no": i}
        if error:
            item["error"] = {"type": error, "reason": "why"}
        out.append({"index": item})
    return {"took": took, "errors": any(e for _, e in items), "items": out}


def search(ids: list[str], total: Any, took: int = 3) -> dict[str, Any]:
    return {"took": took, "timed_out": False, "_shards": {"total": 5 + took},
            "hits": {"total": total, "max_score": 1.0, "hits": [{"_index": "i", "_id": i, "_score": 1.0} for i in ids]}}


# --- the order of the rules ---------------------------------------------------------------------------------------

def test_nothing_sent_is_not_sent_with_the_reason() -> None:
    result = compare(tx((200, {}), error="transform failed: bad JSON"))
    assert (result.kind, result.detail) == (NOT_SENT, "transform failed: bad JSON")
    assert compare(tx((200, {}))).kind == NOT_SENT


def test_a_target_failure_wins_over_a_missing_source_response() -> None:
    result = compare(tx(None, None))
    assert (result.kind, result.detail) == (TARGET_ERROR, "connection refused")
    fanned = compare(tx((200, {}), (200, {}), None))
    assert fanned.kind == TARGET_ERROR and "request 2 of 2" in fanned.detail


def test_no_source_response() -> None:
    assert compare(tx(None, (200, {}))).kind == NO_SOURCE_RESPONSE


def test_status_mismatch_names_both_statuses() -> None:
    result = compare(tx((201, {"result": "created"}), (400, {"error": {"type": "x"}}), method="PUT",
                        path="/i/_doc/1"))
    assert (result.kind, result.detail) == (STATUS_MISMATCH, "source 201, target 400")


def test_fan_out_compares_the_worst_target_status() -> None:
    transaction = tx((200, {}), (200, {}), (503, {}), (404, {}))
    assert target_status(transaction) == 503
    result = compare(transaction)
    assert result.kind == STATUS_MISMATCH and result.detail == "source 200, target 503 (request 2 of 3)"
    same = compare(tx((200, {"a": 1}), (200, {"a": 2}), (200, {"a": 3})))
    assert same.kind == MATCH and "bodies not" in same.detail


# --- _bulk ----------------------------------------------------------------------------------------------------------

def test_bulk_without_errors_compares_without_parsing_the_items(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_parsing(_: bytes) -> Any:
        raise AssertionError("parsed")

    monkeypatch.setattr(compare_module, "_parse", no_parsing)
    # Everything after the flag is never read: not even valid JSON is needed.
    source = (200, b'{"took":30,"errors":false,"items":[{"index":{ ... ')
    result = compare(tx(source, (200, b'{"took":7,"ingest_took":2,"errors":false,"items":[]}'), method="POST",
                        path="/_bulk"))
    assert (result.kind, result.items_compared) == (MATCH, 0)


@pytest.mark.parametrize(("head", "flag"), [
    (b'{"took":1,"errors":false,"items":[]}', False),
    (b'{"errors":true,"items":[]}', True),
    (b'{\n  "took" : 1,\n  "errors" : false,\n  "items" : []}', False),
    (b'{"took":1,"ingest_took":0,"errors":true}', True),
    (b'{"items":[{"index":{"errors":false}}]}', None),
    (b'{"error":{"type":"x"},"status":400}', None),
    (b"not json", None),
])
def test_bulk_errors_flag(head: bytes, flag: bool | None) -> None:
    assert bulk_errors_flag(head) is flag


def test_bulk_items_are_compared_by_position() -> None:
    source = bulk((201, None), (201, None), (200, None), (201, None), (201, None))
    target = bulk((201, None), (201, None), (200, None), (400, "mapper_parsing_exception"), (201, None))
    result = compare(tx((200, source), (200, target), method="POST", path="/logs/_bulk"))
    assert (result.kind, result.items_compared, result.items_mismatched) == (BULK_ITEMS_MISMATCH, 5, 1)
    assert result.detail == "1 of 5 items differ; first #3 (index _id 3): source 201, " \
                            "target 400 mapper_parsing_exception"


def test_bulk_items_failing_alike_match_whatever_their_error_types() -> None:
    source = bulk((201, None), (409, "version_conflict_engine_exception"))
    target = bulk((201, None), (409, "other_name_for_the_same"))
    result = compare(tx((200, source), (200, target), method="POST", path="/_bulk"))
    assert (result.kind, result.items_compared, result.items_mismatched) == (MATCH, 2, 0)


def test_bulk_item_counts_that_differ() -> None:
    result = compare(tx((200, bulk((201, None), (201, None), (201, "x"))), (200, bulk((201, None), (201, None))),
                        method="POST", path="/_bulk"))
    assert result.kind == BULK_ITEMS_MISMATCH and result.detail == "source 3 items, target 2"
    assert (result.items_compared, result.items_mismatched) == (2, 1)


def test_fanned_out_bulk_items_are_concatenated_in_order() -> None:
    source = bulk((201, None), (400, "x"), (201, None))
    first, second = bulk((201, None), (400, "y")), bulk((201, None))
    result = compare(tx((200, source), (200, first), (200, second), method="POST", path="/_bulk"))
    assert (result.kind, result.items_compared) == (MATCH, 3)
    wrong = compare(tx((200, source), (200, first), (200, bulk((500, "z"))), method="POST", path="/_bulk"))
    assert wrong.kind == BULK_ITEMS_MISMATCH and "first #2" in wrong.detail


def test_a_bulk_rejected_whole_compares_its_error_type() -> None:
    error = {"error": {"type": "illegal_argument_exception", "reason": "a"}, "status": 400}
    other = {"error": {"type": "illegal_argument_exception", "reason": "b"}, "status": 400}
    assert compare(tx((400, error), (400, other), method="POST", path="/_bulk")).kind == MATCH


# --- _search and _msearch -----------------------------------------------------------------------------------------

def test_search_totals_in_both_forms_and_volatile_parts_ignored() -> None:
    es6 = search(["a", "b"], 2, took=10)
    os2 = search(["a", "b"], {"value": 2, "relation": "eq"}, took=1)
    assert compare(tx((200, es6), (200, os2), path="/i/_search")).kind == MATCH


def test_search_totals_that_differ() -> None:
    result = compare(tx((200, search(["a"], 3)), (200, search(["a"], {"value": 2, "relation": "eq"})),
                        path="/i/_search"))
    assert (result.kind, result.detail) == (HITS_MISMATCH, "hits.total: 3 != 2")


def test_a_lower_bound_agrees_with_any_larger_total() -> None:
    capped = search(["a"], {"value": 10000, "relation": "gte"})
    assert compare(tx((200, capped), (200, search(["a"], 12345)), path="/i/_search")).kind == MATCH
    small = compare(tx((200, capped), (200, search(["a"], 9999)), path="/i/_search"))
    assert small.kind == HITS_MISMATCH and small.detail == "hits.total: gte 10000 != 9999"


def test_search_hit_ids() -> None:
    other = compare(tx((200, search(["a", "b", "c"], 3)), (200, search(["a", "x", "c"], 3)), path="/_search"))
    assert (other.kind, other.detail) == (HITS_MISMATCH, "hits: first difference #1: _id b != x")
    order = compare(tx((200, search(["a", "b"], 2)), (200, search(["b", "a"], 2)), path="/_search"))
    assert (order.kind, order.detail) == (HITS_MISMATCH, "hits: the same 2 _ids in another order")
    fewer = compare(tx((200, search(["a", "b"], 2)), (200, search(["a"], 2)), path="/_search"))
    assert fewer.detail == "hits: 2 != 1 hits; first difference #1: _id b != none"


def test_a_response_without_hits_on_a_search_path_is_compared_as_a_body() -> None:
    result = compare(tx((200, {"succeeded": True, "num_freed": 1}), (200, {"succeeded": True, "num_freed": 0}),
                        method="DELETE", path="/_search/scroll"))
    assert (result.kind, result.detail) == (BODY_MISMATCH, "num_freed: 1 != 0")


def test_msearch_compares_each_response() -> None:
    source = {"took": 4, "responses": [{**search(["a"], 1), "status": 200}, {**search(["b"], 1), "status": 200},
                                       {"error": {"type": "index_not_found_exception"}, "status": 404}]}
    responses = [{**search(["a"], 1, took=1), "status": 200},
                 {**search(["b"], {"value": 1, "relation": "eq"}), "status": 200},
                 {"error": {"type": "index_not_found_exception"}, "status": 404}]
    result = compare(tx((200, source), (200, {"took": 9, "responses": responses}), method="POST", path="/_msearch"))
    assert (result.kind, result.items_compared, result.items_mismatched) == (MATCH, 3, 0)
    differ = {"responses": [responses[0], {**search(["c"], 1), "status": 200}, responses[2]]}
    result = compare(tx((200, source), (200, differ), method="POST", path="/_msearch"))
    assert (result.kind, result.items_mismatched) == (HITS_MISMATCH, 1)
    assert result.detail == "1 of 3 responses differ; first #1: hits: first difference #0: _id b != c"


# --- other bodies -------------------------------------------------------------------------------------------------

def test_error_responses_compare_their_error_type_only() -> None:
    a = {"error": {"type": "index_not_found_exception", "reason": "no such index [x]"}, "status": 404}
    b = {"error": {"type": "index_not_found_exception", "reason": "no such index [[x]]", "index_uuid": "_na_"},
         "status": 404}
    assert compare(tx((404, a), (404, b), path="/x")).kind == MATCH
    c = {"error": {"type": "resource_not_found_exception"}, "status": 404}
    result = compare(tx((404, a), (404, c), path="/x"))
    assert (result.kind, result.detail) == (BODY_MISMATCH,
                                            "error.type: index_not_found_exception != resource_not_found_exception")


def test_documents_compare_without_their_versions_and_type() -> None:
    source = {"_index": "i", "_type": "_doc", "_id": "1", "_version": 3, "_seq_no": 7, "_primary_term": 1,
              "found": True, "_source": {"title": "a", "tags": ["x", "y"]}}
    target = {"_index": "i", "_id": "1", "_version": 1, "_seq_no": 0, "_primary_term": 1, "found": True,
              "_source": {"title": "a", "tags": ["x", "y"]}}
    assert compare(tx((200, source), (200, target), path="/i/_doc/1")).kind == MATCH
    changed = {**target, "_source": {"title": "b", "tags": ["x"]}}
    result = compare(tx((200, source), (200, changed), path="/i/_doc/1"))
    assert (result.kind, result.detail) == (BODY_MISMATCH, '_source.title: "a" != "b"')
    shorter = {**target, "_source": {"title": "a", "tags": ["x"]}}
    assert compare(tx((200, source), (200, shorter), path="/i/_doc/1")).detail == "_source.tags: 2 elements != 1"


def test_missing_keys_and_types_are_differences() -> None:
    assert first_difference({"a": 1}, {"a": 1, "b": {"c": 2}}) == 'b: missing != {"c":2}'
    assert first_difference({"a": True}, {"a": 1}) == "a: true != 1"
    assert first_difference({"a": 1}, {"a": 1.0}) is None
    assert first_difference([1, [2, 3]], [1, [2, 4]]) == "[1][1]: 3 != 4"
    assert first_difference("x" * 100, "y") == f'$: "{"x" * 58}… != "y"'


def test_the_root_endpoint_ignores_the_engine_identity() -> None:
    es = {"name": "node-a", "cluster_name": "src", "cluster_uuid": "u1",
          "version": {"number": "7.10.2"}, "tagline": "You Know, for Search"}
    os = {"name": "node-b", "cluster_name": "dst", "cluster_uuid": "u2",
          "version": {"number": "2.19.0", "distribution": "opensearch"}, "tagline": "The OpenSearch Project"}
    assert compare(tx((200, es), (200, os), path="/")).kind == MATCH
    # Elsewhere "version" counts (an index template's version, say).
    result = compare(tx((200, {"t": {"version": 1}}), (200, {"t": {"version": 2}}), path="/_template/t"))
    assert (result.kind, result.detail) == (BODY_MISMATCH, "t.version: 1 != 2")


def test_integers_of_64_bits_are_exact_and_larger_ones_no_error() -> None:
    big = b'{"n": 18446744073709551615}'
    assert compare(tx((200, big), (200, big.replace(b" ", b"")), path="/i/_doc/1")).kind == MATCH
    result = compare(tx((200, big), (200, b'{"n": 18446744073709551614}'), path="/i/_doc/1"))
    assert (result.kind, result.detail) == (BODY_MISMATCH, "n: 18446744073709551615 != 18446744073709551614")
    huge = b'{"n": 184467440737095516160}'
    assert compare(tx((200, huge), (200, huge), path="/i/_doc/1")).kind == MATCH


def test_text_bodies_compare_bytewise() -> None:
    same = compare(tx((200, b"green open logs\n"), (200, b"green open logs\n"), path="/_cat/indices"))
    assert same.kind == MATCH
    result = compare(tx((200, b"green open logs\n"), (200, b"green open logz\n"), path="/_cat/indices"))
    assert (result.kind, result.detail) == (BODY_MISMATCH, "bodies differ at byte 14 (source 16 bytes, "
                                                           "target 16 bytes)")
    assert compare(tx((200, b""), (200, b""), method="HEAD", path="/i")).kind == MATCH
    assert compare(tx((200, b"{broken"), (200, b"{broken!"), path="/x")).kind == BODY_MISMATCH
