"""``console kafka``: the capture topic from outside: its partitions, a consumer group's lag, its records as text.

Brokers and topic: ``--brokers``/``--topic``, else ``$MIGRATION_KAFKA_BROKERS``/``$MIGRATION_KAFKA_TOPIC``, else the
running local sandbox's Kafka and the proxy's default topic. Nothing here commits an offset or joins a group.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from migration_pipeline.cli.common import err, handle_errors, out, print_json
from migration_pipeline.sandbox import state as sandbox_state
from workers.capture.display import DEFAULT_MAX_BODY, HttpDump, raw_line
from workers.capture.topic_admin import DEFAULT_GROUP, DEFAULT_TOPIC, TopicNotFoundError, consumer_lag, describe_topic
from workers.capture.topic_range import Selection, TopicRecord, read_range
from workers.common.errors import ConfigurationError

app = typer.Typer(help="The capture topic: partitions, consumer lag, records.", no_args_is_help=True)

BROKERS_ENV = "MIGRATION_KAFKA_BROKERS"
TOPIC_ENV = "MIGRATION_KAFKA_TOPIC"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

BrokersOption = Annotated[str | None, typer.Option(
    "--brokers", envvar=BROKERS_ENV, show_default=False,
    help=f"Kafka bootstrap servers HOST:PORT[,…] (default: ${BROKERS_ENV}, else the running sandbox's Kafka).")]
TopicOption = Annotated[str, typer.Option("--topic", envvar=TOPIC_ENV, help="The capture topic.")]
PropertyOption = Annotated[list[str] | None, typer.Option(
    "-X", "--kafka-property", show_default=False,
    help="librdkafka setting KEY=VALUE, repeatable (security.protocol=SASL_SSL, sasl.mechanism=PLAIN, "
         "sasl.username=…, ssl.ca.location=…).")]
PasswordEnvOption = Annotated[str | None, typer.Option(
    "--kafka-sasl-password-env", envvar="MIGRATION_KAFKA_SASL_PASSWORD_ENV", show_default=False,
    help="Name of the environment variable holding the SASL password.")]
TimeoutOption = Annotated[float, typer.Option("--timeout", help="Seconds to wait for Kafka's answers.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print as JSON.")]


@dataclass(frozen=True)
class Target:
    """Where the command reads: brokers, topic and extra librdkafka settings."""

    brokers: str
    topic: str
    config: dict[str, Any]


@contextmanager
def _topic_named(where: Target) -> Iterator[None]:
    """A missing topic is the --topic option's fault: say so, with where its value came from."""
    try:
        yield
    except TopicNotFoundError as exc:
        origin = f" (from ${TOPIC_ENV})" if os.environ.get(TOPIC_ENV) == where.topic else ""
        raise ConfigurationError(f"--topic {where.topic!r}{origin}: {exc}") from None


def _say(message: str) -> None:
    err.print(f"[dim]note:[/] {escape(message)}", highlight=False)


def target(brokers: str | None, topic: str, properties: list[str] | None, password_env: str | None) -> Target:
    """The brokers (option, variable, else the sandbox's), the topic and the settings; errors name the option."""
    if not topic:
        raise ConfigurationError(f"--topic is empty (and so is ${TOPIC_ENV})")
    return Target(brokers or _sandbox_brokers(), topic, _config(properties or [], password_env))


def _sandbox_brokers() -> str:
    state = sandbox_state.load()
    if state.kafka is None or not state.kafka.alive():
        raise ConfigurationError(f"no Kafka brokers: pass --brokers HOST:PORT, set ${BROKERS_ENV}, or start the "
                                 f"local sandbox's Kafka (sandbox {state.name!r}) with: migration sandbox up --kafka")
    _say(f"using the Kafka of the local sandbox {state.name!r} at {state.kafka.bootstrap}")
    return state.kafka.bootstrap


