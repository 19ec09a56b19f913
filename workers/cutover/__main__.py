"""``python -m workers.cutover cutover|backout|status`` (see ``workers/cutover/cli.py``)."""

from workers.cutover.cli import app

if __name__ == "__main__":
    app()
