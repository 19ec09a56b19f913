"""``workflow``: configure, submit, follow and approve the migration in Dagster.

With ``--dagster-url`` (or ``$DAGSTER_URL``) the commands speak to that webserver's GraphQL API and its daemon runs
the phases; without, they run in this process against ``$DAGSTER_HOME``.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer

from migration_pipeline.cli.common import err, handle_errors, out, print_json, quiet_dagster_warnings, set_debug
from migration_pipeline.cli.workflow_views import follow_shard_log, print_markdown, shard_table, status_table
from migration_pipeline.workflow.driver import Driver, open_driver
from migration_pipeline.workflow.local import WorkflowError
from migration_pipeline.workflow.outputs import outputs_index, render_output
from migration_pipeline.workflow.phases import parse_gate, parse_phase, valid_names
from migration_pipeline.workflow.status import WorkflowStatus
from workers.common.errors import ConfigurationError
from workflow_model import active_config_path, load_active, load_file, save_active
from workflow_model.steps import GATE_NAMES, PHASES, Step
from workflow_model.store import parse, sample_text

app = typer.Typer(help="Drive the migration workflow in Dagster.", no_args_is_help=True, add_completion=False)
configure = typer.Typer(help="The workflow file: sample, load, view, edit.", invoke_without_command=True)
app.add_typer(configure, name="configure")

DagsterUrl = Annotated[str | None, typer.Option("--dagster-url", envvar="DAGSTER_URL",
                                                help="Dagster webserver (http://host:port); empty: in-process")]


@app.callback()
def main(debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False) -> None:
    """Drive the migration workflow in Dagster."""
    set_debug(debug)
    quiet_dagster_warnings()


@app.command()
def version() -> None:
    """Print the migration assistant's version."""
    from importlib.metadata import version as pkg_version

    out.print(pkg_version("migration-assistant"))


@configure.callback()
@handle_errors
def configure_main(ctx: typer.Context,
                   load: Annotated[Path | None, typer.Option("--load", help="Validate FILE and make it active")] = None
                   ) -> None:
    """Load a workflow file (``--load FILE``), or see the subcommands."""
    if load is not None:
        load_file(load)
        path = save_active(load.read_text())
        out.print(f"workflow config {load} is now active ({path})")
    elif ctx.invoked_subcommand is None:
        out.print(ctx.get_help())


@configure.command("sample")
@handle_errors
def configure_sample(
        load: Annotated[bool, typer.Option("--load", help="Make the sample the active config instead of printing it")
                        ] = False,
        force: Annotated[bool, typer.Option("--force", help="With --load: overwrite an edited active config")
                         ] = False) -> None:
    """Print a commented sample workflow file (every key with its default), or load it (``--load``)."""
    text = sample_text()
    if not load:
        typer.echo(text, nl=False)
        return
    path = active_config_path()
    if path.is_file() and path.read_text() != text and not force:
        raise ConfigurationError(f"the active config {path} differs from the sample (it was edited); "
                                 "`workflow configure sample --load --force` overwrites it")
    out.print(f"the sample is now the active workflow config ({save_active(text)}); "
              "edit it with `workflow configure edit`")


