"""The fingerprint's own rules, without engines: order, canonical form, buckets, and the narrowing's verdicts."""

from __future__ import annotations

import random

import orjson

from workers.common.fingerprint import BUCKETS, Fingerprint, bucket_of, canonical_source, canonical_value
from workers.validate.narrow import compare_documents, differing_buckets, json_diff
from workers.validate.scope import documents_for_confidence, sample_confidence

DOCS = [(f"id-{i}", None if i % 3 else f"r{i % 5}", {"n": i, "tags": ["a", "b"], "nested": {"x": i / 3}})
        for i in range(2000)]


def _fingerprint(docs: list[tuple[str, str | None, dict[str, object]]]) -> Fingerprint:
    fp = Fingerprint()
    for doc_id, routing, source in docs:
        fp.add(doc_id, routing, canonical_value(source))
    return fp


def test_the_digest_ignores_order_key_order_and_spacing_but_not_content() -> None:
    shuffled = list(DOCS)
    random.Random(3).shuffle(shuffled)
    a, b = _fingerprint(DOCS), _fingerprint(shuffled)
    assert a.digest == b.digest and a.count == b.count == 2000
    spaced = b'{ "b" : [1, 2],\n  "a": {"z": 1, "y": "\\u00fc"} }'
    assert canonical_source(spaced) == canonical_value({"a": {"y": "ü", "z": 1}, "b": [1, 2]})
    # The snapshot side (a source's text) and the target side (a parsed page) agree, big integers included.
    text = b'{"big": 123456789012345678901234567890, "u": 18446744073709551615}'
    page = orjson.loads(b'{"hits": [{"_source": ' + text + b'}]}')
    assert canonical_source(text) == canonical_value(page["hits"][0]["_source"])
    # A document twice does not cancel out (as it would under XOR); a changed routing or value differs.
    twice = _fingerprint([*DOCS, DOCS[0]])
    assert twice.digest != a.digest and twice.count == 2001
    for changed in ((DOCS[7][0], "other", DOCS[7][2]), (DOCS[7][0], DOCS[7][1], {**DOCS[7][2], "n": -1})):
        other = _fingerprint([changed if d[0] == changed[0] else d for d in DOCS])
        assert other.digest != a.digest
        assert differing_buckets(a, other, None) == [bucket_of(changed[0])]
    # The stored form round-trips, and a sample compares counts everywhere but digests only where it hashed.
    assert Fingerprint.from_dict(a.to_dict()).to_dict() == a.to_dict()
    altered = _fingerprint([(d[0], d[1], {"n": -1}) if d[0] == "id-7" else d for d in DOCS])
    elsewhere = frozenset(b for b in range(BUCKETS) if b != bucket_of("id-7"))
    assert differing_buckets(a, altered, elsewhere) == []
    assert differing_buckets(a, altered, frozenset({bucket_of("id-7")})) == [bucket_of("id-7")]


def test_documents_are_named_by_kind_with_one_example_diff() -> None:
    snap = {"a": (None, canonical_value({"x": 1, "y": [1, 2]})), "b": ("r", canonical_value({"x": 2})),
            "c": (None, canonical_value({"x": 3})), "d": (None, canonical_value({"x": 4}))}
    target = {"b": ("r", canonical_value({"x": 2})), "c": (None, canonical_value({"x": 30})),
              "d": ("r2", canonical_value({"x": 4})), "e": (None, canonical_value({}))}
    found = compare_documents("t", snap, target)
    assert [(d.id, d.kind) for d in found] == [("a", "missing"), ("e", "extra"), ("c", "content differs"),
                                               ("d", "content differs")]
    assert found[2].diff == ["x: 3 -> 30"] and found[3].diff is None  # one example only
    assert json_diff(orjson.loads(b'{"a": {"b": [1, 2]}, "c": 1}'), {"a": {"b": [1, 3]}, "d": 1}) == [
        "a.b[1]: 2 -> 3", "c: 1 -> (absent)", "d: (absent) -> 1"]


def test_the_sample_confidence_is_what_the_docs_state() -> None:
    assert sample_confidence(16, 1) == 16 / 256
    assert documents_for_confidence(16) == 47 and documents_for_confidence(256) == 1
    assert sample_confidence(16, 47) >= 0.95 > sample_confidence(16, 46)
