"""The JVM-free snapshot reader returns exactly the live documents the real cluster returns.

Each test builds the corpus of ``corpus.py`` on a real engine (custom routing, every id encoding, JSON with
whitespace, SMILE and YAML sources, updates and deletes across segments, hard and soft deletes, nested
documents, a multi-megabyte document, best_compression, a force-merged index, many segments, an empty index),
snapshots it to a filesystem repository, and compares what the reader extracts from the repository with what
the cluster answered to a scroll over every shard.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from migration_pipeline.sandbox import manager
from migration_pipeline.sandbox.catalog import RELEASES, EngineRelease
from migration_pipeline.sandbox.state import SandboxState
from tests.conftest import unique
from tests.workers.snapshot.corpus import (
    RAW_JSON_BODY,
    SPECIAL_IDS,
    Corpus,
    Row,
    build_corpus,
    delete_corpus_indices,
    row_of,
)
from workers.snapshot import smile

CHURN_SUFFIXES = ("-main", "-hard", "-soft")


def _read(corpus: Corpus, index: str | None = None, shard: int | None = None) -> list[Any]:
    # Imported here so that, while the reader is missing or broken, only these tests fail, not collection.
    from workers.documents.reader import read_snapshot_documents
    from workers.snapshot.blobstore import open_blob_store

    store = open_blob_store(corpus.repo_dir)
    return list(read_snapshot_documents(store, corpus.snapshot, index=index, shard=shard))


def _rows(docs: list[Any]) -> set[Row]:
    rows = {row_of(d.index, d.id, d.routing, d.source) for d in docs}
    assert len(rows) == len(docs), "the reader returned a document twice"
    return rows


def _describe(rows: set[Row], limit: int = 8) -> str:
    shown = sorted(rows)[:limit]
    more = f" (and {len(rows) - limit} more)" if len(rows) > limit else ""
    return "; ".join(f"{i}/{d!r} routing={r!r} source={s[:80]}" for i, d, r, s in shown) + more


def assert_same_documents(got: set[Row], expected: set[Row], what: str) -> None:
    """Equality of two row sets, with the differences listed (ids, routing, source head) when they differ."""
    missing, extra = expected - got, got - expected
    assert not missing and not extra, (
        f"{what}: {len(got)} read, {len(expected)} expected; "
        f"missing {len(missing)}: {_describe(missing)}; unexpected {len(extra)}: {_describe(extra)}"
    )


def assert_corpus_shape(corpus: Corpus) -> None:
    """What the cluster reported matches what the builder did: deletes gone, updates in, counts right."""
    by_id = {(index, doc_id): json.loads(src) for index, doc_id, _, src in corpus.expected}
    for index in corpus.indices:
        assert len(corpus.rows_of(index)) == corpus.stats[index]["docs"]
        assert corpus.rows_of(index) == set().union(*(corpus.by_shard[(index, s)] for s in range(corpus.shards[index])))
    churn = [i for i in corpus.indices if i.endswith(CHURN_SUFFIXES)]
    assert churn and churn[0].endswith("-main")
    for index in churn:
        ids = {row[1] for row in corpus.rows_of(index)}
        assert len(ids) == 90 and len(corpus.rows_of(index)) == 90, index
        deleted = {"a-b_c", "_Q", "p-0031", *(f"p-{i:04d}" for i in (*range(21, 30), *range(70, 75)))}
        assert not ids & deleted, f"{index}: deleted documents still live: {sorted(ids & deleted)}"
        assert set(SPECIAL_IDS) - {"a-b_c", "_Q"} <= ids
        assert by_id[(index, "p-0000")]["version"] == 3 and by_id[(index, "p-0009")]["version"] == 2
        assert by_id[(index, "p-0012")]["updated"] is True and by_id[(index, "p-0030")]["version"] == 4
        assert by_id[(index, "007")]["recreated"] and by_id[(index, "p-0020")]["recreated"]
        assert by_id[(index, "smile-doc")]["count"] == 4 and by_id[(index, "smile-doc")]["added"] == "after flush"
        assert by_id[(index, "yaml-doc")]["words"] == ["one", "twö"]
        routing = {row[1]: row[2] for row in corpus.rows_of(index)}
        assert routing["12345"] == "user123" and routing["smile-doc"] == "tenant-a" and routing["QUJDRA"] is None
        assert sum(1 for row in corpus.rows_of(index) if row[1] == "same-id") == 1
        # Old copies stay in older segments: hard deletes as deleted docs, soft deletes as deleted docs + tombstones.
        stats = corpus.stats[index]
        assert stats["segments"] > corpus.shards[index] and stats["deleted"] >= 5, f"{index}: {stats}"
    prefix = churn[0][: -len("-main")]
    assert len(corpus.rows_of(f"{prefix}-nested")) == 38
    # Nested children are Lucene documents of their own: more Lucene docs than top-level ones.
    assert corpus.stats[f"{prefix}-nested"]["lucene_docs"] > 38
    assert len(corpus.rows_of(f"{prefix}-big")) == 9
    assert len(by_id[(f"{prefix}-big", "big")]["payload"].encode()) >= by_id[(f"{prefix}-big", "big")]["size_mb"] << 20
    assert len(corpus.rows_of(f"{prefix}-best")) == 290
    assert len(corpus.rows_of(f"{prefix}-merged")) == 370
    assert corpus.stats[f"{prefix}-merged"]["segments"] == corpus.shards[f"{prefix}-merged"]
    assert len(corpus.rows_of(f"{prefix}-segments")) == 195 and corpus.stats[f"{prefix}-segments"]["segments"] >= 15
    assert corpus.rows_of(f"{prefix}-empty") == set()


def assert_reader_matches(corpus: Corpus) -> None:
    """The whole snapshot read back equals what the cluster returned; sources keep their stored bytes."""
    docs = _read(corpus)
    assert_same_documents(_rows(docs), corpus.expected, f"{corpus.engine} {corpus.version} snapshot")
    empty = next(i for i in corpus.indices if i.endswith("-empty"))
    assert not [d for d in docs if d.index == empty]
    for d in docs:
        if d.index.endswith(CHURN_SUFFIXES) and d.id == "raw-json":
            assert d.source == RAW_JSON_BODY  # leading and trailing whitespace kept
        elif d.index.endswith(CHURN_SUFFIXES) and d.id == "smile-doc":
            assert smile.is_smile(d.source)  # stored (and re-written by the update) as SMILE
        elif d.index.endswith(CHURN_SUFFIXES) and d.id == "yaml-doc":
            assert d.source.startswith(b"---")


def assert_types(corpus: Corpus, docs: list[Any]) -> None:
    """Indices created before Elasticsearch 7 may carry their single type; later ones carry no type."""
    typed = corpus.engine == "elasticsearch" and int(corpus.version.split(".")[0]) < 7
    types = {d.type for d in docs}
    # The corpus's Elasticsearch 6 indices use the type ``_doc``, which a reader may report or leave out,
    # but the same way for every document.
    assert types in ({"_doc"}, {None}) if typed else types == {None}, f"types read: {types}"


@pytest.fixture(scope="module", params=["source", "target"])
def corpus(request: pytest.FixtureRequest, sandbox: SandboxState) -> Iterator[Corpus]:
    """The corpus built on the session sandbox's source (Elasticsearch 7.10) or target (OpenSearch 2.19)."""
    node = sandbox.engines[request.param]
    built = build_corpus(node.url, node.repo_path, engine=node.engine, version=node.version,
                         name_prefix=unique("rdr"))
    try:
        yield built
    finally:
        delete_corpus_indices(node.url, built)


