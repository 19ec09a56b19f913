"""``console``: operator tools for clusters, snapshots, metadata and backfill (filled in by later issues)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from migration_pipeline.cli import backfill as backfill_cli
from migration_pipeline.cli import metadata as metadata_cli
from migration_pipeline.cli import snapshot as snapshot_cli
from migration_pipeline.cli.common import handle_errors, out, print_json, set_debug
from migration_pipeline.sandbox import manager
from workers.common.cluster_info import observe
from workers.common.clusters import ClusterConnection, build_client

app = typer.Typer(help="Operator tools for the migration.", no_args_is_help=True, add_completion=False)
clusters = typer.Typer(help="Look at the source and target clusters.", no_args_is_help=True)
app.add_typer(clusters, name="clusters")
app.add_typer(snapshot_cli.app, name="snapshot")
app.add_typer(metadata_cli.app, name="metadata")
app.add_typer(backfill_cli.app, name="backfill")


@app.callback()
def main(debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False) -> None:
    """Operator tools for the migration."""
    set_debug(debug)


@clusters.command("sandbox-info")
@handle_errors
def sandbox_info(json_output: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Version and per-index document counts of the running sandbox's source and target."""
    state = manager.running()
    result: dict[str, dict[str, Any]] = {}
    for role, node in state.engines.items():
        obs = observe(build_client(ClusterConnection(node.url)), node.url)
        result[role] = {"url": node.url, "engine": obs.engine, "version": obs.version, "health": obs.health,
                        "indices": obs.indices}
    if json_output:
        print_json(result)
    else:
        for role, info in result.items():
            out.print(f"[bold]{role}[/] {info['engine']} {info['version']} {info['url']} ({info['health']})")
            for index, count in info["indices"].items():
                out.print(f"  {index}: {count}")


if __name__ == "__main__":
    app()
