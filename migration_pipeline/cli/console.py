"""``console``: operator tools for clusters, snapshots, metadata and backfill (filled in by later issues)."""

from __future__ import annotations

from typing import Annotated

import typer

from migration_pipeline.cli import backfill as backfill_cli
from migration_pipeline.cli import clusters as clusters_cli
from migration_pipeline.cli import metadata as metadata_cli
from migration_pipeline.cli import snapshot as snapshot_cli
from migration_pipeline.cli.common import set_debug

app = typer.Typer(help="Operator tools for the migration.", no_args_is_help=True, add_completion=False)
app.add_typer(clusters_cli.app, name="clusters")
app.add_typer(snapshot_cli.app, name="snapshot")
app.add_typer(metadata_cli.app, name="metadata")
app.add_typer(backfill_cli.app, name="backfill")


@app.callback()
def main(debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False) -> None:
    """Operator tools for the migration."""
    set_debug(debug)


if __name__ == "__main__":
    app()
