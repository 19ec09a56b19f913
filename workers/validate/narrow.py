"""From differing fingerprints to differing documents: compare bucket by bucket, then list the ids of the buckets that
differ on both sides and say how each differs (missing on the target, extra on it, or content differs)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import orjson

from workers.common.fingerprint import BUCKETS, MODULUS, Fingerprint, document_hash

Kind = Literal["missing", "extra", "content differs"]
_MAX_DIFF_LINES = 8


@dataclass(frozen=True)
class DocumentDifference:
    """One document that differs between the snapshot and the target."""

    index: str  # the target index
    id: str
    kind: Kind
    diff: list[str] | None = None  # for "content differs": path: snapshot value -> target value (one example)

    def to_dict(self) -> dict[str, Any]:
        """Plain values."""
        out: dict[str, Any] = {"index": self.index, "id": self.id, "kind": self.kind}
        if self.diff is not None:
            out["diff"] = self.diff
        return out


def differing_buckets(snapshot: Fingerprint, target: Fingerprint, hashed: frozenset[int] | None) -> list[int]:
    """Buckets whose counts differ, or whose digests differ among the hashed ones (all, unless a sample), or whose
    ids differ where both sides summed them (``Fingerprint.ids``)."""
    out = []
    s_ids, t_ids = snapshot.ids, target.ids
    for b in range(BUCKETS):
        compared = hashed is None or b in hashed
        if (snapshot.counts[b] != target.counts[b] or (compared and (snapshot.sums[b] - target.sums[b]) % MODULUS)
                or (s_ids is not None and t_ids is not None and (s_ids[b] - t_ids[b]) % MODULUS)):
            out.append(b)
    return out


Docs = dict[str, tuple[str | None, bytes]]


def compare_documents(index: str, snapshot: Docs, target: Docs, *, limit: int = 100) -> list[DocumentDifference]:
    """The differing documents of one target index (restricted to some buckets), sorted by kind and id; a
    "content differs" carries a short JSON diff for the first one only (the others say how to see theirs)."""
    out: list[DocumentDifference] = []
    example = True
    for doc_id in sorted(snapshot.keys() | target.keys()):
        if len(out) >= limit:
            break
        if doc_id not in target:
            out.append(DocumentDifference(index, doc_id, "missing"))
        elif doc_id not in snapshot:
            out.append(DocumentDifference(index, doc_id, "extra"))
        else:
            (s_routing, s_source), (t_routing, t_source) = snapshot[doc_id], target[doc_id]
            if document_hash(doc_id, s_routing, s_source) == document_hash(doc_id, t_routing, t_source):
                continue
            diff = None
            if example:
                diff = json_diff(orjson.loads(s_source), orjson.loads(t_source))
                if s_routing != t_routing:
                    diff.insert(0, f"_routing: {s_routing!r} -> {t_routing!r}")
                example = False
            out.append(DocumentDifference(index, doc_id, "content differs", diff))
    order = {"missing": 0, "extra": 1, "content differs": 2}
    return sorted(out, key=lambda d: (order[d.kind], d.id))


def _short(value: Any) -> str:
    text = orjson.dumps(value).decode()
    return text if len(text) <= 60 else text[:57] + "..."


def json_diff(before: Any, after: Any, path: str = "") -> list[str]:
    """Where two JSON values differ, as ``path: before -> after`` lines (at most a few)."""
    lines: list[str] = []
    _walk(before, after, path, lines)
    if len(lines) > _MAX_DIFF_LINES:
        return [*lines[:_MAX_DIFF_LINES], f"... and {len(lines) - _MAX_DIFF_LINES} more"]
    return lines


def _walk(before: Any, after: Any, path: str, lines: list[str]) -> None:
    if isinstance(before, dict) and isinstance(after, dict):
        for key in sorted(before.keys() | after.keys()):
            sub = f"{path}.{key}" if path else str(key)
            if key not in after:
                lines.append(f"{sub}: {_short(before[key])} -> (absent)")
            elif key not in before:
                lines.append(f"{sub}: (absent) -> {_short(after[key])}")
            else:
                _walk(before[key], after[key], sub, lines)
    elif isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        for i, (b, a) in enumerate(zip(before, after, strict=True)):
            _walk(b, a, f"{path}[{i}]", lines)
    elif before != after or type(before) is not type(after):
        lines.append(f"{path or '(root)'}: {_short(before)} -> {_short(after)}")
