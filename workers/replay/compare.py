"""How the target's answer to a replayed request compares with the source's answer to the captured one.

The rules, in order:

1. Nothing was sent to the target (a transform failed or dropped the request, the record was dead-lettered):
   ``not_sent``.
2. A target exchange has no response (connection refused, timeout, retries exhausted): ``target_error``. A target
   failure needs attention whether or not the source answered, so it wins over the next rule.
3. The source never answered (the proxy recorded the request only): ``no_source_response``.
4. The source status against the target status: with several target exchanges (a transform fanned the request out)
   the worst of them, that is the first 5xx, else the first 4xx, else the first; any difference is
   ``status_mismatch``.
5. Both statuses are errors (4xx/5xx) and there is one target exchange: only ``error.type`` is compared, as the
   engines word their reasons differently (``body_mismatch``).
6. The bodies, by endpoint (the source request's path decides; the target request's when there is none):

   - ``_bulk``: per item position, the item's status and whether it carries an error (``bulk_items_mismatch``).
     When both responses say ``"errors":false`` in their first bytes the items are not parsed at all: this is the
     common case and must stay cheap. Fanned-out bulk requests: the target items of all exchanges, in order.
   - ``_search`` (also ``_search/scroll`` and templates): the hit total and the list of the returned hits' ``_id``
     (``hits_mismatch``). ``_msearch``: the same per response, plus each response's status and error presence.
   - Other JSON: a structural diff that skips :data:`VOLATILE_KEYS` at any depth (and :data:`ROOT_VOLATILE_KEYS`
     at the top of ``GET /``); the first differing path is reported (``body_mismatch``).
   - Anything else: the bytes (``body_mismatch``).

   With fan-out, bodies other than ``_bulk`` are not compared: one source body cannot be matched against several.

Aggregations, ``_source`` of search hits and scores are not compared. Integers beyond 64 bits compare as floats.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from workers.replay.messages import HttpRequest, HttpResponse, ReplayedTransaction

MATCH = "match"
STATUS_MISMATCH = "status_mismatch"
BULK_ITEMS_MISMATCH = "bulk_items_mismatch"
HITS_MISMATCH = "hits_mismatch"
BODY_MISMATCH = "body_mismatch"
NO_SOURCE_RESPONSE = "no_source_response"
TARGET_ERROR = "target_error"
NOT_SENT = "not_sent"
KINDS = (MATCH, STATUS_MISMATCH, BULK_ITEMS_MISMATCH, HITS_MISMATCH, BODY_MISMATCH, NO_SOURCE_RESPONSE,
         TARGET_ERROR, NOT_SENT)

# Keys skipped by the structural diff wherever they appear: timings, shard and node bookkeeping, the cluster's and
# indices' identities, per-document versions (the target's history differs from the source's: the backfill wrote
# its documents), scroll/PIT handles, and ``_type`` (OpenSearch 2+ has no mapping types).
VOLATILE_KEYS = frozenset({
    "took", "ingest_took", "timed_out", "_shards", "_nodes", "_seq_no", "_primary_term", "_version",
    "cluster_name", "cluster_uuid", "uuid", "index_uuid", "creation_date", "_scroll_id", "pit_id", "_type",
})
# Keys skipped at the top of ``GET /`` only: the node's name, the engine's version and tagline.
ROOT_VOLATILE_KEYS = frozenset({"name", "version", "tagline"})

# A bulk response's first bytes up to its "errors" flag: Elasticsearch and OpenSearch write "took" (and
# "ingest_took" when a pipeline ran) before it, and "items" after it.
_BULK_HEAD = re.compile(
    rb'\A\s*\{\s*(?:"took"\s*:\s*-?\d+\s*,\s*)?(?:"ingest_took"\s*:\s*-?\d+\s*,\s*)?"errors"\s*:\s*(true|false)\s*[,}]')
_HEAD_BYTES = 128
_SHOWN = 60


@dataclass
class Comparison:
    """The verdict on one replayed transaction: its ``kind`` (one of :data:`KINDS`), a short ``detail`` for
    people, and what was counted (bulk items or msearch responses compared and found different)."""

    kind: str
    detail: str = ""
    items_compared: int = 0
    items_mismatched: int = 0

    @property
    def matched(self) -> bool:
        """True when the target answered as the source did."""
        return self.kind == MATCH


def compare(tx: ReplayedTransaction) -> Comparison:
    """Compare the source's response with the target's responses (the module's docstring gives the rules)."""
    if not tx.exchanges:
        return Comparison(NOT_SENT, tx.error or "no request was sent to the target")
    for i, ex in enumerate(tx.exchanges):
        if ex.response is None:
            where = f"request {i + 1} of {len(tx.exchanges)}: " if len(tx.exchanges) > 1 else ""
            tries = f" after {ex.attempts} attempts" if ex.attempts > 1 else ""
            return Comparison(TARGET_ERROR, f"{where}{ex.error or 'no response'}{tries}")
    source = tx.source_response
    if source is None:
        return Comparison(NO_SOURCE_RESPONSE, tx.error or "the source's response was not captured")
    targets = [ex.response for ex in tx.exchanges if ex.response is not None]
    worst = _worst(targets)
    if source.status != worst.status:
        where = f" (request {targets.index(worst) + 1} of {len(targets)})" if len(targets) > 1 else ""
        return Comparison(STATUS_MISMATCH, f"source {source.status}, target {worst.status}{where}")
    if source.status >= 400 and len(targets) == 1:
        return _compare_errors(source, targets[0])
    request = tx.source_request or tx.exchanges[0].request
    endpoint = _endpoint(request)
    if endpoint == "_bulk":
        return _compare_bulk(source, targets)
    if len(targets) > 1:
        return Comparison(MATCH, f"{len(targets)} target requests: statuses compared, bodies not")
    target = targets[0]
    if endpoint == "_search":
        return _compare_search(source, target)
    if endpoint == "_msearch":
        return _compare_msearch(source, target)
    root = request.method.upper() in ("GET", "HEAD") and not request.segments
    return _compare_bodies(source.body, target.body, root=root)


def target_status(tx: ReplayedTransaction) -> int | None:
    """The target status the comparison uses: the worst of the target's responses, None when there is none."""
    responses = [ex.response for ex in tx.exchanges if ex.response is not None]
    return _worst(responses).status if responses else None


def _worst(responses: list[HttpResponse]) -> HttpResponse:
    """The first 5xx response, else the first 4xx, else the first."""
    for floor in (500, 400):
        for r in responses:
            if r.status >= floor:
                return r
    return responses[0]


def _endpoint(request: HttpRequest) -> str:
    """``_bulk``, ``_msearch``, ``_search`` or empty: which body rule applies to the request's response."""
    segments = request.segments
    for name in ("_bulk", "_msearch", "_search"):
        if name in segments:
            return name
    return ""


# --- JSON -------------------------------------------------------------------------------------------------------

class _NotJson(Exception):
    pass


def _parse(body: bytes) -> Any:
    # orjson reads integers beyond 64 bits as floats, so those compare to about 16 digits only. Finding them first
    # (a regular expression over the body) would cost more than the parse itself.
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise _NotJson from None


def _looks_json(body: bytes) -> bool:
    return body.lstrip()[:1] in (b"{", b"[")


def _path(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _show(value: Any) -> str:
    if isinstance(value, _Missing):
        return "missing"
    text = orjson.dumps(value).decode()
    return text if len(text) <= _SHOWN else text[:_SHOWN - 1] + "…"


class _Missing:
    pass


_MISSING = _Missing()


def first_difference(source: Any, target: Any, *, skip: frozenset[str] = VOLATILE_KEYS,
                     root_skip: frozenset[str] = frozenset(), path: str = "") -> str | None:
    """The first place where two parsed JSON values differ, as ``path: source-value != target-value`` (keys in
    ``skip`` ignored at any depth, ``root_skip`` at the top only), or None when they are equal."""
    if isinstance(source, dict) and isinstance(target, dict):
        ignored = skip | root_skip if not path else skip
        for key in [*source, *(k for k in target if k not in source)]:
            if key in ignored:
                continue
            found = first_difference(source.get(key, _MISSING), target.get(key, _MISSING), skip=skip,
                                     path=_path(path, key))
            if found:
                return found
        return None
    if isinstance(source, list) and isinstance(target, list):
        for i, (s, t) in enumerate(zip(source, target, strict=False)):
            found = first_difference(s, t, skip=skip, path=_path(path, i))
            if found:
                return found
        if len(source) != len(target):
            return f"{path or '$'}: {len(source)} elements != {len(target)}"
        return None
    # bool is an int to Python: true must not equal 1. 1 and 1.0 are the same number in JSON.
    if type(source) is bool or type(target) is bool:
        same = type(source) is type(target) and source == target
    else:
        same = source == target
    if same:
        return None
    return f"{path or '$'}: {_show(source)} != {_show(target)}"


def _compare_bodies(source: bytes, target: bytes, *, root: bool = False) -> Comparison:
    if source == target:
        return Comparison(MATCH)
    if _looks_json(source) and _looks_json(target):
        try:
            diff = first_difference(_parse(source), _parse(target),
                                    root_skip=ROOT_VOLATILE_KEYS if root else frozenset())
        except _NotJson:
            pass
        else:
            return Comparison(BODY_MISMATCH, diff) if diff else Comparison(MATCH)
    at = next((i for i, (a, b) in enumerate(zip(source, target, strict=False)) if a != b),
              min(len(source), len(target)))
    return Comparison(BODY_MISMATCH, f"bodies differ at byte {at} (source {len(source)} bytes, target "
                                     f"{len(target)} bytes)")


def _error_type(doc: Any) -> str | None:
    error = doc.get("error") if isinstance(doc, dict) else None
    if isinstance(error, dict):
        return str(error.get("type"))
    return None if error is None else str(error)


def _compare_errors(source: HttpResponse, target: HttpResponse) -> Comparison:
    try:
        s, t = _parse(source.body), _parse(target.body)
    except _NotJson:
        return Comparison(MATCH, "error statuses match; bodies are not JSON")
    st, tt = _error_type(s), _error_type(t)
    if st != tt:
        return Comparison(BODY_MISMATCH, f"error.type: {st} != {tt}")
    return Comparison(MATCH)


# --- _bulk --------------------------------------------------------------------------------------------------------

def bulk_errors_flag(body: bytes) -> bool | None:
    """A bulk response's ``errors`` flag read from its first bytes without parsing the items, or None when the
    body does not begin like a bulk response."""
    m = _BULK_HEAD.match(body[:_HEAD_BYTES])
    return None if m is None else m.group(1) == b"true"


def _bulk_items(body: bytes) -> list[tuple[str, str | None, int, str | None]] | None:
    """(action, _id, status, error type) per item, or None when the body is no bulk response."""
    try:
        doc = _parse(body)
    except _NotJson:
        return None
    items = doc.get("items") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        return None
    out: list[tuple[str, str | None, int, str | None]] = []
    for item in items:
        action, result = next(iter(item.items())) if isinstance(item, dict) and item else ("?", {})
        result = result if isinstance(result, dict) else {}
        status = result.get("status")
        out.append((str(action), None if result.get("_id") is None else str(result["_id"]),
                    status if isinstance(status, int) else 0, _error_type(result)))
    return out


def _outcome(status: int, error: str | None) -> str:
    return f"{status} {error}" if error else str(status)


def _compare_bulk(source: HttpResponse, targets: list[HttpResponse]) -> Comparison:
    if bulk_errors_flag(source.body) is False and all(bulk_errors_flag(t.body) is False for t in targets):
        return Comparison(MATCH)
    s_items = _bulk_items(source.body)
    t_items: list[tuple[str, str | None, int, str | None]] | None = []
    for response in targets:
        items = _bulk_items(response.body)
        if items is None or t_items is None:
            t_items = None
            break
        t_items.extend(items)
    if s_items is None or t_items is None:
        if len(targets) > 1:
            return Comparison(MATCH, f"{len(targets)} target requests: statuses compared, bodies not")
        return _compare_bodies(source.body, targets[0].body)
    mismatched = 0
    first = ""
    for i, (s, t) in enumerate(zip(s_items, t_items, strict=False)):
        # Only the presence of an error counts: the engines name some error types differently.
        if s[2] != t[2] or (s[3] is None) != (t[3] is None):
            mismatched += 1
            if not first:
                first = f"first #{i} ({s[0]} _id {s[1] or t[1]}): source {_outcome(s[2], s[3])}, " \
                        f"target {_outcome(t[2], t[3])}"
    compared = min(len(s_items), len(t_items))
    if len(s_items) != len(t_items):
        count = f"source {len(s_items)} items, target {len(t_items)}"
        detail = f"{count}; {mismatched} of the first {compared} differ; {first}" if mismatched else count
        return Comparison(BULK_ITEMS_MISMATCH, detail, compared, mismatched + abs(len(s_items) - len(t_items)))
    if mismatched:
        return Comparison(BULK_ITEMS_MISMATCH, f"{mismatched} of {compared} items differ; {first}", compared,
                          mismatched)
    return Comparison(MATCH, "", compared, 0)


# --- _search and _msearch -----------------------------------------------------------------------------------------

def _total(hits: dict[str, Any]) -> tuple[int, str] | None:
    """The hit total as (value, relation): Elasticsearch 6 writes an integer, 7+ and OpenSearch an object."""
    total = hits.get("total")
    if isinstance(total, int):
        return total, "eq"
    if isinstance(total, dict) and isinstance(total.get("value"), int):
        return total["value"], str(total.get("relation", "eq"))
    return None


def _totals_agree(s: tuple[int, str] | None, t: tuple[int, str] | None) -> bool:
    if s is None or t is None:
        # One side did not track totals (track_total_hits=false): nothing to compare.
        return True
    # A lower bound ("gte", totals tracked up to a limit) agrees with any count at least as large.
    if (s[1] == "gte" and t[0] >= s[0]) or (t[1] == "gte" and s[0] >= t[0]):
        return True
    return s[0] == t[0]


def _ids(hits: dict[str, Any]) -> list[str]:
    return [str(h.get("_id")) for h in hits.get("hits") or [] if isinstance(h, dict)]


def _search_difference(source: Any, target: Any) -> str | None:
    """What differs between two search responses' hits, or None."""
    s_hits = source.get("hits") if isinstance(source, dict) else None
    t_hits = target.get("hits") if isinstance(target, dict) else None
    if not isinstance(s_hits, dict) or not isinstance(t_hits, dict):
        if isinstance(s_hits, dict) != isinstance(t_hits, dict):
            return "hits: " + ("only the source has hits" if isinstance(s_hits, dict) else "only the target has hits")
        return None
    s_total, t_total = _total(s_hits), _total(t_hits)
    if not _totals_agree(s_total, t_total):
        return f"hits.total: {_fmt_total(s_total)} != {_fmt_total(t_total)}"
    s_ids, t_ids = _ids(s_hits), _ids(t_hits)
    if s_ids == t_ids:
        return None
    if sorted(s_ids) == sorted(t_ids):
        return f"hits: the same {len(s_ids)} _ids in another order"
    at = next((i for i, (a, b) in enumerate(zip(s_ids, t_ids, strict=False)) if a != b), min(len(s_ids), len(t_ids)))
    shown = [(ids[at] if at < len(ids) else "none") for ids in (s_ids, t_ids)]
    return f"hits: {len(s_ids)} != {len(t_ids)} hits; first difference #{at}: _id {shown[0]} != {shown[1]}" \
        if len(s_ids) != len(t_ids) else f"hits: first difference #{at}: _id {shown[0]} != {shown[1]}"


def _fmt_total(total: tuple[int, str] | None) -> str:
    if total is None:
        return "untracked"
    return f"{total[0]}" if total[1] == "eq" else f"{total[1]} {total[0]}"


def _parsed_pair(source: HttpResponse, target: HttpResponse) -> tuple[Any, Any] | None:
    try:
        return _parse(source.body), _parse(target.body)
    except _NotJson:
        return None


def _compare_search(source: HttpResponse, target: HttpResponse) -> Comparison:
    pair = _parsed_pair(source, target)
    if pair is None or not any(isinstance(doc, dict) and "hits" in doc for doc in pair):
        # Not a search result (clearing a scroll, say): compared as any other body.
        return _compare_bodies(source.body, target.body)
    diff = _search_difference(*pair)
    return Comparison(HITS_MISMATCH, diff) if diff else Comparison(MATCH)


def _responses(doc: Any) -> list[Any] | None:
    responses = doc.get("responses") if isinstance(doc, dict) else None
    return responses if isinstance(responses, list) else None


def _msearch_differences(source: list[Any], target: list[Any]) -> Iterator[tuple[int, str]]:
    for i, (s, t) in enumerate(zip(source, target, strict=False)):
        s_err, t_err = _error_type(s), _error_type(t)
        s_status = s.get("status") if isinstance(s, dict) else None
        t_status = t.get("status") if isinstance(t, dict) else None
        if s_status is not None and t_status is not None and s_status != t_status:
            yield i, f"status {s_status} != {t_status}"
        elif (s_err is None) != (t_err is None):
            yield i, f"error {s_err or 'none'} != {t_err or 'none'}"
        elif s_err is None:
            diff = _search_difference(s, t)
            if diff:
                yield i, diff


def _compare_msearch(source: HttpResponse, target: HttpResponse) -> Comparison:
    pair = _parsed_pair(source, target)
    s_list, t_list = (_responses(pair[0]), _responses(pair[1])) if pair else (None, None)
    if s_list is None or t_list is None:
        return _compare_bodies(source.body, target.body)
    compared = min(len(s_list), len(t_list))
    diffs = list(_msearch_differences(s_list, t_list))
    mismatched = len(diffs) + abs(len(s_list) - len(t_list))
    if not mismatched:
        return Comparison(MATCH, "", compared, 0)
    parts = []
    if len(s_list) != len(t_list):
        parts.append(f"source {len(s_list)} responses, target {len(t_list)}")
    if diffs:
        parts.append(f"{len(diffs)} of {compared} responses differ; first #{diffs[0][0]}: {diffs[0][1]}")
    return Comparison(HITS_MISMATCH, "; ".join(parts), compared, mismatched)