def _config(properties: list[str], password_env: str | None) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for spec in properties:
        key, sep, value = spec.partition("=")
        if not sep or not key.strip():
            raise ConfigurationError(f"--kafka-property {spec!r} must be KEY=VALUE")
        if "password" in key.lower() or "secret" in key.lower():
            # Command lines end up in shell histories and process lists.
            raise ConfigurationError(f"--kafka-property {key}: pass the password with --kafka-sasl-password-env")
        config[key.strip()] = value
    if password_env:
        password = os.environ.get(password_env)
        if password is None:
            raise ConfigurationError(f"--kafka-sasl-password-env: variable {password_env} is not set")
        config["sasl.password"] = password
    return config


@app.command("describe")
@handle_errors
def describe(brokers: BrokersOption = None, topic: TopicOption = DEFAULT_TOPIC, kafka_property: PropertyOption = None,
             kafka_sasl_password_env: PasswordEnvOption = None, timeout: TimeoutOption = 10.0,
             json_output: JsonOption = False) -> None:
    """The topic's partitions (leader, replicas, watermarks, records) and the consumer groups with offsets on it."""
    where = target(brokers, topic, kafka_property, kafka_sasl_password_env)
    with _topic_named(where):
        info = describe_topic(where.brokers, where.topic, where.config, timeout_s=timeout)
    if json_output:
        print_json(info.to_dict())
        return
    table = Table(title=f"topic {where.topic} on {where.brokers}: {info.records} records")
    for col in ("partition", "leader", "replicas", "in sync", "low", "high", "records"):
        table.add_column(col, justify="left" if col in ("replicas", "in sync") else "right")
    for p in info.partitions:
        table.add_row(str(p.partition), str(p.leader), _ids(p.replicas), _ids(p.isr), str(p.low), str(p.high),
                      str(p.records))
    out.print(table)
    if not info.groups:
        out.print("no consumer group has committed an offset on this topic", highlight=False)
        return
    groups = Table(title="consumer groups with committed offsets")
    for col in ("group", "state", "committed (partition:offset)", "lag"):
        groups.add_column(col, justify="right" if col == "lag" else "left")
    for g in info.groups:
        offsets = " ".join(f"{p}:{o}" for p, o in sorted(g.committed.items()))
        groups.add_row(escape(g.group), g.state, offsets, str(g.lag))
    out.print(groups)


def _ids(ids: tuple[int, ...]) -> str:
    return ",".join(map(str, ids))


@app.command("lag")
@handle_errors
def lag(group: Annotated[str, typer.Option("--group", help="The consumer group.")] = DEFAULT_GROUP,
        brokers: BrokersOption = None, topic: TopicOption = DEFAULT_TOPIC, kafka_property: PropertyOption = None,
        kafka_sasl_password_env: PasswordEnvOption = None, timeout: TimeoutOption = 10.0,
        json_output: JsonOption = False) -> None:
    """How far a consumer group (the replayer's by default) is behind, in records and in seconds.

    Per partition and in total; the time lag is between the Kafka timestamps of the next record the group reads and
    of the newest one.
    """
    where = target(brokers, topic, kafka_property, kafka_sasl_password_env)
    with _topic_named(where):
        result = consumer_lag(where.brokers, where.topic, group, where.config, timeout_s=timeout)
    if not result.committed_any:
        _say(f"group {group!r} has committed no offset on {where.topic}; its lag counts every record held")
    if json_output:
        print_json(result.to_dict())
        return
    table = Table(title=f"group {group} ({result.state}) on {where.topic} at {where.brokers}")
    for col in ("partition", "committed", "low", "high", "lag", "time lag"):
        table.add_column(col, justify="right")
    for p in result.partitions:
        table.add_row(str(p.partition), "—" if p.committed is None else str(p.committed), str(p.low), str(p.high),
                      str(p.lag), _seconds(p.time_lag_s))
    out.print(table)
    newest = max((p.newest_time_ms for p in result.partitions if p.newest_time_ms is not None), default=None)
    out.print(f"total lag: {result.total_lag} records, {_seconds(result.time_lag_s)}"
              + (f" (newest record written {_time_ms(newest)})" if newest is not None else ""), highlight=False)


