"""Documents without ``_source`` are counted and reported with a sample of ids, never silently dropped."""

from __future__ import annotations

from pathlib import Path

from opensearchpy import OpenSearch

from migration_pipeline.sandbox.state import SandboxState
from tests.conftest import unique
from workers.documents.reader import ReadSummary, read_snapshot_documents
from workers.snapshot.blobstore import open_blob_store
from workers.snapshot.create import create_snapshot, register_fs_repository


def test_source_disabled_documents_are_counted(sandbox: SandboxState) -> None:
    node = sandbox.engines["source"]
    client = OpenSearch(hosts=[node.url], timeout=60)
    index = unique("nosource")
    # Without soft deletes there is no _recovery_source to fall back on.
    client.indices.create(index=index, body={
        "settings": {"number_of_shards": 1, "number_of_replicas": 0, "index.soft_deletes.enabled": False},
        "mappings": {"_source": {"enabled": False}, "properties": {"n": {"type": "integer"}}},
    })
    kept = unique("withsource")
    client.indices.create(index=kept, body={"settings": {"number_of_shards": 1, "number_of_replicas": 0}})
    for i in range(25):
        client.index(index=index, id=f"doc-{i}", body={"n": i})
        client.index(index=kept, id=f"doc-{i}", body={"n": i})
    client.indices.refresh(index=f"{index},{kept}")
    location = str(Path(node.repo_path) / unique("repo"))
    register_fs_repository(client, "nosrc", location)
    create_snapshot(client, "nosrc", "s1", indices=f"{index},{kept}")

    summary = ReadSummary()
    docs = list(read_snapshot_documents(open_blob_store(location), "s1", summary=summary))
    assert {d.index for d in docs} == {kept} and len(docs) == 25
    assert summary.sourceless == 25
    assert len(summary.sourceless_sample) == 10 and all(i.startswith("doc-") for i in summary.sourceless_sample)
