"""A phase's output as a person reads it, per-shard facts and worker logs: what both drivers share.

The drivers gather the raw facts (materialization metadata, run events, a shard's worker log); this module turns
them into lines for ``workflow output``/``workflow log`` and the ``workflow manage`` screen.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from migration_pipeline.workflow.phases import PhaseRef
from workflow_model.steps import PHASES, Step, is_gate

PARTITION_TAG = "dagster/partition"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
# LogProgress's line (workers/rfs/progress.py): "<label>: progress: 120 documents, 0.3 MB, 45 docs/s, ...".
_PROGRESS = re.compile(r"(?P<what>progress|done): (?P<docs>\d+) documents, [\d.]+ MB, (?P<rate>[\d.]+) docs/s")
_TAIL_BYTES = 16_384
# A phase's log shows, besides its INFO and louder messages, the run's milestones Dagster records at DEBUG:
# by event type in the instance, by GraphQL type through the webserver.
MILESTONES = frozenset({"PIPELINE_START", "PIPELINE_SUCCESS", "PIPELINE_FAILURE", "PIPELINE_CANCELED", "STEP_START",
                        "STEP_SUCCESS", "STEP_FAILURE", "ASSET_MATERIALIZATION", "ASSET_CHECK_EVALUATION"})
GRAPHQL_MILESTONES = frozenset({"RunStartEvent", "RunSuccessEvent", "RunFailureEvent", "RunCanceledEvent",
                                "ExecutionStepStartEvent", "ExecutionStepSuccessEvent", "ExecutionStepFailureEvent",
                                "MaterializationEvent", "AssetCheckEvaluationEvent"})


@dataclass
class ShardFacts:
    """One shard of the backfill: its state, documents and documents/s (live from the worker log while running)."""

    key: str
    state: str  # done | failed | running | pending
    documents: int | None = None
    docs_per_s: float | None = None
    status: str | None = None  # the worker's result as recorded: a workers.rfs.status.ShardOutcome value
    duration_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain values."""
        return dict(self.__dict__)


@dataclass
class LogChunk:
    """New lines of a shard's worker log since ``cursor``, where they come from, or why there are none."""

    lines: list[str]
    cursor: int
    source: str = ""
    note: str | None = None


@dataclass
class RunRef:
    """A run as the phase filter needs it."""

    run_id: str
    job_name: str
    assets: set[str] | None = None  # the run's asset selection, when recorded
    tags: dict[str, str] = field(default_factory=dict)
    status: str = ""

    @property
    def partition(self) -> str | None:
        """The shard a run backfills: its partition tag, or a one-partition range (a backfill's runs)."""
        if self.tags.get(PARTITION_TAG):
            return self.tags[PARTITION_TAG]
        start, end = self.tags.get(RANGE_START_TAG), self.tags.get(RANGE_END_TAG)
        return start if start and start == end else None


@dataclass
class EventRec:
    """One run event, as both drivers read it."""

    timestamp: float
    step_key: str | None
    message: str


def shard_facts(key: str, state: str, metadata: dict[str, Any], live: tuple[int, float] | None = None) -> ShardFacts:
    """A shard's facts from its last materialization's metadata, or from its worker's last progress line."""
    if state == "running" and live is not None:
        return ShardFacts(key, state, live[0], live[1])
    docs = metadata.get("documents")
    duration = metadata.get("duration_s")
    documents = int(docs) if docs is not None else None
    seconds = float(duration) if duration is not None else None
    rate = documents / seconds if documents is not None and seconds else None
    return ShardFacts(key, state, documents, rate, metadata.get("status"), seconds)


def last_progress(lines: list[str]) -> tuple[int, float] | None:
    """(documents, documents/s) of the last progress line of a worker log."""
    for line in reversed(lines):
        found = _PROGRESS.search(line)
        if found:
            return int(found["docs"]), float(found["rate"])
    return None


