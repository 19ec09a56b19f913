"""The C chunk encoder writes the bytes the Python path writes, declines what it does not handle, and batching
over encoded pieces keeps the request limits."""

from __future__ import annotations

import base64
from pathlib import Path

import orjson
import pytest

from migration_pipeline.sandbox.state import SandboxState
from tests.conftest import FIXTURE_SNAPSHOTS
from tests.workers.rfs.helpers import build_snapshot
from workers.common.clusters import ClusterConnection
from workers.documents.reader import ShardPosition, open_shard
from workers.documents.uid import decode_id
from workers.rfs.bulk import BulkItem, BulkItemBuilder, Piece, batches, piece_of
from workers.rfs.encode import action_prefix, native_encoder, shard_pieces
from workers.rfs.options import BackfillOptions
from workers.snapshot.blobstore import open_blob_store
from workers.snapshot.repository import SnapshotRepository

# Options need a target; these tests never send to it.
NOWHERE = ClusterConnection(endpoint="http://127.0.0.1:1")

encode = native_encoder()
needs_native = pytest.mark.skipif(encode is None, reason="the _bulk_lines extension is not built")
ID, UID, ROUTING, SOURCE, OTHER = 0, 1, 2, 3, 4
STRING, BYTE_ARR, INT, FLOAT, LONG, DOUBLE = range(6)
PREFIX = action_prefix("logs-target")


def vint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def value(number: int, kind: int, payload: bytes) -> bytes:
    return vint(number << 3 | kind) + vint(len(payload)) + payload


def stored(raw_id: bytes | None, source: bytes | None, routing: bytes | None = None, *, uid: bytes | None = None,
           id_kind: int = BYTE_ARR) -> tuple[int, bytes]:
    """One document's stored fields, with fields of every numeric type in between (skipped by the encoder)."""
    fields = [vint(OTHER << 3 | INT) + vint(300), vint(OTHER << 3 | LONG) + b"\x21" + vint(5),
              vint(OTHER << 3 | FLOAT) + b"\x81", vint(OTHER << 3 | DOUBLE) + b"\xfe\x00\x00\x00\x01",
              vint(OTHER << 3 | DOUBLE) + b"\x00" * 8]
    if raw_id is not None:
        fields.append(value(ID, id_kind, raw_id))
    if uid is not None:
        fields.append(value(UID, STRING, uid))
    if routing is not None:
        fields.append(value(ROUTING, STRING, routing))
    if source is not None:
        fields.append(value(SOURCE, BYTE_ARR, source))
    return len(fields), b"".join(fields)


def run(docs: list[tuple[int, bytes]], doc_base: int = 0, start_doc: int = 0, live: bytes | None = None,
        soft: bytes | None = None) -> tuple[bytes, list[int], list[int], int, int] | None:
    assert encode is not None
    out = encode(b"".join(d for _, d in docs), [n for n, _ in docs], [len(d) for _, d in docs], doc_base, start_doc,
                 live, soft, ID, UID, ROUTING, SOURCE, PREFIX)
    if out is None:
        return None
    body, numbers, ends, source_bytes, nested = out
    return body, list(memoryview(numbers).cast("q")), list(memoryview(ends).cast("q")), source_bytes, nested


def expected_lines(doc_id: str, source: bytes, routing: str | None = None) -> bytes:
    action: dict[str, str] = {"_index": "logs-target", "_id": doc_id}
    if routing is not None:
        action["routing"] = routing
    return orjson.dumps({"index": action}) + b"\n" + source + b"\n"


@needs_native
def test_every_id_encoding_and_escaping_matches_orjson() -> None:
    source = b'{"message":"caf\xc3\xa9 \\"quoted\\"","n":1}'
    ids = [b"\xfe\x12\x34\x5f", b"\xfe\x12\x34", b"\xfe", b"\xff" + b'a"b\\c', b"\x9a\x01\xff\x10\x20",
           b"\xfd\x41\x42", b"\x7f" * 15, bytes(range(1, 16))]
    docs = [stored(raw, source, b'user"7\\') if k % 2 else stored(raw, source) for k, raw in enumerate(ids)]
    docs.append(stored(b"plain-string-id", source, b"r", id_kind=STRING))
    out = run(docs)
    assert out is not None
    body, numbers, ends, source_bytes, nested = out
    want = [expected_lines(decode_id(raw), source, 'user"7\\' if k % 2 else None) for k, raw in enumerate(ids)]
    want.append(expected_lines("plain-string-id", source, "r"))
    assert body == b"".join(want)
    assert numbers == list(range(len(docs)))
    assert ends == [sum(len(w) for w in want[: k + 1]) for k in range(len(want))]
    assert source_bytes == len(source) * len(docs)
    assert nested == 0
    # The base64 ids really are unpadded URL-safe base64 of the raw bytes.
    assert decode_id(ids[4]) == base64.urlsafe_b64encode(ids[4]).decode().rstrip("=")


