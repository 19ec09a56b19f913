"""``console replay``: replayers on this machine, a group of processes sharing one Kafka consumer group.

Brokers and topic as for ``console kafka`` (``--brokers``/``--topic``, else ``$MIGRATION_KAFKA_BROKERS``/
``$MIGRATION_KAFKA_TOPIC``, else the running local sandbox's Kafka); the target: ``--target``, else
``$REPLAYER_TARGET_ENDPOINT``, else the running sandbox's target. A group's files (member records, status files,
logs) live beside the workflow's other files: ``$DAGSTER_HOME/migration/replay/<group>``.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from migration_pipeline.cli import kafka as kafka_cli
from migration_pipeline.cli.common import err, handle_errors, out, print_json
from migration_pipeline.sandbox import state as sandbox_state
from workers.capture.topic_admin import DEFAULT_TOPIC, TopicNotFoundError
from workers.common.errors import ConfigurationError
from workers.replay.group import Member, ReplayerGroup, Stopped, log_tail, proc_running
from workers.replay.options import DEFAULT_GROUP
from workers.replay.stats import read_status
from workflow_model import active_config_path

app = typer.Typer(help="Replayers on this machine: start, status, scale, stop.", no_args_is_help=True)

TARGET_ENV = "REPLAYER_TARGET_ENDPOINT"
# Set from this command's own options: given again after -- they would silently fight them.
_OWN = {"--kafka-brokers": "--brokers", "--kafka-topic": "--topic", "--target-endpoint": "--target"}

GroupOption = Annotated[str, typer.Option(
    "--group-id", envvar="REPLAYER_GROUP_ID", help="The replayers' Kafka consumer group (one per migration).")]
TargetOption = Annotated[str | None, typer.Option(
    "--target", envvar=TARGET_ENV, show_default=False,
    help=f"The target cluster http(s)://host:port (default: ${TARGET_ENV}, else the running sandbox's target).")]
TimeoutOption = Annotated[float, typer.Option(
    "--timeout", help="Seconds each member gets to finish its work after SIGTERM before it is killed.")]


def state_dir(group_id: str) -> Path:
    """Where group ``group_id`` keeps its files: under the workflow's folder (beside the active workflow file)."""
    return active_config_path().parent / "replay" / (re.sub(r"[^A-Za-z0-9_.-]", "_", group_id) or "_")


def _group(group_id: str) -> ReplayerGroup:
    return ReplayerGroup(state_dir(group_id), group_id)


def _say(message: str) -> None:
    err.print(f"[dim]note:[/] {escape(message)}", highlight=False)


def _sandbox_target() -> str:
    state = sandbox_state.load()
    node = state.engines.get("target")
    if node is None or not node.alive():
        raise ConfigurationError(f"no target: pass --target URL, set ${TARGET_ENV}, or start the local sandbox "
                                 f"(sandbox {state.name!r}) with: migration sandbox up --kafka")
    url = str(state.summary()["target"]["url"])
    _say(f"replaying onto the target of the local sandbox {state.name!r} at {url}")
    return url


def _replayer_args(brokers: str, topic: str, target: str, extra: list[str]) -> list[str]:
    for arg in extra:
        flag = arg.partition("=")[0]
        if flag in _OWN:
            raise ConfigurationError(f"{flag} after --: use console replay's {_OWN[flag]} instead")
    return ["--kafka-brokers", brokers, "--kafka-topic", topic, "--target-endpoint", target, *extra]


def _wait_for_first_status(members: list[Member], wait_s: float) -> list[Member]:
    """The members that died before writing their first status (a bad flag, an unreachable broker) within
    ``wait_s``; the others are running their loop."""
    deadline = time.monotonic() + wait_s
    pending = list(members)
    dead: list[Member] = []
    while pending and time.monotonic() < deadline:
        for member in list(pending):
            if read_status(member.status_file) is not None:
                pending.remove(member)
            elif not proc_running(member.pid, member.status_file):
                pending.remove(member)
                dead.append(member)
        if pending:
            time.sleep(0.1)
    return dead


def _members_table(title: str, members: list[Member]) -> Table:
    table = Table(title=title)
    for col in ("member", "pid", "log"):
        table.add_column(col)
    for m in members:
        table.add_row(escape(m.name), str(m.pid), escape(m.log))
    return table


@app.command("start")
@handle_errors
def start(
    replayer_args: Annotated[list[str] | None, typer.Argument(
        metavar="[-- REPLAYER FLAGS]", show_default=False,
        help="Flags for every replayer (python -m workers.replay --help), after --: e.g. -- --max-speed "
             "--from-timestamp 2025-01-31T12:00:00Z --dead-letters /data/letters")] = None,
    replicas: Annotated[int, typer.Option("--replicas", min=1, help="Members of the group to run.")] = 1,
    group_id: GroupOption = DEFAULT_GROUP,
    brokers: kafka_cli.BrokersOption = None,
    topic: kafka_cli.TopicOption = DEFAULT_TOPIC,
    target: TargetOption = None,
    wait: Annotated[float, typer.Option("--wait", help="Seconds to wait for new members to start replaying.")]
    = 15.0,
) -> None:
    """Start replayers (members of one consumer group) in the background; running members are kept.

    Secrets travel as environment variables named by the flags (--target-password-env NAME): set them in this shell.
    """
    where = kafka_cli.target(brokers, topic, None, None)
    args = _replayer_args(where.brokers, where.topic, target or _sandbox_target(), list(replayer_args or []))
    group = _group(group_id)
    before = {m.member.name for m in group.members() if m.alive}
    running = group.start(replicas, args)
    new = [m for m in running if m.name not in before]
    dead = _wait_for_first_status(new, wait)
    if new:
        out.print(_members_table(f"group {group_id}: started {len(new)} replayer(s)", new))
    if len(running) > len(new):
        out.print(f"{len(running) - len(new)} member(s) already running, kept", highlight=False)
    out.print(f"state folder: {group.state_dir}", highlight=False)
    if dead:
        for member in dead:
            err.print(f"[bold red]member {escape(member.name)} exited at once; the end of its log "
                      f"({escape(member.log)}):[/]", highlight=False)
            for line in log_tail(Path(member.log)):
                err.print(escape(line), highlight=False)
        raise typer.Exit(1)


