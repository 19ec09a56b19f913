"""``python -m workers.replay``: one replayer process (see ``workers/replay/cli.py``)."""

import typer

from workers.replay.cli import replay

if __name__ == "__main__":
    typer.run(replay)