@needs_native
def test_deleted_documents_start_and_nested_children_are_skipped() -> None:
    source = b'{"a":1}'
    docs = [stored(b"\xff" + f"d{i}".encode(), source) for i in range(12)]
    docs[3] = stored(None, None)  # a nested child: no id, no source
    # Documents 96 to 107; the bitsets are indexed by document number: 97 hard-, 106 soft-deleted.
    live = bytes(12) + bytes([0b1111_1101, 0b1111_1111])
    soft = bytes(12) + bytes([0b0000_0000, 0b0000_0100])
    out = run(docs, doc_base=96, start_doc=97, live=live, soft=soft)
    assert out is not None
    _, numbers, _, _, nested = out
    assert 96 not in numbers  # before start_doc
    assert 97 not in numbers  # hard-deleted (bit 1 of byte 12 clear)
    assert 106 not in numbers  # soft-deleted (bit 2 of byte 13)
    assert 99 not in numbers and nested == 1  # the nested child
    assert numbers == [98, 100, 101, 102, 103, 104, 105, 107]


@needs_native
@pytest.mark.parametrize("doc", [
    stored(b"\xff" + "café".encode(), b'{"a":1}'),  # non-ASCII id: Python validates and writes it
    stored(b"\xffok", b'{"a":1}', "é".encode()),
    stored(b"\xffok", b'{"a":1}', b"tab\there"),  # a control character needs a \u escape
    stored(b"\xffok", b'{\n  "a": 1\n}'),  # pretty-printed: re-serialised by Python
    stored(b"\xffok", b'{"a":"x"}\r'),
    stored(b"\xffok", b"\x3a\x29\x0a\x03"),  # SMILE
    stored(b"\xffok", None),  # sourceless
    stored(None, b'{"a":1}', uid=b"post#1"),  # Elasticsearch 5 _uid
    stored(b"", b'{"a":1}'),  # empty binary id: Python names the error
    stored(b"\xfe\xa1", b'{"a":1}'),  # a numeric id with a non-decimal digit
])
def test_declined_shapes_go_to_python(doc: tuple[int, bytes]) -> None:
    fine = stored(b"\xffok", b'{"a":1}')
    assert run([fine]) is not None
    assert run([fine, doc, fine]) is None


@needs_native
def test_malformed_chunks_are_declined_not_misread() -> None:
    count, data = stored(b"\xffok", b'{"a":1}')
    assert encode is not None
    args = (ID, UID, ROUTING, SOURCE, PREFIX)
    assert encode(data[:-1], [count], [len(data) - 1], 0, 0, None, None, *args) is None  # truncated document
    assert encode(data, [count], [len(data) + 5], 0, 0, None, None, *args) is None  # lengths beyond the data
    assert encode(data + b"x", [count], [len(data)], 0, 0, None, None, *args) is None  # trailing bytes
    assert encode(data, [count + 1], [len(data)], 0, 0, None, None, *args) is None  # a field count too high
    assert encode(data, [count], [len(data)], 0, 0, b"", None, *args) is None  # live bits shorter than the doc
    with pytest.raises(ValueError):
        encode(data, [count, 1], [len(data)], 0, 0, None, None, *args)


def _items(n: int, size: int) -> list[BulkItem]:
    return [BulkItem(ShardPosition("_0", i), "t", f"{i:03}", None,
                     orjson.dumps({"index": {"_index": "t", "_id": f"{i:03}"}}), b'{"v":"' + b"x" * size + b'"}')
            for i in range(n)]