def read_log_file(path: Path, cursor: int = 0) -> tuple[list[str], int]:
    """Whole lines of ``path`` from byte ``cursor``; the next cursor. A file that shrank is read from the start."""
    try:
        size = path.stat().st_size
    except OSError:
        return [], cursor
    if size < cursor:
        cursor = 0
    with path.open("rb") as fh:
        fh.seek(cursor)
        data = fh.read()
    end = data.rfind(b"\n") + 1  # a line still being written waits for its newline
    text = data[:end].decode("utf-8", errors="replace")
    return [pretty_log_line(line) for line in text.splitlines()], cursor + end


def tail_lines(path: Path) -> list[str]:
    """The last lines of a log file (enough for its last progress line)."""
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            fh.seek(max(0, size - _TAIL_BYTES))
            return fh.read().decode("utf-8", errors="replace").splitlines()
    except OSError:
        return []


def pretty_log_line(line: str) -> str:
    """A worker's JSON log line (``--log-format json``) as ``time [LEVEL] message``; other lines unchanged."""
    if not line.startswith("{"):
        return line
    try:
        record = json.loads(line)
    except ValueError:
        return line
    if not isinstance(record, dict) or "message" not in record:
        return line
    level = record.get("level", "INFO")
    return " ".join(str(p) for p in (record.get("time", ""), "" if level == "INFO" else level, record["message"]) if p)


def event_line(run: RunRef, event: EventRec) -> str:
    """One event as ``workflow log`` prints it; a shard run's step carries its shard: ``shard_backfill[idx:0]``."""
    when = datetime.fromtimestamp(event.timestamp, UTC).strftime("%H:%M:%S")
    step = event.step_key or ""
    if step and run.partition:
        step = f"{step}[{run.partition}]"
    return f"{when} {run.job_name} {step} {event.message}".strip()


def run_in_phase(run: RunRef, phase: PhaseRef, events: list[EventRec] | None = None) -> bool:
    """True when ``run`` ran the phase (for a shard: that shard's partition)."""
    if phase.shard is not None:
        return run.partition == phase.shard
    if run.assets is not None:
        return phase.name in run.assets
    return events is not None and any(phase.step_matches(e.step_key) for e in events)


def event_in_phase(phase: PhaseRef, event: EventRec) -> bool:
    """True for a run event of the phase: of its own steps, or the run's own (start, end)."""
    return event.step_key is None or phase.step_matches(event.step_key)


# ---- a phase's output, as Markdown (readable as is; `workflow output` renders it on a terminal)


def md_table(markdown: str) -> list[dict[str, str]]:
    """The rows of the first Markdown table in ``markdown`` (cells unescaped)."""
    rows: list[dict[str, str]] = []
    head: list[str] | None = None
    for line in markdown.splitlines():
        line = line.strip()
        if not line.startswith("|"):
            if head is not None:
                break
            continue
        cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip("|"))]
        if head is None:
            head = cells
        elif not all(set(c) <= set("-: ") for c in cells):
            rows.append(dict(zip(head, cells, strict=False)))
    return rows


def _counts(meta: dict[str, Any], keys: list[str]) -> str:
    return ", ".join(f"{k.replace('_', '-')} {meta[k]}" for k in keys if meta.get(k) is not None)


def _section(title: str, body: str) -> list[str]:
    return ["", f"**{title}**", "", body or "none"]


def _evaluation(meta: dict[str, Any]) -> list[str]:
    blocked = [f"- {r.get('kind')} **{r.get('name')}**: {r.get('notes')}"
               for r in md_table(str(meta.get("report") or "")) if r.get("action") == "blocked"]
    return [f"Metadata evaluation: {meta.get('source')} ({meta.get('source_version')}) → "
            f"{meta.get('target')} ({meta.get('target_version')})", "",
            f"{meta.get('objects')} objects planned: "
            + _counts(meta, ["create", "exists_identical", "exists_different", "excluded", "blocked"]),
            *_section("Transformations", str(meta.get("transformations") or "")),
            *_section(f"Blocked ({len(blocked)})", "\n".join(blocked)),
            *_section("Objects", str(meta.get("report") or ""))]


