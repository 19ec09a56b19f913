"""Fault injection for the workflow tests (loaded by the worker as a document transformation).

A real worker process is killed with SIGKILL mid-shard: no component can be asked to die on demand, so the worker
kills itself when it reaches its 50th document (``$WORKFLOW_TEST_KILL_AT`` to change), as many times as the marker
file says (empty: once).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

MARKER_ENV = "WORKFLOW_TEST_KILL_MARKER"
KILL_AT_ENV = "WORKFLOW_TEST_KILL_AT"
_seen = 0


def _claim(marker: Path) -> bool:
    """Take one kill from the marker; False when none is left. Shard workers run in parallel: the claim is an
    atomic rename, so exactly one worker wins each kill."""
    claimed = marker.with_name(f"{marker.name}.{os.getpid()}")
    try:
        marker.rename(claimed)
    except FileNotFoundError:
        return False
    left = int(claimed.read_text().strip() or "1") - 1
    if left > 0:
        marker.write_text(str(left))
    claimed.unlink()
    return True


def kill_once(doc: dict[str, Any]) -> dict[str, Any] | None:
    """Pass documents through; SIGKILL this process at its 50th document if it claims a kill from the marker."""
    global _seen
    marker = os.environ.get(MARKER_ENV)
    _seen += 1
    if marker and _seen == int(os.environ.get(KILL_AT_ENV) or 50) and _claim(Path(marker)):
        # With one request in flight (max_connections: 1) the batches before this document's Lucene chunk are
        # acknowledged: give the checkpoint writer time to record the last one, so that a retry can resume there.
        time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGKILL)
    return doc


def slow_down(doc: dict[str, Any]) -> dict[str, Any] | None:
    """Pass documents through at most ~200 a second: a shard worker that lives long enough for a test to act on it
    (delete its pod) while it runs."""
    time.sleep(0.005)
    return doc
