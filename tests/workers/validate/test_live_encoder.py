"""Live source documents are named and encoded exactly as the backfill sends the same documents from a snapshot:
renames, a split type, a transform (which may drop one)."""

from __future__ import annotations

from typing import Any

import orjson

from workers.common.clusters import ClusterConnection
from workers.common.fingerprint import canonical_source
from workers.documents.reader import ShardPosition, SnapshotDocument
from workers.metadata.rename import RenameRules
from workers.rfs.bulk import BulkItemBuilder
from workers.rfs.naming import TargetNames
from workers.rfs.options import BackfillOptions
from workers.validate.scope import ValidationOptions
from workers.validate.source_scan import LiveEncoder

TARGET = ClusterConnection(endpoint="http://target:9200")


def shout(doc: dict[str, Any]) -> dict[str, Any] | None:
    """A document transform for the test: drops some, upper-cases a field, moves the index."""
    if doc["_source"].get("drop"):
        return None
    return {**doc, "_index": doc["_index"] + "-t", "_source": {**doc["_source"], "a": doc["_source"]["a"].upper()}}


def test_a_live_document_encodes_as_the_backfill_sends_it_from_a_snapshot() -> None:
    rename = RenameRules.parse(["logs=logs-new"])
    options = ValidationOptions(target=TARGET, source=TARGET, rename=rename,
                                transform=f"{__name__}:shout", against="source")
    encoder = LiveEncoder(options, {"logs": ()})
    raw = b'{"b": 1, "a": "hi"}'
    hit = {"_index": "logs", "_type": "_doc", "_id": "1", "_routing": "x", "_source": orjson.loads(raw)}
    backfill = BulkItemBuilder(BackfillOptions(target=TARGET, rename=rename, transform=options.transform),
                               TargetNames(rename))
    [item] = backfill.items([(ShardPosition("s", 0), SnapshotDocument("logs", "1", None, "x", raw))])
    assert encoder.encode("logs", hit) == (item.index, item.id, item.routing, canonical_source(item.source))
    assert encoder.encode("logs", hit) == ("logs-new-t", "1", "x", b'{"a":"HI","b":1}')
    assert encoder.encode("logs", {**hit, "_source": {"a": "x", "drop": True}}) is None
    assert encoder.encode("logs", {k: v for k, v in hit.items() if k != "_source"}) is None  # sourceless


def test_split_types_name_each_type_and_say_where_a_target_index_comes_from() -> None:
    options = ValidationOptions(target=TARGET, source=TARGET, type_mode="index-per-type", against="source")
    encoder = LiveEncoder(options, {"old": ["post", "user", "_default_"], "plain": ["doc"]})
    assert encoder.name("old", {"_type": "post"}) == "old_post"
    assert encoder.encode("plain", {"_type": "doc", "_id": "7", "_source": {}}) == ("plain", "7", None, b"{}")
    assert encoder.sources_of("old_user") == [("old", "user")]
    assert encoder.sources_of("plain") == [("plain", None)]