def test_corpus_is_what_the_cluster_holds(corpus: Corpus) -> None:
    assert_corpus_shape(corpus)


def test_reader_returns_every_live_document(corpus: Corpus) -> None:
    assert_reader_matches(corpus)


def test_reader_types(corpus: Corpus) -> None:
    assert_types(corpus, _read(corpus, index=corpus.indices[0]))


def test_reader_reads_one_index_and_one_shard(corpus: Corpus) -> None:
    main = corpus.indices[0]
    whole = _rows(_read(corpus, index=main))
    assert_same_documents(whole, corpus.rows_of(main), f"index {main}")
    union: set[Row] = set()
    for shard in range(corpus.shards[main]):
        part = _rows(_read(corpus, index=main, shard=shard))
        assert part <= whole and not part & union
        assert_same_documents(part, corpus.by_shard[(main, shard)], f"{main} shard {shard}")
        union |= part
    assert union == whole
    nested = next(i for i in corpus.indices if i.endswith("-nested"))
    assert_same_documents(_rows(_read(corpus, index=nested, shard=1)), corpus.by_shard[(nested, 1)],
                          f"{nested} shard 1")
    empty = next(i for i in corpus.indices if i.endswith("-empty"))
    assert _read(corpus, index=empty, shard=0) == []


def node_settings(release: EngineRelease) -> dict[str, str] | None:
    """Node settings the corpus needs on ``release``.

    Elasticsearch 9 charges a document about five times its size against the primary indexing-pressure
    limit (10% of the sandbox's 512 MB heap by default), which refuses the 10 MB document with a 429.
    """
    if release.engine == "elasticsearch" and release.major >= 9:
        return {"indexing_pressure.memory.limit": "25%"}
    return None


@pytest.mark.matrix
@pytest.mark.parametrize("release", RELEASES, ids=[r.spec for r in RELEASES])
def test_reader_matches_every_release(release: EngineRelease) -> None:
    name = unique("rdr")
    try:
        state = manager.up(manager.UpRequest(source=release.spec, target=None,
                                             source_settings=node_settings(release)), name=name)
        node = state.engines["source"]
        built = build_corpus(node.url, node.repo_path, engine=release.engine, version=release.version,
                             name_prefix=unique("rdr"))
        assert_corpus_shape(built)
        assert_reader_matches(built)
        assert_types(built, _read(built, index=built.indices[0]))
    finally:
        manager.down(name)
