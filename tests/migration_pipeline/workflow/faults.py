"""Fault injection for the workflow tests (loaded by the worker as a document transformation).

A real worker process is killed with SIGKILL mid-shard: no component can be asked to die on demand, so the worker
kills itself when it reaches a chosen document, once (the marker file is removed first, so the rerun passes).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

MARKER_ENV = "WORKFLOW_TEST_KILL_MARKER"


_seen = 0


def kill_once(doc: dict[str, Any]) -> dict[str, Any] | None:
    """Pass documents through; SIGKILL this process at its 50th document if it is the one that claims the marker.

    Shard workers run in parallel, so the claim is the atomic unlink: exactly one worker wins it and dies, the others
    (and the rerun, which finds no marker) go on.
    """
    global _seen
    marker = os.environ.get(MARKER_ENV)
    _seen += 1
    if marker and _seen == 50:
        try:
            Path(marker).unlink()
        except FileNotFoundError:
            return doc
        os.kill(os.getpid(), signal.SIGKILL)
    return doc