def test_batches_keep_count_and_byte_limits_across_pieces() -> None:
    items = _items(50, 200)
    pieces = [piece_of(items[:7]), piece_of(items[7:30]), piece_of(items[30:])]
    size = items[0].size
    options = BackfillOptions(target=NOWHERE, max_bulk_bytes=max(1024, size * 9),
                              documents_per_bulk_request=6)
    got = list(batches(pieces, options))
    assert [b.count for b in got] == [6] * 8 + [2]
    assert all(b.size <= options.max_bulk_bytes for b in got)
    assert b"".join(b.body() for b in got) == b"".join(p.body for p in pieces)
    assert [b.seq for b in got] == list(range(len(got)))
    assert [(b.first.doc, b.last.doc) for b in got][:2] == [(0, 5), (6, 11)]
    assert [i.id for b in got for i in b.items()] == [i.id for i in items]
    assert [i.source for b in got for i in b.items()] == [i.source for i in items]
    by_bytes = list(batches(pieces, BackfillOptions(target=options.target, max_bulk_bytes=max(1024, size * 9))))
    assert all(b.size <= max(1024, size * 9) for b in by_bytes)
    assert sum(b.count for b in by_bytes) == 50 and len(by_bytes) == -(-50 // (max(1024, size * 9) // size))


def test_a_document_bigger_than_the_limit_goes_alone() -> None:
    small, big = _items(3, 10), _items(1, 5000)
    pieces: list[Piece] = [piece_of(small[:1]), piece_of(big), piece_of(small[1:])]
    got = list(batches(pieces, BackfillOptions(target=NOWHERE, max_bulk_bytes=1024)))
    assert [b.count for b in got] == [1, 1, 2]
    assert got[1].size > 1024


def _pieces_by_document(pieces: list[Piece]) -> list[tuple[str, int, bytes]]:
    return [(p.segment, p.docs[k], p.body[p.start(k) : p.ends[k]]) for p in pieces for k in range(len(p.docs))]


def _compare_paths(repo_uri: str, snapshot: str, builder_options: BackfillOptions) -> tuple[int, int, int]:
    """Native and Python pieces of every shard of a snapshot, document by document; (docs, chunks the C encoder
    took, chunks it declined)."""
    repo = SnapshotRepository(open_blob_store(repo_uri))
    docs = taken = declined = 0
    for ref in repo.indices(snapshot):
        for shard in range(repo.index_metadata(snapshot, ref.name).number_of_shards):
            python_reader = open_shard(repo, snapshot, ref.name, shard)
            python = _pieces_by_document(list(shard_pieces(python_reader, None, BulkItemBuilder(builder_options),
                                                           native=False)))
            native_reader = open_shard(repo, snapshot, ref.name, shard)
            native = _pieces_by_document(list(shard_pieces(native_reader, None, BulkItemBuilder(builder_options))))
            assert native == python, f"{ref.name}[{shard}]"
            assert native_reader.summary == python_reader.summary
            docs += len(native)
            probe = open_shard(repo, snapshot, ref.name, shard)
            for plan, chunk, _ in probe.chunks():
                numbers = {name: n for n, name in plan.fields.names().items()}
                assert encode is not None
                out = encode(chunk.data, chunk.fields, chunk.lengths, chunk.doc_base, 0, plan.live,
                             plan.soft_deleted, *(numbers.get(f, -1) for f in ("_id", "_uid", "_routing", "_source")),
                             PREFIX)
                taken += out is not None
                declined += out is None
    return docs, taken, declined


@needs_native
@pytest.mark.parametrize("fixture", ["ES_5_6_Updates_Deletes", "ES_6_8_Single", "ES_7_10_Single"])
@pytest.mark.parametrize("type_mode", ["drop", "index-per-type"])
def test_fixture_snapshots_encode_alike(fixture: str, type_mode: str) -> None:
    folder = FIXTURE_SNAPSHOTS / fixture
    repo = SnapshotRepository(open_blob_store(str(folder)))
    snapshot = repo.snapshots()[0].name
    docs, _, _ = _compare_paths(folder.as_uri(), snapshot,
                                BackfillOptions(target=NOWHERE, type_mode=type_mode))
    assert docs > 0


@needs_native
def test_a_real_snapshot_with_awkward_documents_encodes_alike(sandbox: SandboxState, tmp_path: Path) -> None:
    """Elasticsearch 7.10: generated documents with custom routing plus every id encoding, escapes, a non-ASCII
    id, a pretty-printed source, and deletions (a .liv file)."""
    source = sandbox.engines["source"]
    extra = [("12345", None, b'{"k":"numeric even"}'), ("123", "r1", b'{"k":"numeric odd"}'),
             ("AbCdEfGhIjKlMnOpQrSt", None, b'{"k":"base64"}'), ('q"uote\\', 'r"2', b'{"k":"escapes"}'),
             ("caf\u00e9", None, b'{"k":"non-ascii id"}'), ("pretty", None, b'{\n  "k": "pretty"\n}')]
    fixture = build_snapshot(source.url, source.repo_path, docs=3000, shards=2, extra=extra)
    docs, taken, declined = _compare_paths(fixture.repo_uri, fixture.snapshot,
                                           BackfillOptions(target=NOWHERE))
    assert docs == len(fixture.expected)
    assert taken > declined > 0  # most chunks in C; the pretty and non-ASCII ones in Python


def test_python_encoder_flag_and_missing_extension(monkeypatch: pytest.MonkeyPatch,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    from workers.rfs import __main__ as cli
    from workers.rfs import encode as encode_module

    base = ["--snapshot-repo", "file:///r", "--snapshot", "s", "--index", "i", "--shard", "0",
            "--target-endpoint", "http://127.0.0.1:1"]
    assert cli.options_from(cli.build_parser().parse_args(base)).native is True
    assert cli.options_from(cli.build_parser().parse_args([*base, "--python-encoder"])).native is False

    # Without the extension (as after an install with no compiler) every chunk goes through Python, and the
    # worker says so once, naming the module.
    monkeypatch.setattr(encode_module, "native_encoder", lambda: None)
    folder = FIXTURE_SNAPSHOTS / "ES_7_10_Single"
    repo = SnapshotRepository(open_blob_store(str(folder)))
    snapshot = repo.snapshots()[0].name
    ref = repo.indices(snapshot)[0]
    counts = encode_module.EncodeCounts()
    builder = BulkItemBuilder(BackfillOptions(target=NOWHERE))
    with caplog.at_level("WARNING", logger="workers.rfs"):
        list(shard_pieces(open_shard(repo, snapshot, ref.name, 0), None, builder, counts=counts))
    assert counts.native_chunks == 0 and counts.python_chunks > 0
    assert [r.getMessage() for r in caplog.records if "_bulk_lines" in r.getMessage()]
