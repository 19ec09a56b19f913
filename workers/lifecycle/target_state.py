"""What the target holds of the migrated metadata, as a person checks it before the backfill: each planned index
(health, documents, primaries and replicas, aliases) and each planned template."""

from __future__ import annotations

from typing import Any

from opensearchpy import OpenSearch


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|") if value not in (None, "") else "—"


def indices_table(client: OpenSearch, names: list[str]) -> list[dict[str, Any]]:
    """One row per name: present or not, and its health, documents, shards and aliases when present."""
    if not names:
        return []
    joined = ",".join(names)
    params = {"ignore_unavailable": "true", "allow_no_indices": "true", "expand_wildcards": "all"}
    cat = {row["index"]: row for row in client.cat.indices(index=joined, format="json", params=params)}
    aliases = client.indices.get_alias(index=joined, params=params)
    rows = []
    for name in names:
        row = cat.get(name)
        rows.append({"index": name, "present": row is not None,
                     "health": row.get("health") if row else None, "documents": row.get("docs.count") if row else None,
                     "primaries": row.get("pri") if row else None, "replicas": row.get("rep") if row else None,
                     "aliases": sorted((aliases.get(name) or {}).get("aliases") or {})})
    return rows


def templates_present(client: OpenSearch, names: list[str]) -> dict[str, bool]:
    """Which of the planned templates (component, composable or legacy) exist on the target."""
    found: set[str] = set()
    if names:
        for path, key in (("/_component_template", "component_templates"), ("/_index_template", "index_templates")):
            found.update(t["name"] for t in client.transport.perform_request("GET", path).get(key, []))
        found.update(client.indices.get_template())
    return {name: name in found for name in names}


def to_markdown(indices: list[dict[str, Any]], templates: dict[str, bool]) -> str:
    """The two tables."""
    lines = ["| index | on the target | health | documents | primaries | replicas | aliases |",
             "|---|---|---|---|---|---|---|"]
    for r in indices:
        lines.append(f"| {r['index']} | {'yes' if r['present'] else 'NO'} | {_cell(r['health'])} | "
                     f"{_cell(r['documents'])} | {_cell(r['primaries'])} | {_cell(r['replicas'])} | "
                     f"{_cell(', '.join(r['aliases']))} |")
    if not indices:
        lines.append("| — | | | | | | |")
    if templates:
        lines += ["", "| template | on the target |", "|---|---|"]
        lines += [f"| {name} | {'yes' if present else 'NO'} |" for name, present in sorted(templates.items())]
    return "\n".join(lines)
