"""The report's plots as PNG files, drawn off-screen (matplotlib's Agg backend: no display needed)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from workers.validate.report import ValidationReport


def _pyplot():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg")  # before pyplot is imported: no display on servers and in runs
    import matplotlib.pyplot as plt

    return plt


def documents_plot(report: ValidationReport, path: Path) -> Path | None:
    """Documents per index, sent from the snapshot (or held by the live source) against held by the target (None
    when there are no indices)."""
    if not report.indices:
        return None
    plt = _pyplot()
    names = [r.index for r in report.indices]
    sent = [r.snapshot_count for r in report.indices]
    held = [r.target_count or 0 for r in report.indices]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(names) + 2), 3.5))
    xs = range(len(names))
    ax.bar([x - 0.2 for x in xs], sent, width=0.4, label="source (live)" if report.live else "source (snapshot)")
    ax.bar([x + 0.2 for x in xs], held, width=0.4, label="target")
    ax.set_xticks(list(xs), names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("documents")
    ax.set_title("Documents per index")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def lag_plot(points: list[tuple[float, float]], path: Path) -> Path:
    """Replay lag over time, from (epoch seconds, records behind) observations."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot([datetime.fromtimestamp(t, UTC) for t, _ in points], [lag for _, lag in points])
    ax.set_ylabel("records behind")
    ax.set_title("Replay lag")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
