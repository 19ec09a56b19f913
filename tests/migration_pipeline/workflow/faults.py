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


def kill_once(doc: dict[str, Any]) -> dict[str, Any] | None:
    """Pass documents through; SIGKILL this process at the 50th document of a shard while the marker exists."""
    marker = os.environ.get(MARKER_ENV)
    if marker:
        path = Path(marker)
        state = path.with_suffix(".count")
        if path.exists():
            seen = int(state.read_text()) + 1 if state.exists() else 1
            state.write_text(str(seen))
            if seen >= 50:
                path.unlink()
                os.kill(os.getpid(), signal.SIGKILL)
    return doc
