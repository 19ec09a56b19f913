"""One validation: the snapshot side (or, in a live migration, the live source) against the target, index by index,
then queries, metadata and replay."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConnectionError as ClientConnectionError
from opensearchpy.exceptions import TransportError

from workers.common.cluster_info import server_version
from workers.common.clusters import build_client
from workers.common.errors import ConfigurationError, MigrationError
from workers.common.fingerprint import BUCKETS, Fingerprint
from workers.metadata.options import MigrationOptions
from workers.metadata.source import SnapshotLocation
from workers.metadata.versions import EngineVersion
from workers.rfs.bulk import BulkItemBuilder
from workers.rfs.naming import target_indices
from workers.snapshot.blobstore import open_blob_store
from workers.snapshot.repository import SnapshotRepository
from workers.validate import queries as query_compare
from workers.validate import snapshot_side as snap
from workers.validate import target_scan
from workers.validate.live import live_encoder, live_rows
from workers.validate.metadata_check import compare_metadata
from workers.validate.narrow import compare_documents, differing_buckets
from workers.validate.replay_join import replay_summary
from workers.validate.report import IndexRow, ValidationReport
from workers.validate.scope import SnapshotScope, ValidationOptions, documents_for_confidence

log = logging.getLogger("workers.validate")


def confidence_note(buckets: int) -> str:
    """What a sample of ``buckets`` of the 256 can and cannot see."""
    return (f"sample: {buckets}/{BUCKETS} id buckets hashed ({buckets / BUCKETS:.1%} of the documents), every document "
            f"counted per bucket; content differences in at least {documents_for_confidence(buckets)} documents "
            "are seen with 95% probability, fewer may pass")


def _in_scope(scope: SnapshotScope, options: ValidationOptions, names: dict[str, list[str]]) -> list[str]:
    wanted = set(options.indices)
    return [i for i in sorted(scope.source_counts) if not wanted or i in wanted or wanted & set(names.get(i, []))]


def validate(scope: SnapshotScope, options: ValidationOptions, *, metadata_options: MigrationOptions | None = None,
             source_version: EngineVersion | None = None, replay_tuples: str | None = None,
             known: dict[snap.ShardRef, dict[str, Fingerprint]] | None = None) -> ValidationReport:
    """Validate the target against the snapshot, or against the live source (``options.against``; the queries ask
    the live source either way). ``known``: shards' fingerprints an earlier report kept (after the cleanup, the
    coordination index no longer holds them; not read against the source)."""
    began = time.monotonic()
    repo = SnapshotRepository(open_blob_store(scope.repo_uri, s3_endpoint=scope.s3_endpoint,
                                              s3_region=scope.s3_region))
    client = target_scan.scan_client(options.target, options.connections)
    hashed = options.sampled()
    report = ValidationReport(scope.snapshot, scope.snapshot_uuid, options.target.redacted(),
                              options.source.redacted() if options.source else None, options.mode,
                              datetime.now(UTC).isoformat(timespec="seconds"), against=options.against)
    if hashed is not None:
        report.sample_buckets, report.confidence = len(hashed), confidence_note(len(hashed))
    names = target_indices(repo, scope.snapshot, sorted(scope.source_counts), options.rename, options.type_mode)
    indices = _in_scope(scope, options, names)
    if options.indices and not indices:
        raise ConfigurationError(f"--index {', '.join(options.indices)}: not an index of snapshot {scope.snapshot} "
                                 f"nor a target index of one ({', '.join(sorted(scope.source_counts))})")
    if options.against == "source":
        # A live migration: the target follows the source, not the snapshot (workers/validate/live.py).
        assert options.source is not None  # ValidationOptions refuses "source" without one
        source = target_scan.scan_client(options.source, options.connections)
        try:
            live_rows(report, client, source, live_encoder(repo, scope, options, indices), options, scope, indices,
                      names, hashed)
        except (ClientConnectionError, TransportError) as exc:  # without the source there is nothing to compare
            raise MigrationError(f"comparing with the live source {options.source.redacted()}: "
                                 f"{exc.__class__.__name__}: {str(exc)[:300]}") from None
    else:
        names = _snapshot_rows(report, client, repo, scope, options, indices, hashed, known)
    _queries(report, client, options, indices, names)
    if options.metadata and metadata_options is not None:
        location = SnapshotLocation(scope.repo_uri, scope.snapshot, scope.s3_endpoint, scope.s3_region)
        in_scope = {n for i in indices for n in names[i]}
        report.metadata = compare_metadata(location, build_client(options.target), options.target.redacted(),
                                           metadata_options, in_scope, source_version)
    elif options.metadata:
        report.skipped["metadata"] = "no metadata options given"
    report.replay, note = replay_summary(replay_tuples)
    if note:
        report.notes.append(note)
    report.seconds = time.monotonic() - began
    return report


def _snapshot_rows(report: ValidationReport, client: OpenSearch, repo: SnapshotRepository, scope: SnapshotScope,
                   options: ValidationOptions, indices: list[str], hashed: frozenset[int] | None,
                   known: dict[snap.ShardRef, dict[str, Fingerprint]] | None) -> dict[str, list[str]]:
    """A row per target index against the snapshot side; the target names per source index."""
    side = snap.snapshot_side(repo, client, scope, options, indices, known)
    report.snapshot_shards = side.shards_to_dict()
    if side.recomputed:
        report.notes.append("read again from the snapshot (the backfill recorded no fingerprint): "
                            + ", ".join(f"{i}[{s}]" for i, s in side.recomputed))
    builder = snap.builder_for(options)
    for name in sorted({n for i in indices for n in side.target_names[i]}):
        sources = [i for i in indices if name in side.target_names[i]]
        only = len(sources) == 1 and len(side.target_names[sources[0]]) == 1
        report.indices.append(_index_row(client, repo, scope, options, side, builder, name, sources,
                                         scope.source_counts[sources[0]] if only else None, hashed, report))
    return side.target_names


def _index_row(client: OpenSearch, repo: SnapshotRepository, scope: SnapshotScope, options: ValidationOptions,
               side: snap.SnapshotSide, builder: BulkItemBuilder, name: str, sources: list[str],
               source_count: int | None, hashed: frozenset[int] | None, report: ValidationReport) -> IndexRow:
    expected = side.fingerprints.get(name, Fingerprint())
    row = IndexRow(name, sources, source_count, expected.count, None, expected.digest, None, "missing")
    if not client.indices.exists(index=name):
        row.fingerprint = "index missing on the target"
        return row
    client.indices.refresh(index=name)
    found, stats = target_scan.fingerprint_index(client, name, hashed=hashed, connections=options.connections,
                                                 page_size=options.page_size)
    row.target_count, row.scan_seconds, row.scan_method = found.count, stats.seconds, stats.method
    buckets = differing_buckets(expected, found, hashed)
    row.differing_buckets = len(buckets)
    if hashed is None:
        row.target_digest = found.digest
        row.fingerprint = "match" if not buckets else "differs"
    else:
        row.target_digest = found.restricted(hashed).digest
        row.fingerprint = "sample match" if not buckets else "differs"
    if buckets:
        log.info("%s: %d of %d buckets differ; listing their documents on both sides", name, len(buckets), BUCKETS)
        wanted = set(buckets)
        on_target = target_scan.documents_in_buckets(client, name, wanted, connections=options.connections,
                                                     page_size=options.page_size)
        on_snapshot = snap.documents_in_buckets(repo, scope, side, name, wanted, builder)
        report.differences += compare_documents(name, on_snapshot, on_target, limit=options.max_listed)
    return row


def _queries(report: ValidationReport, target: OpenSearch, options: ValidationOptions, indices: list[str],
             names: dict[str, list[str]]) -> None:
    if not options.queries:
        report.skipped["queries"] = "turned off"
        return
    if options.source is None:
        report.skipped["queries"] = "no source cluster to ask"
        return
    try:
        source = build_client(options.source)
        version = server_version(source)
    except (ClientConnectionError, TransportError, OSError) as exc:
        report.skipped["queries"] = f"the source could not be asked: {exc.__class__.__name__}: {str(exc)[:200]}"
        return
    for index in indices:
        present = [n for n in names[index] if target.indices.exists(index=n)]
        if not present or not source.indices.exists(index=index):
            continue  # a missing index is the counts' finding; an index gone from the source has nothing to ask
        live = options.against == "source"
        report.queries += query_compare.compare(source, target, version, index, present, options.custom_queries,
                                                settle_s=options.settle_s if live else 0.0,
                                                rechecks=options.rechecks if live else 0)
