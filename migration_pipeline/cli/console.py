"""``console``: operator tools for clusters, snapshots, metadata and backfill (filled in by later issues)."""

from __future__ import annotations

from typing import Annotated

import typer

from migration_pipeline.cli import backfill as backfill_cli
from migration_pipeline.cli import clusters as clusters_cli
from migration_pipeline.cli import kafka as kafka_cli
from migration_pipeline.cli import metadata as metadata_cli
from migration_pipeline.cli import replay as replay_cli
from migration_pipeline.cli import snapshot as snapshot_cli
from migration_pipeline.cli import tuples as tuples_cli
from migration_pipeline.cli import validate as validate_cli
from migration_pipeline.cli.common import set_debug

app = typer.Typer(help="Operator tools for the migration.", no_args_is_help=True, add_completion=False)
app.add_typer(clusters_cli.app, name="clusters")
app.add_typer(snapshot_cli.app, name="snapshot")
app.add_typer(metadata_cli.app, name="metadata")
app.add_typer(backfill_cli.app, name="backfill")
app.add_typer(kafka_cli.app, name="kafka")
app.add_typer(tuples_cli.app, name="tuples")
app.add_typer(replay_cli.app, name="replay")
app.command("validate")(validate_cli.validate)


@app.callback()
def main(debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False) -> None:
    """Operator tools for the migration."""
    set_debug(debug)


if __name__ == "__main__":
    app()
