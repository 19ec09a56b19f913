"""``migration``: the umbrella command (sandbox, demo, the capture proxy; later the replayer)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from migration_pipeline.cli import sandbox
from migration_pipeline.cli.common import err, handle_errors, out, print_json, set_debug
from workers.capture.cli import proxy as capture_proxy

app = typer.Typer(help="Elasticsearch/OpenSearch migration assistant.", no_args_is_help=True, add_completion=False)
app.add_typer(sandbox.app, name="sandbox")
# The worker owns its options (every flag also from CAPTURE_PROXY_*), so both entry points stay identical.
app.command("proxy")(capture_proxy)


@app.callback()
def main(debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False) -> None:
    """Elasticsearch/OpenSearch migration assistant."""
    set_debug(debug)


@app.command()
@handle_errors
def demo(
    scale: Annotated[float, typer.Option(min=0.001, help="Multiply the demo data size.")] = 1.0,
    name: Annotated[str | None, typer.Option(help="Sandbox name.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Run the main job on the embedded default: sandbox, data, snapshot, metadata, backfill, parity table."""
    from migration_pipeline import demo as demo_job

    report = demo_job.run(scale=scale, name=name, say=lambda m: err.print(f"[dim]demo:[/] {m}"))
    if json_output:
        print_json({**report.__dict__, "parity": report.parity})
        raise typer.Exit(0 if report.parity else 1)
    table = Table(title="migrated indices")
    for col in ("index", "source", "target", "match"):
        table.add_column(col)
    for index in report.snapshot_indices:
        src, tgt = report.source_counts.get(index), report.target_counts.get(index)
        table.add_row(index, str(src), str(tgt), "[green]yes[/]" if src == tgt else "[red]NO[/]")
    out.print(table)
    out.print(f"backfill: {report.backfill_docs} documents written, {report.dead_letters} dead letters")
    phases = ", ".join(f"{k} {v:.1f}s" for k, v in report.phases.items())
    out.print(f"phases: {phases}")
    out.print(f"snapshot {report.snapshot} ({report.snapshot_shards} shards) in {report.repo_dir}")
    out.print(f"source {report.source_url}  target {report.target_url}")
    out.print(
        "Dagster UI on these results:\n"
        f"  DAGSTER_HOME={report.dagster_home} .venv/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000\n"
        "  then open http://127.0.0.1:3000 (asset group 'migration').\n"
        "Stop the sandbox with: .venv/bin/migration sandbox down"
    )
    if not report.parity:
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
