"""``migration``: the umbrella command (sandbox, demo, the capture proxy, the replayer)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from migration_pipeline.cli import sandbox
from migration_pipeline.cli.common import err, handle_errors, out, print_json, set_debug
from workers.capture.cli import proxy as capture_proxy
from workers.replay.cli import replay

REPO = Path(__file__).resolve().parents[2]

app = typer.Typer(help="Elasticsearch/OpenSearch migration assistant.", no_args_is_help=True, add_completion=False)
app.add_typer(sandbox.app, name="sandbox")
# The worker owns its options (every flag also from CAPTURE_PROXY_*), so both entry points stay identical.
app.command("proxy")(capture_proxy)
app.command("replay")(replay)


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
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Also print the details and the shard workers' "
                                          "log lines (always written to the demo's log files)")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    live: Annotated[bool, typer.Option("--live", help="The zero-downtime scenario: a client writes through the "
                                       "capture proxy all along; backfill, replay, validation, cutover, back-out, "
                                       "and a last comparison of both clusters (default scale 0.05)")] = False,
    kubernetes: Annotated[bool, typer.Option("--kubernetes", help="Every shard worker a pod on the sandbox's own "
                                             "Kubernetes cluster (built from source the first time, ~12 min)")
                          ] = False,
) -> None:
    """Run the main job on the embedded default: sandbox, data, then snapshot → metadata → backfill in Dagster."""
    from migration_pipeline import demo as demo_job
    from migration_pipeline.demo_view import DemoView
    from workflow_model.steps import Step

    if live and kubernetes:
        raise typer.BadParameter("--live and --kubernetes are separate demos: choose one")
    if live:
        _live_demo(scale if scale != 1.0 else 0.05, name, verbose, json_output)
        return

    report = demo_job.run(scale=scale, name=name, interactive=interactive, view=DemoView(err, verbose=verbose),
                          kubernetes=kubernetes)
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
    if report.pods:
        pods = Table(title=f"shard pods ({len(report.pods)})")
        for col in ("shard", "pod", "node"):
            pods.add_column(col)
        for pod in report.pods:
            pods.add_row(pod["partition"], pod["pod"], pod["node"])
        out.print(pods)
    total = sum(v for k, v in report.phases.items() if k in ("sandbox", "load", "workflow"))
    out.print(f"backfill: {report.backfill_docs:,} documents in {report.phases.get(Step.SHARD_BACKFILL, 0):.1f} s, "
              f"{report.backfill_docs_per_s:,.0f} docs/s (shard workers: {report.backfill_worker_seconds:.1f} s "
              f"in all); the whole demo: {total:.1f} s")
    out.print(f"logs: {report.log_file}; shard workers: {report.worker_logs}/")
    out.print(f"source {report.source_url}  target {report.target_url}")
    venv = Path(sys.executable).parent
    ui = report.dagster_url or "http://127.0.0.1:3000"
    out.print("next:")
    if not report.dagster_url:
        out.print(f"  the Dagster UI on these results: {venv}/migration ui   (then open {ui})")
    out.print(f"  the same in the terminal: {venv}/workflow status   or   {venv}/workflow manage\n"
              f"  stop the sandbox: {venv}/migration sandbox down")
    if not report.parity:
        failed = [p["name"] for p in report.status.get("phases", []) if p["state"] not in ("done",)]
        if failed:
            err.print(f"[red]not done:[/] {', '.join(failed)}")
        raise typer.Exit(1)


@app.command()
@handle_errors
def ui(port: Annotated[int, typer.Option(help="Port of the web UI on 127.0.0.1")] = 3000,
       host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1") -> None:
    """Start the Dagster UI (``dagster dev``: webserver and daemon) on the project's Dagster home."""
    from workflow_model.home import use_dagster_home

    home = use_dagster_home()
    err.print(f"Dagster home {home}; UI on http://{host}:{port} (Ctrl-C stops it)", highlight=False)
    dagster = Path(sys.executable).parent / "dagster"
    os.chdir(REPO)
    os.execv(str(dagster), [str(dagster), "dev", "-w", str(REPO / "workspace.yaml"), "-h", host, "-p", str(port)])


if __name__ == "__main__":
    app()


def _live_demo(scale: float, name: str | None, verbose: bool, json_output: bool) -> None:
    from migration_pipeline import demo_live
    from migration_pipeline.demo_view import DemoView

    report = demo_live.run(scale=scale, name=name, view=DemoView(err, verbose=verbose))
    if json_output:
        print_json(report.to_dict())
        raise typer.Exit(0 if report.agree else 1)
    table = Table(title="both clusters after the cutover and the back-out")
    for col in ("index", "source", "target", "contents"):
        table.add_column(col)
    for index, row in report.indices.items():
        same = row["source_digest"] == row["target_digest"] and row["source"] == row["target"]
        table.add_row(index, str(row["source"]), str(row["target"]), "[green]same[/]" if same else "[red]DIFFER[/]")
    out.print(table)
    lat = report.latency_ms
    out.print(f"client: {report.writes:,} writes acknowledged on {report.ids:,} ids, {len(report.client_errors)} "
              f"errors; write latency p50/p99 {lat.get('before_p50')}/{lat.get('before_p99')} ms before the "
              f"switches, {lat.get('switches_p50')}/{lat.get('switches_p99')} ms during them")
    for line in report.wrong_values[:10] + report.client_errors[:10]:
        out.print(f"  [red]{line}[/]", highlight=False)
    out.print(f"logs: {report.log_file}")
    if not report.agree:
        out.print("[red]the clusters do not agree[/]" + (f": {report.stopped}" if report.stopped else ""))
        raise typer.Exit(1)
    out.print("[green]source and target agree; every acknowledged write is on both[/]")
