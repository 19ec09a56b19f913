"""``python -m workers.capture``: the capture proxy (the same command as ``migration proxy``)."""

from __future__ import annotations

from workers.capture.cli import app

if __name__ == "__main__":
    app()(prog_name="python -m workers.capture")