@configure.command("view")
@handle_errors
def configure_view(json_output: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Print the active workflow config (validated; secrets are never in it, only their variable names)."""
    config = load_active()
    if json_output:
        print_json(config.model_dump(mode="json"))
        return
    typer.echo(active_config_path().read_text(), nl=False)
    for problem in config.missing_secrets():
        err.print(f"[yellow]warning:[/] {problem}")


@configure.command("edit")
@handle_errors
def configure_edit() -> None:
    """Edit the active config in ``$EDITOR`` (the sample when none is active); saved only when it validates."""
    path = active_config_path()
    text = path.read_text() if path.is_file() else sample_text()
    editor = os.environ.get("EDITOR") or os.environ.get("VISUAL") or "vi"
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as tmp:
        tmp.write(text)
    try:
        while True:
            if subprocess.call([*editor.split(), tmp.name]) != 0:
                raise ConfigurationError(f"editor {editor!r} failed; nothing saved")
            new = Path(tmp.name).read_text()
            try:
                parse(new, "edited config")
            except ConfigurationError as exc:
                err.print(f"[red]{exc}[/]")
                if not typer.confirm("Edit again?", default=True):
                    raise ConfigurationError("not saved: the edited config does not validate") from None
                continue
            break
        out.print(f"saved {save_active(new)}")
    finally:
        Path(tmp.name).unlink(missing_ok=True)


def _say(message: str) -> None:
    err.print(f"[dim]workflow:[/] {message}", highlight=False)


def _print_status(status: WorkflowStatus) -> None:
    out.print(status_table(status, "migration workflow"))
    s = status.shards
    out.print(f"shards: {s.get('done', 0)} done, {s.get('failed', 0)} failed, {s.get('running', 0)} running, "
              f"{s.get('pending', 0)} pending; documents migrated: {status.documents}")
    if status.failed_shards:
        out.print(f"failed shards: {', '.join(status.failed_shards)} (retried on their own first; "
                  "`workflow submit` again runs them)")
        for key, error in status.shard_errors.items():
            out.print(f"  {key}: {error}", highlight=False, markup=False)
    for gate in status.pending_gates:
        out.print(f"[yellow]waiting for {gate}[/] (approval step): workflow approve step {gate} --by NAME")
        if status.gate_evidence.get(gate):
            out.print(f"  evidence: {status.gate_evidence[gate]}", highlight=False, markup=False)
    for gate in status.rejected_gates:
        out.print(f"[red]{gate} was rejected[/]: the workflow stops here")


def _wait(driver: Driver, poll_s: float = 2.0) -> WorkflowStatus:
    while True:
        status = driver.status()
        if status.finished and not status.running:
            return status
        if status.stopped:
            return status
        time.sleep(poll_s)


def _exit_for(status: WorkflowStatus) -> None:
    # A count mismatch first: the validation gate then fails too, but 3 says what is wrong.
    if status.parity and status.parity.get("mismatched"):
        raise typer.Exit(3)
    if status.rejected_gates or any(p.state == "failed" for p in status.phases):
        raise typer.Exit(1)


@app.command()
@handle_errors
def submit(dagster_url: DagsterUrl = None,
           wait: Annotated[bool, typer.Option("--wait", help="Return when the workflow finishes or stops")] = False,
           new_snapshot: Annotated[bool, typer.Option("--new-snapshot",
                                                      help="Take a new snapshot even if the recorded one is current")
                                   ] = False,
           json_output: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Start the workflow from the active config, or resume it: only what is left runs again.

    A new snapshot is taken when none is recorded, when the snapshot settings changed, or with --new-snapshot;
    otherwise failed or missing shards run again and the workflow goes on as far as the approvals allow.
    """
    driver = open_driver(dagster_url, _say)
    try:
        driver.submit(new_snapshot)
    except WorkflowError as exc:
        _say(str(exc))  # a phase failed: the status below says which, and the exit code is 1
    status = _wait(driver) if (wait and dagster_url) else driver.status()
    if json_output:
        print_json(status.to_dict())
    else:
        _print_status(status)
    if wait or not dagster_url:
        _exit_for(status)


@app.command()
@handle_errors
def status(dagster_url: DagsterUrl = None,
           live: Annotated[bool, typer.Option("--live", "--live-status", help="Refresh until interrupted")
                           ] = False,
           json_output: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Each phase's state, shards done/failed/running/pending, documents migrated, pending gates."""
    driver = open_driver(dagster_url, _say)
    if live:
        from rich.live import Live

        if not out.is_terminal:  # a pipe or a file: Live would print only at the end, so one table per refresh
            while True:
                out.print(status_table(driver.status(), f"migration workflow ({time.strftime('%H:%M:%S')})"))
                time.sleep(2)
        with Live(console=out, refresh_per_second=1) as view:
            while True:
                view.update(status_table(driver.status(), f"migration workflow ({time.strftime('%H:%M:%S')})"))
                time.sleep(2)
    current = driver.status()
    if json_output:
        print_json(current.to_dict())
    else:
        _print_status(current)


@app.command()
@handle_errors
def approve(steps: Annotated[list[str] | None, typer.Argument(
                metavar="[step] STEP...", help=f"the approval step as `workflow status` prints it: "
                     f"{', '.join(GATE_NAMES)}", show_default=False)] = None,
            by: Annotated[str | None, typer.Option("--by", help="Who approves (default: $USER)")] = None,
            ticket: Annotated[str | None, typer.Option("--ticket", help="Change ticket or reason")] = None,
            reject: Annotated[bool, typer.Option("--reject", help="Reject instead: the workflow stops")] = False,
            list_pending: Annotated[bool, typer.Option("--list", help="Show the gates waiting for a decision")] = False,
            dagster_url: DagsterUrl = None) -> None:
    """Approve (or reject) an approval step (a gate); the gated phase then starts.

    `workflow approve step backfill_approval --by NAME`; `workflow approve metadata_approval` works too.
    """
    names = list(steps or [])
    if names[:1] == ["step"]:
        names = names[1:]
        if not names and not list_pending:
            raise ConfigurationError(f"approve step: name the step ({', '.join(GATE_NAMES)})")
    gates = [parse_gate(name) for name in names]
    driver = open_driver(dagster_url, _say)
    if list_pending or not gates:
        pending = driver.status().pending_gates
        out.print("\n".join(pending) if pending else "no gate is waiting for a decision")
        return
    approver = by or os.environ.get("USER") or "unknown"
    for gate in gates:
        driver.approve(gate, approver, ticket, "reject" if reject else "approve")
    if not dagster_url:
        _print_status(driver.status())


@app.command()
@handle_errors
def cutover(by: Annotated[str | None, typer.Option("--by", help="Who approves (default: $USER)")] = None,
            ticket: Annotated[str | None, typer.Option("--ticket", help="Change ticket or reason")] = None,
            dagster_url: DagsterUrl = None) -> None:
    """Switch live traffic to the target: approves the cutover gate, and the cutover runs (docs/cutover.md).

    The same as `workflow approve step cutover_approval`. The proxies hold writes until the replayer has applied
    every captured one, then send all traffic to the target; a drain that takes too long aborts and leaves the
    traffic on the source.
    """
    driver = open_driver(dagster_url, _say)
    driver.approve(Step.CUTOVER_APPROVAL.value, by or os.environ.get("USER") or "unknown", ticket, "approve")
    if not dagster_url:
        _print_status(driver.status())
        _exit_for(driver.status())


@app.command()
@handle_errors
def backout(dagster_url: DagsterUrl = None) -> None:
    """Move live traffic back to the source: writes held until the reverse replayer has applied every write made on
    the target, then the proxies switch back (the `backout` job)."""
    from jobs import backout_job

    driver = open_driver(dagster_url, _say)
    try:
        driver.run_job(backout_job.name)
    except WorkflowError as exc:
        _say(str(exc))
        raise typer.Exit(1) from None
    if not dagster_url:
        _print_status(driver.status())


@app.command()
@handle_errors
def log(phase: Annotated[str | None, typer.Argument(
            help=f"all (default), or one phase: {valid_names()}", show_default=False)] = None,
        dagster_url: DagsterUrl = None,
        follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines")] = False,
        limit: Annotated[int, typer.Option(help="Lines of history to show")] = 50) -> None:
    """The workflow's event log (runs of every phase, or of one phase or shard), newest last."""
    ref = parse_phase(phase)
    driver = open_driver(dagster_url, _say)
    if ref is not None and ref.shard is not None:
        parse_phase(phase, [s.key for s in driver.shards()])
    seen: set[str] = set()
    while True:
        lines = driver.log_lines(limit) if ref is None else driver.phase_log_lines(ref, limit)
        for line_id, line in lines:
            if line_id not in seen:
                seen.add(line_id)
                out.print(line, highlight=False, markup=False)
        if not follow:
            return
        time.sleep(2)


@app.command()
@handle_errors
def output(phase: Annotated[str | None, typer.Argument(
               help=f"the phase whose output to show: {valid_names()}; none: the phases that have output",
               show_default=False)] = None,
           follow: Annotated[bool, typer.Option("--follow", "-f", help="A shard: keep printing its worker log "
                                                "until the shard's run ends")] = False,
           dagster_url: DagsterUrl = None,
           json_output: Annotated[bool, typer.Option("--json", help="The phase's metadata as JSON")] = False) -> None:
    """A phase's output as a person reads it: the evaluation report, the migrate result, a shard's worker log, ..."""
    ref = parse_phase(phase)
    driver = open_driver(dagster_url, _say)
    if ref is None:
        index = outputs_index({step.value: driver.phase_metadata(step.value) for step in PHASES
                               if step != Step.SHARD_BACKFILL}, driver.shards())
        out.print("\n".join(index) if index else "no phase has output yet (`workflow submit` starts the workflow)",
                  highlight=False, markup=False)
        return
    if ref.name == Step.SHARD_BACKFILL:
        shards = driver.shards()
        if ref.shard is None:
            if json_output:
                print_json([s.to_dict() for s in shards])
            else:
                out.print(shard_table(shards))
            return
        parse_phase(phase, [s.key for s in shards])
        if not follow_shard_log(driver, ref.shard, follow, _say):
            raise typer.Exit(1)
        return
    meta = driver.phase_metadata(ref.name)
    if json_output:
        print_json(meta)
        return
    text = render_output(ref.name, meta)
    if not text:
        state = driver.status().phase(ref.name).state
        err.print(f"{ref.name} has no output yet ({state})")
        raise typer.Exit(1)
    print_markdown(text)


@app.command()
@handle_errors
def manage(dagster_url: DagsterUrl = None,
           refresh_s: Annotated[float, typer.Option("--refresh", help="Seconds between refreshes")] = 2.0) -> None:
    """A terminal UI: phases, gates with their evidence (approve/reject in place), shards, and logs."""
    from migration_pipeline.tui.app import WorkflowApp

    WorkflowApp(lambda say: open_driver(dagster_url, say), refresh_s=refresh_s).run()


@app.command()
@handle_errors
def reset(dagster_url: DagsterUrl = None,
          yes: Annotated[bool, typer.Option("--yes", help="Do not ask")] = False,
          keep_target_state: Annotated[bool, typer.Option(
              "--keep-target-state", help="Forget only Dagster's records; leave the coordination records and the "
              "registered repository (a later submit of the same snapshot then skips shards recorded complete)")
          ] = False) -> None:
    """Forget the workflow's recorded phases and shard partitions, and remove its temporary state as the cleanup
    step does (coordination records, the repository it registered); the migrated data, snapshot and config stay."""
    if not yes and not typer.confirm("Forget every recorded phase of the workflow?", default=False):
        raise typer.Exit(1)
    summary = open_driver(dagster_url, _say).reset(clean_target=not keep_target_state)
    out.print(f"workflow reset ({summary}): `workflow submit` starts again")


if __name__ == "__main__":
    app()
