"""Convergence: which differences between the live source and the target are writes still on their way.

In a live migration clients keep writing to the source and the replayer applies the same writes to the target a
moment later. A document written in that moment differs between the two sides, and agrees again once the replayer
has caught up with it. So each differing document is read again on both sides (real-time ``_mget``) after
``settle_s``, up to ``rechecks`` times: one that agrees at some recheck was in flight (``converged``); only those
that differ at every recheck are reported.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from workers.validate.narrow import Docs, DocumentDifference, compare_documents

log = logging.getLogger("workers.validate")

# Reads the given ids again (on one side): the documents found, by id; an absent one is left out.
Fetch = Callable[[list[str]], Docs]


@dataclass
class Settled:
    """What remained after the rechecks: the persistent differences (listed up to the limit), how many of each kind
    there are in all, and how many differences converged."""

    differences: list[DocumentDifference] = field(default_factory=list)
    missing: int = 0
    extra: int = 0
    content: int = 0
    converged: int = 0
    rechecks: int = 0  # rechecks done (fewer than allowed when everything converged)


def differing_ids(source: Docs, target: Docs) -> set[str]:
    """Ids present on one side only, or with another routing or source (both canonical: equal bytes, equal
    documents)."""
    return set(source.keys() ^ target.keys()) | {i for i in source.keys() & target.keys() if source[i] != target[i]}


def settle(index: str, source: Docs, target: Docs, fetch_source: Fetch, fetch_target: Fetch, *, settle_s: float,
           rechecks: int, limit: int = 100, sleep: Callable[[float], None] = time.sleep) -> Settled:
    """Recheck the documents of ``index`` that differ between ``source`` and ``target`` (listed at about the same
    time) until they agree or ``rechecks`` are done; the source is read before the target at each recheck, so a
    write reaching the source in between is already on its way to the target."""
    out = Settled()
    pending = differing_ids(source, target)
    last_source = {i: source[i] for i in pending if i in source}
    last_target = {i: target[i] for i in pending if i in target}
    while pending and out.rechecks < rechecks:
        sleep(settle_s)
        out.rechecks += 1
        ids = sorted(pending)
        last_source, last_target = fetch_source(ids), fetch_target(ids)
        still = differing_ids(last_source, last_target) & pending
        out.converged += len(pending) - len(still)
        log.info("%s: recheck %d of %d: %d of %d differences converged", index, out.rechecks, rechecks,
                 len(pending) - len(still), len(pending))
        pending = still
    out.missing = sum(1 for i in pending if i in last_source and i not in last_target)
    out.extra = sum(1 for i in pending if i in last_target and i not in last_source)
    out.content = len(pending) - out.missing - out.extra
    out.differences = compare_documents(index, {i: last_source[i] for i in pending if i in last_source},
                                        {i: last_target[i] for i in pending if i in last_target}, limit=limit)
    return out
