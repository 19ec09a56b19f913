"""The replayer's summary, when its tuples exist: matches and mismatches by kind join the report.

The replayer (``workers/replay``) is built separately; until its ``summary`` module exists, or while no tuples were
written, the report says so and goes on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def replay_summary(location: str | None) -> tuple[dict[str, Any] | None, str | None]:
    """(summary, None), or (None, why there is none)."""
    if not location:
        return None, "replay: no tuple location configured (validation.replay_tuples)"
    if "://" not in location and not Path(location).exists():
        return None, f"replay: no tuples at {location} yet"
    try:
        from workers.replay import summary as replay  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None, "replay: the replayer's summary (workers.replay.summary) is not available in this build"
    found: Any = replay.summarize(location)
    if hasattr(found, "to_dict"):
        return dict(found.to_dict()), None
    return (dict(found) if isinstance(found, dict) else {"summary": str(found)}), None
