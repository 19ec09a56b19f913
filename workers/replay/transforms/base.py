"""What a transform is, and the path helpers the built-in ones share."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Protocol

from workers.replay.messages import HttpRequest, path_of


class Transform(Protocol):
    """One step of the pipeline: a request in, the requests to send instead out (none drops it)."""

    # How errors and logs name the step.
    name: str

    def apply(self, req: HttpRequest) -> Sequence[HttpRequest]:
        """The requests that replace ``req`` (raising fails the whole captured request: nothing is sent)."""
        ...


def is_index(segment: str) -> bool:
    """Whether a path's first segment names indices (index names never start with ``_``; ``_all`` means all)."""
    return not segment.startswith("_") or segment == "_all"


def api_of(segments: Sequence[str]) -> str | None:
    """The endpoint a path calls: its first segment starting with ``_`` (``/a/_bulk`` and ``/_bulk``: ``_bulk``)."""
    for segment in segments:
        if segment.startswith("_"):
            return segment
    return None


def map_index_list(text: str, rename: Callable[[str], str]) -> str:
    """A comma-separated index expression with each name mapped; a ``-`` exclusion keeps its sign."""
    out = []
    for name in text.split(","):
        if name.startswith("-") and len(name) > 1:
            out.append("-" + rename(name[1:]))
        else:
            out.append(rename(name) if name else name)
    return ",".join(out)


def with_segments(req: HttpRequest, segments: Sequence[str]) -> HttpRequest:
    """``req`` with its path made of these segments (a trailing slash is kept)."""
    path = path_of(list(segments))
    if req.path.endswith("/") and segments:
        path += "/"
    return replace(req, path=path)