def _time_ms(ms: int | None) -> str:
    if ms is None:
        return "—"
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _seconds(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.1f} s"


@app.command("dump")
@handle_errors
def dump(
    brokers: BrokersOption = None, topic: TopicOption = DEFAULT_TOPIC,
    mode: Annotated[str, typer.Option("--mode", help="raw: one line per record; http: transactions as HTTP.")]
    = "raw",
    partition: Annotated[int | None, typer.Option("--partition", help="Only this partition.")] = None,
    start_offset: Annotated[int | None, typer.Option("--start-offset", help="First offset read (each partition).")]
    = None,
    end_offset: Annotated[int | None, typer.Option("--end-offset", help="Stop before this offset (each partition).")]
    = None,
    start_time: Annotated[str | None, typer.Option("--start-time", help="First record at or after this ISO 8601 "
                                                                        "time (UTC unless it has a zone).")] = None,
    end_time: Annotated[str | None, typer.Option("--end-time", help="Stop before records at or after this ISO "
                                                                    "8601 time.")] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="At most N records (raw) or events (http).")] = None,
    max_body: Annotated[int, typer.Option("--max-body", help="Body characters shown (http).")] = DEFAULT_MAX_BODY,
    kafka_property: PropertyOption = None, kafka_sasl_password_env: PasswordEnvOption = None,
    timeout: TimeoutOption = 10.0,
) -> None:
    """The topic's records as text, partition by partition, read without a consumer group (nothing is committed).

    raw: partition, offset, kind, connection, seq, metadata JSON and payload size, tab-separated. http: each
    transaction as its request and response (bodies de-chunked, decompressed, shortened; credentials redacted);
    connections opened and closed and the proxy's own answers on one line each.
    """
    if mode not in ("raw", "http"):
        raise ConfigurationError(f"--mode must be raw or http, not {mode!r}")
    if limit is not None and limit < 1:
        raise ConfigurationError(f"--limit must be 1 or more, not {limit}")
    selection = Selection(partition, start_offset, end_offset, _time_option("--start-time", start_time),
                          _time_option("--end-time", end_time))
    where = target(brokers, topic, kafka_property, kafka_sasl_password_env)
    records = read_range(where.brokers, where.topic, selection, where.config, timeout_s=timeout)
    try:
        with _topic_named(where):
            if mode == "raw":
                _dump_raw(records, limit)
            else:
                _dump_http(records, limit, max_body)
    except BrokenPipeError:
        # `… | head`: the reader has seen enough. Later flushes of stdout (at exit) must not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(0) from None
    finally:
        records.close()


def _dump_raw(records: Iterable[TopicRecord], limit: int | None) -> None:
    for count, record in enumerate(records, 1):
        sys.stdout.write(raw_line(record) + "\n")
        if limit is not None and count >= limit:
            break
    sys.stdout.flush()


def _dump_http(records: Iterable[TopicRecord], limit: int | None, max_body: int) -> None:
    dumper, shown = HttpDump(max_body=max(0, max_body)), 0
    for record in records:
        for lines in dumper.feed(record):
            sys.stdout.write("\n".join(lines) + "\n")
            shown += 1
            if limit is not None and shown >= limit:
                sys.stdout.flush()
                return
    sys.stdout.flush()
    for note in dumper.summary():
        _say(note)


def _time_option(option: str, value: str | None) -> int | None:
    """An ISO 8601 time as milliseconds since the epoch (UTC when it has no zone)."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigurationError(f"{option} {value!r} is not an ISO 8601 time (e.g. 2025-01-31T12:00:00Z)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    # Integer arithmetic: a float of seconds can land a millisecond short of the record asked for.
    return (moment - _EPOCH) // timedelta(milliseconds=1)
