"""``migration``: the umbrella command (sandbox, demo; later the proxy and the replayer)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from migration_pipeline.cli import sandbox
from migration_pipeline.cli.common import err, handle_errors, out, print_json, set_debug

app = typer.Typer(help="Elasticsearch/OpenSearch migration assistant.", no_args_is_help=True, add_completion=False)
app.add_typer(sandbox.app, name="sandbox")


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
    """Run the main job on the embedded default: sandbox, data, snapshot, Dagster observations."""
    from migration_pipeline import demo as demo_job

    report = demo_job.run(scale=scale, name=name, say=lambda m: err.print(f"[dim]demo:[/] {m}"))
    if json_output:
        print_json(report.__dict__)
        return
    table = Table(title="source indices")
    for col in ("index", "documents", "in snapshot"):
        table.add_column(col)
    for index, count in report.source_counts.items():
        table.add_row(index, str(count), "yes" if index in report.snapshot_indices else "no")
    out.print(table)
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


if __name__ == "__main__":
    app()
