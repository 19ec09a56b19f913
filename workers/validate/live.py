"""The target against the live source, index by index, for a live migration (capture and replay on).

The snapshot is out of date as soon as clients write again: the replayer applies their writes to the target, so the
target holds documents the snapshot never had. Each target index is compared with the source index(es) it comes
from instead, both read the same way (a sliced scan, fingerprinted per id bucket), each source document named and
encoded as the backfill would send it. The target is read first: it lags the source, so a write that lands during
the scans shows as missing on the target (and is then known on the source, to read it again), rarely as extra.
Differing buckets are listed on both sides and each differing document is rechecked until it agrees
(``converge``); only what persists is reported.
"""

from __future__ import annotations

import logging

from opensearchpy import OpenSearch

from workers.common.fingerprint import BUCKETS, Fingerprint
from workers.snapshot.repository import SnapshotRepository
from workers.validate import target_scan
from workers.validate.converge import settle
from workers.validate.narrow import Docs, differing_buckets
from workers.validate.report import CONVERGED, IndexRow, ValidationReport
from workers.validate.scope import SnapshotScope, ValidationOptions
from workers.validate.source_scan import (
    LiveEncoder,
    SourceRef,
    documents_in_buckets,
    fetch_documents,
    fingerprint_source,
)

log = logging.getLogger("workers.validate")


def live_encoder(repo: SnapshotRepository, scope: SnapshotScope, options: ValidationOptions,
                 indices: list[str]) -> LiveEncoder:
    """The backfill's naming for ``indices`` (their mapping types from the snapshot, only to split types)."""
    split = options.type_mode == "index-per-type"
    return LiveEncoder(options, {i: repo.index_metadata(scope.snapshot, i).mappings if split else () for i in indices})


def live_rows(report: ValidationReport, target: OpenSearch, source: OpenSearch, encoder: LiveEncoder,
              options: ValidationOptions, scope: SnapshotScope, indices: list[str], names: dict[str, list[str]],
              hashed: frozenset[int] | None) -> None:
    """Add a row per target index of ``indices`` (source names; ``names``: their target indices) to ``report``,
    compared with the live source."""
    report.against, report.settle_s, report.rechecks = "source", options.settle_s, options.rechecks
    for name in sorted({n for i in indices for n in names[i]}):
        sources = [i for i in indices if name in names[i]]
        only = len(sources) == 1 and len(names[sources[0]]) == 1
        report.indices.append(_live_row(report, target, source, encoder, options, name, sources,
                                        scope.source_counts[sources[0]] if only else None, hashed))
    converged = {r.index: r.converged for r in report.indices if r.converged}
    report.notes.append(
        f"against the live source: differences were read again up to {options.rechecks} times "
        f"{options.settle_s:g}s apart; {sum(converged.values())} converged (writes in flight"
        + (f": {', '.join(f'{k} {v}' for k, v in sorted(converged.items()))}" if converged else "")
        + "), only the ones that persisted are listed")
    if options.transform:
        report.notes.append(f"the source's documents went through the backfill's transform {options.transform}; a "
                            "document known only on the target is looked up on the source by its target id")


def _side(source: OpenSearch, encoder: LiveEncoder, options: ValidationOptions, name: str, present: list[str],
          hashed: frozenset[int] | None) -> Fingerprint:
    expected = Fingerprint(ids=None if hashed is None else [0] * BUCKETS)  # a sample compares ids (source_scan)
    for index in present:
        fps, stats = fingerprint_source(source, index, encoder, hashed=hashed, connections=options.connections,
                                        page_size=options.page_size)
        log.info("%s on the source: %d documents read in %.1fs (%s)", index, stats.documents, stats.seconds,
                 stats.method)
        expected.merge(fps.get(name, Fingerprint()))
    return expected


def _live_row(report: ValidationReport, target: OpenSearch, source: OpenSearch, encoder: LiveEncoder,
              options: ValidationOptions, name: str, sources: list[str], source_count: int | None,
              hashed: frozenset[int] | None) -> IndexRow:
    present = [i for i in sources if source.indices.exists(index=i)]
    row = IndexRow(name, sources, source_count, 0, None, "", None, "missing", live=True)
    found = None
    if target.indices.exists(index=name):  # the target first: it lags the source (see the module's docstring)
        target.indices.refresh(index=name)
        found, stats = target_scan.fingerprint_index(target, name, hashed=hashed, connections=options.connections,
                                                     page_size=options.page_size, ids=True)
        row.target_count, row.scan_seconds, row.scan_method = found.count, stats.seconds, stats.method
    expected = _side(source, encoder, options, name, present, hashed)
    row.snapshot_count = expected.count
    row.snapshot_digest = expected.digest if hashed is None else expected.restricted(hashed).digest
    if found is None:
        row.fingerprint = "index missing on the target"
        return row
    row.target_digest = found.digest if hashed is None else found.restricted(hashed).digest
    buckets = differing_buckets(expected, found, hashed)
    row.differing_buckets = len(buckets)
    if not buckets:
        row.fingerprint = "match" if hashed is None else "sample match"
        return row
    log.info("%s: %d buckets differ from the live source; listing their documents on both sides", name, len(buckets))
    wanted = set(buckets)
    on_target = target_scan.documents_in_buckets(target, name, wanted, connections=options.connections,
                                                 page_size=options.page_size)
    on_source: Docs = {}
    refs: dict[str, SourceRef] = {}
    for index in present:
        docs, where = documents_in_buckets(source, index, encoder, name, wanted, connections=options.connections,
                                           page_size=options.page_size)
        on_source.update(docs)
        refs.update(where)
    routing = {i: d[0] for i, d in on_source.items()} | {i: d[0] for i, d in on_target.items()}
    # A document known only on the target is looked for in every source index (and type) that goes there.
    candidates = [(index, type_name) for index, type_name in encoder.sources_of(name) if index in present]

    def fetch_source(ids: list[str]) -> Docs:
        wanted_refs = [r for i in ids for r in ([refs[i]] if i in refs else
                                                [SourceRef(ix, t, i, routing.get(i)) for ix, t in candidates])]
        return fetch_documents(source, encoder, name, wanted_refs)

    def fetch_target(ids: list[str]) -> Docs:
        return target_scan.fetch_documents(target, name, [(i, routing.get(i)) for i in ids])

    settled = settle(name, on_source, on_target, fetch_source, fetch_target, settle_s=options.settle_s,
                     rechecks=options.rechecks, limit=options.max_listed)
    report.differences += settled.differences
    row.converged, row.persistent_missing, row.persistent_extra = settled.converged, settled.missing, settled.extra
    row.fingerprint = "differs" if settled.missing + settled.extra + settled.content else CONVERGED
    return row
