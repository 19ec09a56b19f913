"""The SMILE decoder, on real bytes: every metadata blob of the samples, and SMILE written by a real engine."""

from __future__ import annotations

import json
import urllib.request

import pytest

from migration_pipeline.sandbox.state import SandboxState
from tests.conftest import FIXTURE_SNAPSHOTS, unique
from workers.snapshot import smile
from workers.snapshot.blobformat import read_header, read_metadata_blob

FIXTURES = FIXTURE_SNAPSHOTS
BLOBS = sorted(
    [*FIXTURES.glob("*/*.dat"), *FIXTURES.glob("*/indices/*/*.dat"), *FIXTURES.glob("*/indices/*/*/*.dat"),
     *FIXTURES.glob("*/indices/*/*/index-*")]
)


def test_every_sample_blob_decodes() -> None:
    assert len(BLOBS) >= 20
    codecs = set()
    for path in BLOBS:
        data = path.read_bytes()
        codecs.add(read_header(data, str(path))[0])
        doc = read_metadata_blob(data, str(path))
        assert isinstance(doc, dict) and doc
    assert codecs == {"snapshot", "metadata", "index-metadata", "snapshots"}


def test_raw_binary_meta_hash_is_the_whole_file() -> None:
    shard_meta = next((FIXTURES / "ES_7_10_Single" / "indices").glob("*/0/snap-*.dat"))
    doc = read_metadata_blob(shard_meta.read_bytes(), str(shard_meta), "snapshot")
    virtual = [f for f in doc["files"] if f["name"].startswith("v__")]
    assert virtual
    for f in virtual:
        assert isinstance(f["meta_hash"], bytes) and len(f["meta_hash"]) == f["length"]
        assert f["meta_hash"][:4] == b"\x3f\xd7\x6c\x17"  # a Lucene codec header


def _get(url: str, accept: str) -> bytes:
    req = urllib.request.Request(url, headers={"accept": accept})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.read()


@pytest.mark.parametrize("role", ["source", "target"])
def test_engine_written_smile_matches_json(sandbox: SandboxState, role: str) -> None:
    # Tokens the snapshot samples never use: floats, doubles, long and Unicode strings, over 64 shared names.
    url = sandbox.engines[role].url
    index = unique("smile")
    doc = {"f": 1.5, "d": -2.25e-10, "small": -7, "i32": 123456, "i64": -9876543210123,
           "uni": "héllo wörld — ✓ 文字", "uni_long": "ü" * 100, "ascii_long": "a" * 200, "t": True, "n": None,
           "arr": ["x", "y"], "obj": {"k": "v", "key_5": "again"}, "empty": "",
           **{f"key_{i}": i for i in range(300)}}
    req = urllib.request.Request(f"{url}/{index}/_doc/1?refresh=true", data=json.dumps(doc).encode(), method="PUT",
                                 headers={"content-type": "application/json"})
    urllib.request.urlopen(req, timeout=30).read()
    for path in (f"/{index}/_doc/1", f"/{index}/_mapping", f"/{index}/_settings"):
        raw = _get(url + path, "application/smile")
        assert smile.is_smile(raw)
        assert smile.decode(raw) == json.loads(_get(url + path, "application/json")), path


def test_bad_smile_names_the_offset() -> None:
    with pytest.raises(smile.SmileError, match="missing SMILE header"):
        smile.decode(b"{}")
    with pytest.raises(smile.SmileError, match="unexpected end of data"):
        smile.decode(b":)\n\x05\xfa\x83name")
