"""The evaluate/migrate report: one row per object, with JSON and Markdown renderings."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from workers.metadata.model import KIND_LABELS, KIND_ORDER, Kind

Action = Literal["create", "exists-identical", "exists-different", "excluded", "blocked"]
Result = Literal["created", "overwritten", "unchanged", "kept-existing", "skipped", "excluded", "blocked", "failed"]
ACTIONS: tuple[Action, ...] = ("create", "exists-identical", "exists-different", "excluded", "blocked")


@dataclass
class Row:
    """One object: what evaluate decided (``action``) and, after migrate, what happened (``result``)."""

    kind: Kind
    name: str
    source_name: str
    action: Action
    transformations: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    blockers: list[str] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)
    body: dict[str, Any] | None = None
    source_type: str | None = None
    result: Result | None = None
    reason: str | None = None

    @property
    def notes(self) -> list[str]:
        """Blocking reasons first, then the migrate failure, differences and warnings."""
        failure = [f"failed: {self.reason}"] if self.result == "failed" and self.reason else []
        return [*self.blockers, *failure, *self.differences, *self.warnings]


@dataclass
class Report:
    """Everything evaluate (and migrate) found, in creation order."""

    mode: Literal["evaluate", "migrate"]
    source: str
    target: str
    source_version: str
    target_version: str
    rows: list[Row] = field(default_factory=list)
    transformations: dict[str, str] = field(default_factory=dict)

    def sort(self) -> None:
        """Creation order: component templates, index templates, legacy templates, indices; then by name."""
        self.rows.sort(key=lambda r: (KIND_ORDER.index(r.kind), r.name, r.source_name))

    @property
    def blocked(self) -> list[Row]:
        """Rows that cannot be created."""
        return [r for r in self.rows if r.action == "blocked"]

    @property
    def failed(self) -> list[Row]:
        """Rows migrate tried and the target refused."""
        return [r for r in self.rows if r.result == "failed"]

    def counts(self) -> dict[str, int]:
        """Rows per action (and per result after migrate)."""
        found = Counter(r.action for r in self.rows)
        out: dict[str, int] = {a: found.get(a, 0) for a in ACTIONS}
        if self.mode == "migrate":
            out.update({f"result:{k}": v for k, v in sorted(Counter(str(r.result) for r in self.rows).items())})
        return out

    def exit_code(self) -> int:
        """0 ok; 1 when an object failed on migrate; 3 when something is blocked."""
        if self.failed:
            return 1
        return 3 if self.blocked else 0

    def to_dict(self, with_bodies: bool = True) -> dict[str, Any]:
        """A JSON-ready form (the ``--output json`` document)."""
        rows = []
        for row in self.rows:
            item = asdict(row)
            if not with_bodies:
                item.pop("body")
            rows.append(item)
        return {"mode": self.mode, "source": self.source, "target": self.target,
                "source_version": self.source_version, "target_version": self.target_version,
                "counts": self.counts(), "blocked": len(self.blocked), "failed": len(self.failed),
                "transformations": self.transformations, "rows": rows}

    def markdown(self, limit: int = 500) -> str:
        """The rows as a Markdown table, excluded ones last (long reports are cut at ``limit`` rows)."""
        migrate = self.mode == "migrate"
        head = "| kind | name | action |" + (" result |" if migrate else "") + " transformations | notes |"
        lines = [head, "|" + "---|" * (6 if migrate else 5)]
        rows = sorted(self.rows, key=lambda r: r.action == "excluded")  # stable: creation order otherwise
        for row in rows[:limit]:
            name = row.name if row.name == row.source_name else f"{row.name} (from {row.source_name})"
            cells = [KIND_LABELS[row.kind], name, row.action]
            if migrate:
                cells.append(str(row.result or ""))
            cells += [", ".join(row.transformations), "; ".join(row.notes)]
            lines.append("| " + " | ".join(_md(c) for c in cells) + " |")
        if len(self.rows) > limit:
            lines.append(f"\n{len(self.rows) - limit} more rows not shown")
        return "\n".join(lines)


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
