"""Compressing request bodies towards the target (``gzip_target``).

Parsing already decoded a body the client sent gzip'd; this step asks for gzip on the way out. The sender
compresses (``workers.replay.parsing.wire_body``) and adds ``Content-Encoding: gzip`` (``wire_headers``).
"""

from __future__ import annotations

from dataclasses import replace

from workers.replay.messages import HttpRequest


class GzipTransform:
    """Marks every request with a body to be sent gzip'd."""

    name = "gzip"

    def apply(self, req: HttpRequest) -> list[HttpRequest]:
        """``req`` to be compressed when it has a body."""
        return [replace(req, gzip=True) if req.body and not req.gzip else req]
