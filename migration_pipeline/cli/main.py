"""``migration``: the umbrella command (sandbox, demo, the capture proxy; later the replayer)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from migration_pipeline.cli import sandbox
from migration_pipeline.cli.common import err, handle_errors, out, print_json, quiet_dagster_warnings, set_debug
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
    scale: Annotated[float, typer.Option(min=0.001, help="Multiply the data size (1: about 200k documents).")] = 1.0,
    name: Annotated[str | None, typer.Option(help="Sandbox name.")] = None,
    interactive: Annotated[bool, typer.Option("--interactive", help="Start the Dagster UI and let a person approve "
                                              "each gate there (default: the demo approves them itself)")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Run the main job on the embedded default: sandbox, data, then snapshot → metadata → backfill in Dagster."""
    from migration_pipeline import demo as demo_job

    quiet_dagster_warnings()
    report = demo_job.run(scale=scale, name=name, interactive=interactive,
                          say=lambda m: err.print(f"[dim]demo:[/] {m}", highlight=False))
    if json_output:
        print_json({**report.__dict__, "parity": report.parity})
        raise typer.Exit(0 if report.parity else 1)
    table = Table(title=f"migrated indices (snapshot {report.snapshot}, {report.shards} shards)")
    for col in ("index", "source", "target", "match"):
        table.add_column(col)
    for index in report.indices:
        src, tgt = report.source_counts.get(index), report.target_counts.get(index)
        table.add_row(index, str(src), str(tgt), "[green]yes[/]" if src is not None and src == tgt else "[red]NO[/]")
    out.print(table)
    phases = ", ".join(f"{k} {v:.1f}s" for k, v in report.phases.items())
    out.print(f"phases: {phases}")
    out.print(f"backfill: {report.backfill_docs} documents, {report.backfill_docs_per_s:.0f} docs/s")
    out.print(f"source {report.source_url}  target {report.target_url}")
    ui = report.dagster_url or "http://127.0.0.1:3000"
    if not report.dagster_url:
        out.print("Dagster UI on these results (asset group 'migration'):\n"
                  f"  DAGSTER_HOME={report.dagster_home} .venv/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000")
    out.print(f"  then open {ui}; `DAGSTER_HOME={report.dagster_home} .venv/bin/workflow status` shows the same.\n"
              "Stop the sandbox with: .venv/bin/migration sandbox down")
    if not report.parity:
        failed = [p["name"] for p in report.status.get("phases", []) if p["state"] not in ("done",)]
        if failed:
            err.print(f"[red]not done:[/] {', '.join(failed)}")
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
