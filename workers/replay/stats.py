"""A replayer's counters and the status file other processes read (the CLI, the Dagster sensor and asset)."""

from __future__ import annotations

import os
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson


def documents_in(method: str, segments: list[str], body: bytes) -> int:
    """Documents a request writes: a bulk's actions (counted without parsing), 1 for a single-document write."""
    if segments and segments[-1] == "_bulk":
        lines = body.count(b"\n") + (0 if body.endswith(b"\n") or not body else 1)
        deletes = body.count(b'{"delete"')
        return (lines - deletes) // 2 + deletes
    if method in ("PUT", "POST", "DELETE") and len(segments) >= 2 and not segments[0].startswith("_") \
            and (segments[1] in ("_doc", "_create", "_update") or not segments[1].startswith("_")):
        return 1
    return 0


@dataclass
class ReplayStats:
    """Everything counted since the process started."""

    started: float = field(default_factory=time.time)
    transactions: int = 0
    requests_sent: int = 0
    documents: int = 0
    bytes_sent: int = 0
    retries: int = 0
    dead_letters: int = 0
    transform_errors: int = 0
    dropped_by_transform: int = 0
    auto_ids_pinned: int = 0
    # Auto-id writes sent without a pinned id: the only writes a repeated replay may duplicate.
    auto_ids_unpinned: int = 0
    without_source_response: int = 0
    comparisons: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        """The counters as JSON-ready values."""
        elapsed = max(time.time() - self.started, 1e-9)
        out: dict[str, Any] = {k: v for k, v in vars(self).items() if k not in ("comparisons", "started")}
        out["comparisons"] = dict(self.comparisons)
        out["elapsed_s"] = round(elapsed, 3)
        out["documents_per_s"] = round(self.documents / elapsed, 1)
        return out


def write_status(path: str, status: dict[str, Any]) -> None:
    """Replace the status file atomically (readers never see half of one)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".status-")
    with os.fdopen(fd, "wb") as out:
        out.write(orjson.dumps(status, option=orjson.OPT_INDENT_2))
    os.replace(tmp, target)


def read_status(path: str) -> dict[str, Any] | None:
    """A status file's content, None when there is none (yet)."""
    try:
        data = orjson.loads(Path(path).read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None
