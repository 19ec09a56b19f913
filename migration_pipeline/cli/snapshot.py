"""``console snapshot``: list snapshots and indices of a repository, and read documents straight from it."""

from __future__ import annotations

import shutil
import sys
import tempfile
from typing import Annotated, Any

import typer
from rich.table import Table

from migration_pipeline.cli.common import err, handle_errors, out, print_json
from workers.common.errors import ConfigurationError
from workers.documents.jsonl import to_json_line
from workers.documents.reader import ReadSummary, open_shard
from workers.snapshot.blobstore import BlobStore, open_blob_store
from workers.snapshot.repository import SnapshotRepository

app = typer.Typer(help="Snapshot repositories (filesystem or S3), read without the source cluster.",
                  no_args_is_help=True)

RepoOption = Annotated[str, typer.Option("--repo", help="file:///path or s3://bucket/prefix")]
EndpointOption = Annotated[str | None, typer.Option("--s3-endpoint", help="S3 endpoint URL (e.g. a MinIO/moto)")]
RegionOption = Annotated[str | None, typer.Option("--s3-region", help="S3 region")]
_SPOOL_BYTES = 64 << 20


def _store(repo: str, endpoint: str | None, region: str | None) -> BlobStore:
    return open_blob_store(repo, s3_endpoint=endpoint, s3_region=region)


@app.command("list")
@handle_errors
def list_snapshots(repo: RepoOption, s3_endpoint: EndpointOption = None, s3_region: RegionOption = None,
                   json_output: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The snapshots of a repository."""
    repository = SnapshotRepository(_store(repo, s3_endpoint, s3_region))
    rows: list[dict[str, Any]] = [{"name": s.name, "uuid": s.uuid, "state": s.state, "engine": s.engine,
                                   "version": s.version, "indices": len(repository.indices(s.name))}
                                  for s in repository.snapshots()]
    if json_output:
        print_json(rows)
        return
    table = Table(title=f"snapshots in {repo}")
    for col in ("name", "state", "written by", "indices", "uuid"):
        table.add_column(col)
    for r in rows:
        writer = f"{r['engine']} {r['version']}" if r["version"] else ""
        table.add_row(r["name"], r["state"], writer, str(r["indices"]), r["uuid"])
    out.print(table)


@app.command("indices")
@handle_errors
def list_indices(repo: RepoOption, snapshot: Annotated[str, typer.Option(help="Snapshot name")],
                 s3_endpoint: EndpointOption = None, s3_region: RegionOption = None,
                 json_output: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The indices of a snapshot, with their shard counts."""
    repository = SnapshotRepository(_store(repo, s3_endpoint, s3_region))
    rows: list[dict[str, Any]] = []
    for ref in repository.indices(snapshot):
        meta = repository.index_metadata(snapshot, ref.name)
        rows.append({"index": ref.name, "id": ref.id, "shards": meta.number_of_shards,
                     "types": sorted(meta.mappings), "aliases": sorted(meta.aliases)})
    if json_output:
        print_json(rows)
        return
    table = Table(title=f"indices of snapshot {snapshot}")
    for col in ("index", "shards", "mapping types", "aliases"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["index"], str(r["shards"]), ", ".join(r["types"]), ", ".join(r["aliases"]))
    out.print(table)


@app.command("read")
@handle_errors
def read(
    repo: RepoOption,
    snapshot: Annotated[str, typer.Option(help="Snapshot name")],
    index: Annotated[str | None, typer.Option(help="Only this index")] = None,
    shard: Annotated[int | None, typer.Option(min=0, help="Only this shard (needs --index)")] = None,
    output: Annotated[str, typer.Option(help="Output format: jsonl")] = "jsonl",
    verify_checksums: Annotated[bool, typer.Option(help="Check every file's checksum first")] = True,
    s3_endpoint: EndpointOption = None,
    s3_region: RegionOption = None,
) -> None:
    """Write every live document as one JSON line on stdout; a summary on stderr.

    A shard's documents are written only once the whole shard has been read: a shard that fails emits nothing.
    """
    if output != "jsonl":
        raise ConfigurationError(f"--output {output!r} is not supported; use jsonl")
    if shard is not None and index is None:
        raise ConfigurationError("--shard needs --index")
    repository = SnapshotRepository(_store(repo, s3_endpoint, s3_region))
    indices = [repository.index(snapshot, index).name] if index else [i.name for i in repository.indices(snapshot)]
    total = ReadSummary()
    stdout = sys.stdout.buffer
    for name in indices:
        meta = repository.index_metadata(snapshot, name)
        shards = [shard] if shard is not None else range(meta.number_of_shards)
        for s in shards:
            reader = open_shard(repository, snapshot, name, s, verify_checksums=verify_checksums)
            with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as spool:
                for doc in reader.documents():
                    spool.write(to_json_line(doc))
                spool.seek(0)
                shutil.copyfileobj(spool, stdout)
            stdout.flush()
            total.add(reader.summary)
    err.print(
        f"live {total.live}, deleted {total.deleted}, nested skipped {total.nested_skipped}, "
        f"sourceless {total.sourceless}"
        + (f" (e.g. {', '.join(total.sourceless_sample)})" if total.sourceless_sample else "")
        + (f", source from _recovery_source {total.recovered_source}" if total.recovered_source else "")
        + f"; {total.segments} segments, {total.source_bytes / 1e6:.1f} MB of source",
        highlight=False,
    )
