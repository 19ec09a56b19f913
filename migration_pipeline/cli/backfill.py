"""``console backfill``: run the backfill worker for one shard (the same worker Dagster runs per partition), and
show the progress the workers recorded on the target."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated

import typer
from opensearchpy.exceptions import ConnectionError as ClientConnectionError
from opensearchpy.exceptions import TransportError
from rich.markup import escape
from rich.table import Table

from migration_pipeline.cli.common import debug_enabled, err, handle_errors, out, print_json
from migration_pipeline.cli.targets import ConfigOption, resolve
from workers.common.cluster_info import ClusterUnreachableError
from workers.common.connection_check import connection_reason
from workers.rfs.options import DEFAULT_COORDINATION_INDEX
from workers.rfs.status import BackfillStatus, ShardState, ShardStatus, read_status

app = typer.Typer(help="Document backfill from a snapshot (Reindex-from-Snapshot).", no_args_is_help=True)


@app.command(
    "run-shard",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
    add_help_option=False,
)
def run_shard(ctx: typer.Context) -> None:
    """Backfill a shard (--shard N) or several (N,M | N-M | all): --snapshot-repo URI --snapshot NAME --index NAME
    --shard N --target-endpoint URL [...].

    Every option of ``python -m workers.rfs`` is accepted; ``console backfill run-shard --help`` lists them.
    """
    from workers.rfs.__main__ import run

    args = list(ctx.args)
    if debug_enabled() and "--debug" not in args:
        args.append("--debug")
    raise typer.Exit(run(args))


@app.command("status")
@handle_errors
def status(
    snapshot: Annotated[str | None, typer.Option("--snapshot", help="Only this snapshot's shards.")] = None,
    coordination_index: Annotated[str | None, typer.Option(
        "--coordination-index",
        help=f"Index on the target holding the shards' state (default: the workflow config's "
             f"backfill.coordination_index, else {DEFAULT_COORDINATION_INDEX}).")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
    config: ConfigOption = None,
) -> None:
    """Per shard: status (completed, in-progress, lease-expired), documents written, checkpoint, lease owner."""
    clusters = resolve(config, lambda m: err.print(f"[dim]note:[/] {escape(m)}", highlight=False))
    index = coordination_index or (clusters.config.backfill.coordination_index if clusters.config
                                   else DEFAULT_COORDINATION_INDEX)
    endpoint = clusters.connection("target").endpoint
    try:
        result = read_status(clusters.client("target", max_retries=2), index, snapshot)
    except ClientConnectionError as exc:
        raise ClusterUnreachableError(f"cannot connect to target cluster {endpoint}: {connection_reason(exc)}") \
            from None
    except TransportError as exc:
        raise ClusterUnreachableError(f"target cluster {endpoint} answered {exc.status_code} reading {index}: "
                                      f"{exc.error}") from None
    if json_output:
        print_json({"coordination_index": index, "target": endpoint, "snapshot": snapshot, "exists": result.exists,
                    "shards": [{**asdict(s), "updated": _iso(s.updated_ms)} for s in result.shards],
                    "totals": result.totals()})
        return
    if not result.exists:
        out.print(f"coordination index {index} does not exist on the target {endpoint} yet: "
                  "no backfill worker has started", highlight=False)
        return
    if not result.shards:
        which = f"of snapshot {snapshot} " if snapshot else ""
        out.print(f"no shards {which}are recorded in {index} on {endpoint}", highlight=False)
        return
    _print_table(result, endpoint)


def _print_table(result: BackfillStatus, endpoint: str) -> None:
    table = Table(title=f"backfill shards ({result.coordination_index} on {endpoint})")
    for col in ("snapshot", "index", "shard", "status", "docs written", "checkpoint", "lease owner", "updated (UTC)"):
        table.add_column(col, justify="right" if col in ("shard", "docs written") else "left")
    for s in result.shards:
        table.add_row(escape(s.snapshot), escape(s.index), str(s.shard), _state(s), str(s.docs_written),
                      f"{s.checkpoint['segment']}#{s.checkpoint['doc']}" if s.checkpoint else "—",
                      escape(s.lease_owner or "—"), _iso(s.updated_ms) or "—")
    out.print(table)
    t = result.totals()
    out.print(f"{t['shards']} shards: {t[ShardState.COMPLETED]} completed, {t[ShardState.IN_PROGRESS]} in progress, "
              f"{t[ShardState.LEASE_EXPIRED]} lease expired; {t['docs_written']} documents "
              f"({t['bytes_written'] / 1e6:.1f} MB) written", highlight=False)


def _state(s: ShardStatus) -> str:
    colour = {ShardState.COMPLETED: "green", ShardState.IN_PROGRESS: "cyan"}.get(s.state, "yellow")
    return f"[{colour}]{s.state}[/]"


def _iso(ms: int | None) -> str | None:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if ms else None
