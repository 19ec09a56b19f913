"""``migration replay`` (also ``python -m workers.replay``): one replayer process; every flag also from REPLAYER_*."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Annotated, Literal

import typer
from pydantic import ValidationError

from workers.capture.kafka_sink import security_config
from workers.capture.options import KafkaOptions
from workers.common.clusters import ClusterConnection, Tls, auth_from_flags, validation_message
from workers.common.errors import ConfigurationError, MigrationError
from workers.replay.options import DEFAULT_GROUP, ReplayOptions

ENV = "REPLAYER_"
_TYPE_MODES: dict[str, Literal["drop", "index-per-type", "restore"]] = {
    "drop": "drop", "index-per-type": "index-per-type", "restore": "restore"}


def _opt(help_text: str, env: str, *decls: str) -> typer.models.OptionInfo:
    return typer.Option(*decls, help=help_text, envvar=ENV + env)


def parse_time_ms(value: str) -> int:
    """Milliseconds since the epoch from an ISO 8601 time (UTC when no zone is given) or a number of ms."""
    if value.strip().isdigit():
        return int(value)
    try:
        parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigurationError(f"--from-timestamp {value!r}: expected ISO 8601 or milliseconds since the epoch") \
            from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return int(parsed.timestamp() * 1000)


def replay(
    kafka_brokers: Annotated[str, _opt("Kafka bootstrap servers, comma-separated.", "KAFKA_BROKERS")] = "",
    kafka_topic: Annotated[str, _opt("The capture topic.", "KAFKA_TOPIC")] = "capture-traffic",
    group_id: Annotated[str, _opt("Consumer group shared by the replayers of one migration.",
                                  "GROUP_ID")] = DEFAULT_GROUP,
    target_endpoint: Annotated[str, _opt("The target cluster: http(s)://host:port.", "TARGET_ENDPOINT")] = "",
    target_username: Annotated[str | None, _opt("Basic auth user for the target.", "TARGET_USERNAME")] = None,
    target_password_env: Annotated[str | None, _opt("Variable holding the target user's password.",
                                                    "TARGET_PASSWORD_ENV")] = None,
    target_aws_region: Annotated[str | None, _opt("Sign requests with SigV4 for this region.",
                                                  "TARGET_AWS_REGION")] = None,
    target_aws_service: Annotated[str, _opt("SigV4 service: es or aoss.", "TARGET_AWS_SERVICE")] = "es",
    target_client_cert: Annotated[str | None, _opt("PEM client certificate.", "TARGET_CLIENT_CERT")] = None,
    target_client_key: Annotated[str | None, _opt("Its PEM key.", "TARGET_CLIENT_KEY")] = None,
    target_ca_cert: Annotated[str | None, _opt("PEM CA for the target's certificate.", "TARGET_CA_CERT")] = None,
    target_insecure: Annotated[bool, _opt("Do not verify the target's TLS certificate.", "TARGET_INSECURE",
                                          "--target-insecure")] = False,
    target_timeout: Annotated[float, _opt("Seconds per request to the target.", "TARGET_TIMEOUT")] = 120.0,
    speedup_factor: Annotated[float, _opt("Replay this many times faster than captured.",
                                          "SPEEDUP_FACTOR")] = 1.0,
    max_speed: Annotated[bool, _opt("Ignore the captured timing (catch-up).", "MAX_SPEED", "--max-speed")] = False,
    from_timestamp: Annotated[str | None, _opt(
        "A group with no commits starts at the first record at or after this time (ISO 8601 or ms).",
        "FROM_TIMESTAMP")] = None,
    from_snapshot: Annotated[str | None, _opt(
        "REPOSITORY/SNAPSHOT: start at the snapshot's start time less --overlap-s (needs --source-endpoint).",
        "FROM_SNAPSHOT")] = None,
    source_endpoint: Annotated[str | None, _opt("The source, to read --from-snapshot's start time.",
                                                "SOURCE_ENDPOINT")] = None,
    overlap_s: Annotated[float, _opt("With --from-snapshot: seconds replayed before the snapshot's start.",
                                     "OVERLAP_S")] = 60.0,
    rename: Annotated[list[str] | None, _opt("Index rename rule OLD=NEW or regex:P=R (repeatable).",
                                             "RENAME")] = None,
    type_mode: Annotated[str, _opt("Elasticsearch <= 6 types: drop, index-per-type, or restore (the reverse "
                                   "replayer's: types put back for an Elasticsearch 5/6 source).",
                                   "TYPE_MODE")] = "drop",
    split_type: Annotated[list[str] | None, _opt("index-per-type: INDEX=TYPE,TYPE (repeatable).",
                                                 "SPLIT_TYPE")] = None,
    restore_type: Annotated[list[str] | None, _opt("restore: INDEX=TYPE, the source index's mapping type "
                                                   "(repeatable).", "RESTORE_TYPE")] = None,
    transform: Annotated[list[str] | None, _opt("User transform module:function (repeatable).", "TRANSFORM")] = None,
    gzip_target: Annotated[bool, _opt("Send request bodies gzip-compressed.", "GZIP_TARGET", "--gzip-target")] = False,
    tuples: Annotated[str | None, _opt("Write tuples here: a folder or s3://bucket/prefix.", "TUPLES")] = None,
    dead_letters: Annotated[str | None, _opt("Dead letters: a folder or s3://bucket/prefix.", "DEAD_LETTERS")] = None,
    s3_endpoint: Annotated[str | None, _opt("S3 endpoint for s3:// tuples and dead letters.", "S3_ENDPOINT")] = None,
    s3_region: Annotated[str | None, _opt("S3 region.", "S3_REGION")] = None,
    max_connections: Annotated[int, _opt("Connections to the target.", "MAX_CONNECTIONS")] = 64,
    max_retries: Annotated[int, _opt("Retries per request.", "MAX_RETRIES")] = 6,
    non_retryable: Annotated[list[str] | None, _opt("Bulk item error types never retried (repeatable; replaces "
                                                    "the defaults).", "NON_RETRYABLE")] = None,
    transaction_timeout_s: Annotated[float, _opt("Dead-letter a transaction unfinished after this long.",
                                                 "TRANSACTION_TIMEOUT_S")] = 60.0,
    commit_interval_s: Annotated[float, _opt("Seconds between offset commits (a cutover's drain waits for the next "
                                             "one: lower it to shorten the writes' hold).",
                                             "COMMIT_INTERVAL_S")] = 1.0,
    status_file: Annotated[str | None, _opt("Write this process's status here every second.", "STATUS_FILE")] = None,
    exit_when_idle_s: Annotated[float | None, _opt("Exit once caught up and idle this long.",
                                                   "EXIT_WHEN_IDLE_S")] = None,
    member: Annotated[str, _opt("This process's name (default: host-pid).", "MEMBER")] = "",
    kafka_security_protocol: Annotated[str, _opt("PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.",
                                                 "KAFKA_SECURITY_PROTOCOL")] = "PLAINTEXT",
    kafka_sasl_mechanism: Annotated[str | None, _opt("SASL mechanism.", "KAFKA_SASL_MECHANISM")] = None,
    kafka_sasl_username: Annotated[str | None, _opt("SASL user.", "KAFKA_SASL_USERNAME")] = None,
    kafka_sasl_password_env: Annotated[str | None, _opt("Variable holding the SASL password.",
                                                        "KAFKA_SASL_PASSWORD_ENV")] = None,
    kafka_ssl_ca: Annotated[str | None, _opt("PEM CA for the brokers.", "KAFKA_SSL_CA")] = None,
    log_level: Annotated[str, _opt("Log level.", "LOG_LEVEL")] = "info",
    json_output: Annotated[bool, typer.Option("--json", help="Print the final status as JSON.")] = False,
) -> None:
    """Replay captured traffic from Kafka onto the target (a member of the replayer group)."""
    logging.basicConfig(level=log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s", force=True)
    try:
        if not kafka_brokers:
            raise ConfigurationError("--kafka-brokers (or REPLAYER_KAFKA_BROKERS) is required")
        if not target_endpoint:
            raise ConfigurationError("--target-endpoint (or REPLAYER_TARGET_ENDPOINT) is required")
        if type_mode not in ("drop", "index-per-type", "restore"):
            raise ConfigurationError(f"--type-mode {type_mode!r}: expected drop, index-per-type or restore")
        if restore_type and type_mode != "restore":
            raise ConfigurationError("--restore-type needs --type-mode restore")
        if from_timestamp and from_snapshot:
            raise ConfigurationError("--from-timestamp and --from-snapshot: choose one")
        auth = auth_from_flags(username=target_username, password_env=target_password_env,
                               aws_region=target_aws_region, aws_service=target_aws_service,
                               client_cert=target_client_cert, client_key=target_client_key)
        target = ClusterConnection(endpoint=target_endpoint, auth=auth,
                                   tls=Tls(verify=not target_insecure, ca_file=target_ca_cert),
                                   timeout_s=target_timeout)
        start_ms: int | None = None
        if from_timestamp:
            start_ms = parse_time_ms(from_timestamp)
        elif from_snapshot:
            start_ms = _from_snapshot(from_snapshot, source_endpoint, overlap_s)
        kafka = KafkaOptions(brokers=kafka_brokers, topic=kafka_topic, security_protocol=kafka_security_protocol,
                             sasl_mechanism=kafka_sasl_mechanism, sasl_username=kafka_sasl_username,
                             sasl_password_env=kafka_sasl_password_env, ssl_ca_file=kafka_ssl_ca)
        options = ReplayOptions(
            brokers=kafka_brokers, topic=kafka_topic, group_id=group_id,
            kafka_config={k: str(v) for k, v in security_config(kafka).items()}, target=target,
            speedup_factor=speedup_factor, max_speed=max_speed, from_timestamp_ms=start_ms, rename=rename or [],
            type_mode=_TYPE_MODES[type_mode], split_types=parse_split_types(split_type or []),
            restore_types=parse_restore_types(restore_type or []), transforms=transform or [], tuples=tuples,
            gzip_target=gzip_target,
            dead_letters=dead_letters, s3_endpoint=s3_endpoint, s3_region=s3_region,
            max_connections=max_connections, max_retries=max_retries, non_retryable=non_retryable,
            transaction_timeout_s=transaction_timeout_s, commit_interval_s=commit_interval_s, status_file=status_file,
            exit_when_idle_s=exit_when_idle_s, member=member)
        from workers.replay.run import run_with_tuples

        final = run_with_tuples(options)
    except ValidationError as exc:
        typer.echo(f"error: {validation_message(exc, '')}", err=True)
        raise typer.Exit(2) from None
    except (ConfigurationError, MigrationError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if json_output:
        typer.echo(json.dumps(final, indent=2))
    else:
        stats = final["stats"]
        typer.echo(f"replayed {stats['transactions']} transactions ({stats['documents']} documents, "
                   f"{stats['dead_letters']} dead letters)")


def parse_restore_types(specs: list[str]) -> dict[str, str]:
    """``--restore-type INDEX=TYPE`` values as a map (one type per index: a multi-type index cannot be restored)."""
    types: dict[str, str] = {}
    for spec in specs:
        index, sep, type_name = (part.strip() for part in spec.partition("="))
        if not sep or not index or not type_name or "," in type_name:
            raise ConfigurationError(f"--restore-type {spec!r}: expected INDEX=TYPE (one type)")
        types[index] = type_name
    return types


def parse_split_types(specs: list[str]) -> dict[str, list[str]]:
    """``--split-type INDEX=TYPE,TYPE`` values as a map."""
    splits: dict[str, list[str]] = {}
    for spec in specs:
        index, sep, types = spec.partition("=")
        if not sep or not index or not types:
            raise ConfigurationError(f"--split-type {spec!r}: expected INDEX=TYPE,TYPE")
        splits[index] = [t for t in types.split(",") if t]
    return splits


def _from_snapshot(spec: str, source_endpoint: str | None, overlap_s: float) -> int:
    from workers.common.clusters import build_client
    from workers.replay.start_time import replay_start_ms, snapshot_start_ms

    repository, sep, snapshot = spec.partition("/")
    if not sep or not repository or not snapshot:
        raise ConfigurationError(f"--from-snapshot {spec!r}: expected REPOSITORY/SNAPSHOT")
    if not source_endpoint:
        raise ConfigurationError("--from-snapshot needs --source-endpoint (where the snapshot's start time is read)")
    client = build_client(ClusterConnection(endpoint=source_endpoint))
    return replay_start_ms(snapshot_start_ms(client, repository, snapshot), overlap_s)