@app.command("status")
@handle_errors
def status(
    group_id: GroupOption = DEFAULT_GROUP,
    brokers: kafka_cli.BrokersOption = None,
    topic: kafka_cli.TopicOption = DEFAULT_TOPIC,
    kafka_property: kafka_cli.PropertyOption = None,
    kafka_sasl_password_env: kafka_cli.PasswordEnvOption = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """The group's members (alive, counters) and its lag on the topic, per partition and in total."""
    where = kafka_cli.target(brokers, topic, kafka_property, kafka_sasl_password_env)
    group = _group(group_id)
    try:
        report = group.status(where.brokers, where.topic, where.config)
    except TopicNotFoundError as exc:
        raise ConfigurationError(f"--topic {where.topic!r}: {exc}") from None
    if json_output:
        print_json(report)
        return
    _print_status(group, report)


def _print_status(group: ReplayerGroup, report: dict[str, Any]) -> None:
    members = Table(title=f"replayer group {group.group_id} ({group.state_dir})")
    for col in ("member", "pid", "alive", "transactions", "documents/s", "dead letters", "status age"):
        members.add_column(col, justify="left" if col in ("member", "alive") else "right")
    for m in report["members"]:
        stats = (m["status"] or {}).get("stats") or {}
        age = m["status_age_s"]
        members.add_row(escape(m["name"]), str(m["pid"]), "[green]yes[/]" if m["alive"] else "[red]no[/]",
                        str(stats.get("transactions", "—")), str(stats.get("documents_per_s", "—")),
                        str(stats.get("dead_letters", "—")), "—" if age is None else f"{age:.0f} s")
    if report["members"]:
        out.print(members)
    else:
        out.print(f"no replayer of group {group.group_id} recorded in {group.state_dir}", highlight=False)
    for m in report["members"]:
        if not m["alive"] and m["log_tail"]:
            err.print(f"[red]member {escape(m['name'])} is not running; the end of its log ({escape(m['log'])}):[/]",
                      highlight=False)
            for line in m["log_tail"]:
                err.print(escape(line), highlight=False)
    lag = report["lag"]
    partitions = Table(title=f"group {lag['group']} ({lag['state']}) on {lag['topic']}")
    for col in ("partition", "committed", "high", "lag", "time lag"):
        partitions.add_column(col, justify="right")
    for p in lag["partitions"]:
        partitions.add_row(str(p["partition"]), "—" if p["committed"] is None else str(p["committed"]),
                           str(p["high"]), str(p["lag"]), _seconds(p["time_lag_s"]))
    out.print(partitions)
    t = report["totals"]
    out.print(f"totals: {t['alive']}/{t['members']} members running, {t['transactions']} transactions, "
              f"{t['documents']} documents ({t['documents_per_s']} documents/s), {t['dead_letters']} dead letters; "
              f"lag {t['total_lag']} records, {_seconds(t['time_lag_s'])}", highlight=False)


def _seconds(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.1f} s"


def _print_stopped(stopped: list[Stopped]) -> None:
    if not stopped:
        out.print("no replayer was running", highlight=False)
    for s in stopped:
        stats = (s.final or {}).get("stats") or {}
        done = f" after {stats['transactions']} transactions" if "transactions" in stats else ""
        style = {"stopped": "green", "killed": "yellow", "had died": "red"}[s.outcome]
        out.print(f"member {escape(s.name)} (pid {s.pid}): [{style}]{s.outcome}[/]{done}", highlight=False)
        for line in s.log_tail if s.outcome == "had died" else []:
            err.print(escape(line), highlight=False)


@app.command("stop")
@handle_errors
def stop(group_id: GroupOption = DEFAULT_GROUP, timeout: TimeoutOption = 30.0,
         json_output: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False) -> None:
    """Stop every replayer of the group: each finishes its in-flight work, commits and leaves the group."""
    stopped = _group(group_id).stop(timeout)
    if json_output:
        print_json([s.to_dict() for s in stopped])
        return
    _print_stopped(stopped)


@app.command("scale")
@handle_errors
def scale(replicas: Annotated[int, typer.Argument(min=0, help="Members to run (0 stops them all).")],
          group_id: GroupOption = DEFAULT_GROUP, timeout: TimeoutOption = 30.0) -> None:
    """Run N replayers: start more with the group's flags, or stop the newest ones."""
    group = _group(group_id)
    running = group.scale(replicas, timeout_s=timeout)
    out.print(_members_table(f"group {group_id}: {len(running)} replayer(s) running", running))

