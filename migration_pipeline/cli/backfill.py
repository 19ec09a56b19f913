"""``console backfill``: run the backfill worker for one shard (the same worker Dagster runs per partition)."""

from __future__ import annotations

import typer

from migration_pipeline.cli.common import debug_enabled

app = typer.Typer(help="Document backfill from a snapshot (Reindex-from-Snapshot).", no_args_is_help=True)


@app.command(
    "run-shard",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []},
    add_help_option=False,
)
def run_shard(ctx: typer.Context) -> None:
    """Backfill one shard: --snapshot-repo URI --snapshot NAME --index NAME --shard N --target-endpoint URL [...].

    Every option of ``python -m workers.rfs`` is accepted; ``console backfill run-shard --help`` lists them.
    """
    from workers.rfs.__main__ import run

    args = list(ctx.args)
    if debug_enabled() and "--debug" not in args:
        args.append("--debug")
    raise typer.Exit(run(args))
