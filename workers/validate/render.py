"""The report as Markdown (the Dagster UI, the console), HTML and JSON files, written into one folder per run."""

from __future__ import annotations

import html
import json
from pathlib import Path

from workers.validate.plots import documents_plot, lag_plot
from workers.validate.report import CHECKS, ValidationReport


def _cell(value: object) -> str:
    return "—" if value is None else str(value).replace("|", "\\|")


def index_table(report: ValidationReport) -> list[str]:
    """The per-index table (Markdown)."""
    if report.live:  # the source side is the live source's documents now; in-flight writes converged
        lines = ["| target index | source index | source count at snapshot | live source | target count | "
                 "fingerprint | converged |", "|---|---|---|---|---|---|---|"]
        for r in report.indices:
            lines.append(f"| {r.index} | {', '.join(r.source_indices)} | {_cell(r.source_count)} | "
                         f"{r.snapshot_count} | {_cell(r.target_count)} | {r.fingerprint} | {r.converged} |")
        return lines
    lines = ["| target index | source index | source count | sent from snapshot | target count | fingerprint |",
             "|---|---|---|---|---|---|"]
    for r in report.indices:
        lines.append(f"| {r.index} | {', '.join(r.source_indices)} | {_cell(r.source_count)} | {r.snapshot_count} | "
                     f"{_cell(r.target_count)} | {r.fingerprint} |")
    return lines


def to_markdown(report: ValidationReport, max_rows: int = 50) -> str:
    """The whole report in Markdown."""
    verdict = "**clean**: the target holds what the source held" if report.clean else "**differences found**"
    title = f"## Validation of snapshot {report.snapshot} on {report.target}"
    if report.live:
        title = (f"## Validation of {report.target} against the live source {report.source} (indices of snapshot "
                 f"{report.snapshot})")
    live = (f", differences rechecked up to {report.rechecks} times {report.settle_s or 0:g}s apart, "
            f"{report.converged} converged (in flight)" if report.live else "")
    lines = [title, "",
             f"{verdict} — mode {report.mode}, {report.against_label}"
             + (f" ({report.confidence})" if report.confidence else "") + live + f", {report.seconds:.1f}s", "",
             "| check | result |", "|---|---|"]
    for check in CHECKS:
        skipped = report.skipped.get(check)
        result = f"skipped: {skipped}" if skipped else ("pass" if report.passed(check) else
                                                       f"FAIL ({len(report.failures(check))})")
        lines.append(f"| {check} | {_cell(result)} |")
    lines += ["", "### Indices", "", *index_table(report)]
    if report.differences:
        lines += ["", f"### Differing documents ({len(report.differences)} listed)", "",
                  "| index | id | kind | example diff |", "|---|---|---|---|"]
        for d in report.differences[:max_rows]:
            lines.append(f"| {d.index} | {_cell(d.id)} | {d.kind} | {_cell('; '.join(d.diff or []))} |")
    if report.metadata:
        lines += ["", "### Metadata against the plan", "",
                  "| index | status | differences | expected (transformations) |", "|---|---|---|---|"]
        for m in report.metadata:
            lines.append(f"| {m.index} | {m.status} | {_cell('; '.join(m.differences))} | "
                         f"{_cell(', '.join(m.expected))} |")
    if report.queries:
        lines += ["", "### Queries on source and target", "", "| index | query | match | source | target |",
                  "|---|---|---|---|---|"]
        for q in report.queries[:max_rows * 4]:
            lines.append(f"| {q.index} | {_cell(q.query)} | {'yes' if q.match else 'NO'} | "
                         f"{_cell(q.source[:120] or q.note)} | {_cell(q.target_result[:120])} |")
    if report.replay is not None:
        lines += ["", "### Replay", "", "```", json.dumps(report.replay, indent=1, default=str)[:2000], "```"]
    if report.notes:
        lines += ["", "### Notes", "", *(f"- {n}" for n in report.notes)]
    return "\n".join(lines) + "\n"


def to_html(report: ValidationReport, images: list[str]) -> str:
    """A standalone HTML page: the Markdown's tables as HTML, and the plots."""
    body = []
    for block in to_markdown(report).split("\n\n"):
        rows = [line for line in block.splitlines() if line.startswith("|")]
        if rows and len(rows) == len(block.splitlines()):
            cells = [[c.strip().replace("\\|", "|") for c in r.strip("|").split(" | ")] for r in rows]
            head, data = cells[0], cells[2:]
            body.append("<table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in head) + "</tr>"
                        + "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in data)
                        + "</table>")
        elif block.startswith("#"):
            level = len(block) - len(block.lstrip("#"))
            body.append(f"<h{level}>{html.escape(block.lstrip('# '))}</h{level}>")
        else:
            body.append(f"<p>{html.escape(block).replace(chr(10), '<br>')}</p>")
    body += [f'<img src="{html.escape(name)}" alt="{html.escape(name)}">' for name in images]
    style = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:2px 6px;font-size:90%}img{max-width:100%}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>Validation {html.escape(report.snapshot)}"
            f"</title><style>{style}</style></head><body>{''.join(body)}</body></html>\n")


def write_files(report: ValidationReport, folder: Path,
                lag: list[tuple[float, float]] | None = None) -> dict[str, Path]:
    """report.json, report.md, report.html, the snapshot side's fingerprints and the plots in ``folder``; their paths
    by kind."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"json": folder / "report.json", "markdown": folder / "report.md", "html": folder / "report.html",
             "snapshot_fingerprints": folder / "snapshot_fingerprints.json"}
    paths["json"].write_text(json.dumps(report.to_dict(), indent=1, default=str))
    paths["snapshot_fingerprints"].write_text(json.dumps(report.snapshot_shards))
    paths["markdown"].write_text(to_markdown(report))
    images = []
    documents = documents_plot(report, folder / "documents.png")
    if documents is not None:
        paths["documents_plot"] = documents
        images.append(documents.name)
    if lag:
        paths["lag_plot"] = lag_plot(lag, folder / "lag.png")
        images.append(paths["lag_plot"].name)
    paths["html"].write_text(to_html(report, images))
    return paths
