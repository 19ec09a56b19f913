"""The backfill sends each document to the index the metadata migration created for it: the same rename rules
(regex groups as ``$1``) and the same split of multi-type indices, checked end to end on the real target."""

from __future__ import annotations

from pathlib import Path

import pytest
from opensearchpy import OpenSearch

from migration_pipeline.sandbox.state import SandboxState
from tests.conftest import FIXTURE_SNAPSHOTS, unique
from tests.workers.metadata.scenario import cleanup
from tests.workers.rfs.helpers import canonical, options
from workers.documents.jsonl import source_value
from workers.documents.reader import read_snapshot_documents
from workers.metadata.apply import migrate
from workers.metadata.options import MigrationOptions
from workers.metadata.plan import evaluate
from workers.metadata.rename import RenameRules
from workers.metadata.source import SnapshotLocation, read_source
from workers.rfs.naming import TargetNames, target_indices
from workers.rfs.worker import run_shard
from workers.snapshot.blobstore import open_blob_store
from workers.snapshot.repository import SnapshotRepository

ES56 = FIXTURE_SNAPSHOTS / "ES_5_6_Updates_Deletes"
SNAPSHOT, INDEX = "rfs_snapshot", "test_updates_deletes"


def test_names_follow_the_metadata_rules() -> None:
    rules = RenameRules.parse(["regex:logs-(\\d+)=archive-$1", "regex:(?P<app>\\w+)-x=${app}-y", "exact=other"])
    split = TargetNames.of_index(rules, "index-per-type", ["_default_", "Type1", "type2"])
    assert split.name("Multi", "Type1") == "multi_type1"  # lower case, as the metadata split names it
    assert split.every("Multi") == ["multi_type1", "multi_type2"]
    plain = TargetNames.of_index(rules, "index-per-type", ["_default_", "post"])  # one type: not split
    assert plain.name("logs-2024", "post") == "archive-2024" and plain.every("logs-2024") == ["archive-2024"]
    assert plain.name("web-x", None) == "web-y" and plain.name("exact", None) == "other"
    dropped = TargetNames.of_index(rules, "drop", ["type1", "type2"])
    assert dropped.name("logs-7", "type1") == "archive-7" and dropped.every("logs-7") == ["archive-7"]


@pytest.mark.parametrize("multi_type", ["union", "split"])
def test_documents_land_in_the_indices_metadata_created(sandbox: SandboxState, tmp_path: Path,
                                                        multi_type: str) -> None:
    target = sandbox.engines["target"].url
    name = unique("nm56")
    rename = [f"regex:{INDEX}(.*)={name}$1"]
    try:
        source = read_source(snapshot=SnapshotLocation(str(ES56), SNAPSHOT))
        client = OpenSearch(hosts=[target], timeout=60)
        migrate(evaluate(source, client, target, MigrationOptions.build(multi_type=multi_type, rename=rename)),
                client, target)
        created = sorted(client.indices.get(index=f"{name}*"))
        type_mode = "index-per-type" if multi_type == "split" else "drop"
        repo = SnapshotRepository(open_blob_store(str(ES56)))
        rules = RenameRules.parse(rename)
        assert target_indices(repo, SNAPSHOT, [INDEX], rules, type_mode) == {INDEX: created}
        assert created == ([f"{name}_type1", f"{name}_type2"] if multi_type == "split" else [name])

        opts = options(target, tmp_path, rename=rules, type_mode=type_mode)
        for shard in range(repo.index_metadata(SNAPSHOT, INDEX).number_of_shards):
            assert run_shard(repo.store, SNAPSHOT, INDEX, shard, opts).dead_letters == 0
        client.indices.refresh(index=f"{name}*")
        # No index beyond the ones the metadata step made: a wrong name would have been auto-created.
        assert sorted(client.indices.get(index=f"{name}*")) == created
        expected = {(TargetNames.of_index(rules, type_mode, ["type1", "type2"]).name(INDEX, d.type), d.id,
                     canonical(source_value(d)))
                    for d in read_snapshot_documents(repo.store, SNAPSHOT)}
        hits = client.search(index=f"{name}*", body={"query": {"match_all": {}}, "size": 100})["hits"]["hits"]
        assert {(h["_index"], h["_id"], canonical(h["_source"])) for h in hits} == expected
        assert len(hits) == len(expected) == 3
    finally:
        cleanup(target, name)