def _migration(meta: dict[str, Any]) -> list[str]:
    results = sorted(k for k in meta if k.startswith("result_"))
    summary = ", ".join(f"{k.removeprefix('result_')} {meta[k]}" for k in results) or "no result recorded"
    return [f"Migrated metadata on {meta.get('target')} ({meta.get('target_version')}), approved by "
            f"{meta.get('approved_by') or '—'}", "",
            f"{meta.get('objects')} objects: {summary}",
            *_section("Changed since the evaluation", str(meta.get("changed_since_evaluation") or "")),
            *_section("Transformations", str(meta.get("transformations") or "")),
            *_section("Objects", str(meta.get("report") or ""))]


def _snapshot(meta: dict[str, Any]) -> list[str]:
    keys = meta.get("shard_keys") or []
    return [f"Snapshot {meta.get('snapshot')} in repository {meta.get('repository')} "
            f"({'created' if meta.get('created') else 'referenced'})", "",
            f"{meta.get('shards')} shards in scope: {', '.join(keys)}", "",
            f"Source documents: {meta.get('source_documents')} (counted {meta.get('counts_taken') or '—'})",
            *_section("Documents per index", str(meta.get("documents_per_index") or ""))]


def _parity(meta: dict[str, Any]) -> list[str]:
    mismatched = meta.get("mismatched") or []
    return [f"Parity of snapshot {meta.get('snapshot')}: {meta.get('indices')} indices, "
            f"{meta.get('target_documents')} documents on the target, mismatched: {', '.join(mismatched) or 'none'}",
            "", str(meta.get("parity") or "")]


def _gate(name: str, meta: dict[str, Any]) -> list[str]:
    return [f"{name}: {meta.get('decision')} by {meta.get('approved_by')}"
            + (f" (ticket {meta['ticket']})" if meta.get("ticket") else ""), "",
            f"It approves {meta.get('approves')} materialization {meta.get('approves_storage_id')} "
            f"(run {meta.get('approves_run_id')})."]


def render_output(phase: str, meta: dict[str, Any]) -> str:
    """The phase's last materialization as a person reads it, in Markdown ('' when it has none)."""
    if not meta:
        return ""
    if phase == Step.METADATA_EVALUATION:
        lines = _evaluation(meta)
    elif phase == Step.MIGRATED_METADATA:
        lines = _migration(meta)
    elif phase == Step.SOURCE_SNAPSHOT:
        lines = _snapshot(meta)
    elif phase == Step.BACKFILL_PARITY:
        lines = _parity(meta)
    elif phase == Step.VALIDATION_REPORT:
        lines = [str(meta.get("report") or ""), "", f"HTML: {meta.get('report_html')}",
                 f"JSON: {meta.get('report_json')}"]
    elif phase == Step.SNAPSHOT_REGISTRATION:
        lines = [f"Snapshot {meta.get('snapshot')} (uuid {meta.get('snapshot_uuid')}) registered for the backfill",
                 "", str(meta.get("evidence") or "")]
    elif phase == Step.MIGRATION_CLEANUP:
        lines = [f"Cleanup: {meta.get('summary')}", *_section("Kept", str(meta.get("kept") or "")),
                 *_section("Notes", str(meta.get("notes") or ""))]
    elif is_gate(phase):
        lines = _gate(phase, meta)
    else:
        lines = [f"- {k}: {v}" for k, v in meta.items()]
    return "\n".join(lines).rstrip() + "\n"


def format_rate(rate: float | None) -> str:
    """Documents/s for a table cell."""
    return "—" if rate is None else f"{rate:,.0f}"


def shard_rows(shards: list[ShardFacts]) -> list[tuple[str, str, str, str]]:
    """(shard, state, documents, docs/s) per shard."""
    return [(s.key, s.state, "—" if s.documents is None else f"{s.documents:,}", format_rate(s.docs_per_s))
            for s in shards]


def outputs_index(metadata: dict[str, dict[str, Any]], shards: list[ShardFacts]) -> list[str]:
    """The phases that have output (``workflow output`` without a phase), one line each."""
    lines = [name.value for name in PHASES if name != Step.SHARD_BACKFILL and metadata.get(name)]
    ran = [s for s in shards if s.state != "pending"]
    if ran:
        lines.append(f"{Step.SHARD_BACKFILL} (the shards' table); each shard's worker log: "
                     + ", ".join(f"{s.key} ({s.state})" for s in ran))
    return lines
