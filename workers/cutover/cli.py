"""``python -m workers.cutover cutover|backout|status``: the switch of client traffic between source and target.

Exit codes: 0 done; 3 the switch was aborted and every proxy is back on the side it was on, taking writes (the
message says why: a proxy not ready, a replayer group too far behind); 2 bad input (a flag, an unset token
variable); 1 anything else, in particular an undo that failed (the proxies' states are printed).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Annotated, Any

import typer

from workers.capture.kafka_sink import security_config
from workers.capture.options import KafkaOptions
from workers.common.errors import ConfigurationError, MigrationError
from workers.cutover.admin_client import ProxyAdmin
from workers.cutover.reverse import DEFAULT_REVERSE_GROUP, reverse_topic_of
from workers.cutover.sequence import CutoverAborted, Direction, switch_traffic
from workers.cutover.status import combined_status, status_lines
from workers.replay.options import DEFAULT_GROUP

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Cutover and back-out through the capture proxies' switch (docs/cutover.md).")

AdminUrls = Annotated[list[str], typer.Option("--admin-url", help="A proxy's admin URL (repeatable: every proxy, "
                                                                  "every worker process).")]
TokenEnv = Annotated[str, typer.Option("--token-env", help="Variable holding the admin bearer token.")]
Brokers = Annotated[str, typer.Option("--brokers", envvar="MIGRATION_KAFKA_BROKERS", help="Kafka bootstrap servers.")]
Topic = Annotated[str | None, typer.Option("--topic", help="The capture topic (default: what the proxies report).")]
ReverseTopic = Annotated[str | None, typer.Option("--reverse-topic", help="The reverse topic (default: what the "
                                                                         "proxies report, else TOPIC.reverse).")]
Group = Annotated[str, typer.Option("--group", help="The forward replayers' consumer group.")]
ReverseGroup = Annotated[str, typer.Option("--reverse-group", help="The reverse replayers' consumer group.")]
DrainTimeout = Annotated[float, typer.Option("--drain-timeout-s", help="Longest wait for the replayers while writes "
                                                                       "are held (below the proxies' max_hold_s).")]
MaxHold = Annotated[float | None, typer.Option("--max-hold-s", help="Sent with the pause (default: each proxy's "
                                                                    "own).")]
CaCert = Annotated[str | None, typer.Option("--ca-cert", help="PEM CA of the proxies' admin certificates.")]
Insecure = Annotated[bool, typer.Option("--insecure", help="Do not verify the admin certificates.")]
KafkaProtocol = Annotated[str, typer.Option("--kafka-security-protocol", help="PLAINTEXT, SSL, SASL_PLAINTEXT, "
                                                                              "SASL_SSL.")]
KafkaMechanism = Annotated[str | None, typer.Option("--kafka-sasl-mechanism")]
KafkaUser = Annotated[str | None, typer.Option("--kafka-sasl-username")]
KafkaPasswordEnv = Annotated[str | None, typer.Option("--kafka-sasl-password-env",
                                                      help="Variable holding the SASL password.")]
KafkaCa = Annotated[str | None, typer.Option("--kafka-ssl-ca")]
JsonOut = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]

DEFAULT_TOKEN_ENV = "PROXY_ADMIN_TOKEN"


def _proxies(urls: list[str], token_env: str, ca_cert: str | None, insecure: bool) -> list[ProxyAdmin]:
    if not urls:
        raise ConfigurationError("--admin-url is required (once per proxy admin endpoint)")
    token = os.environ.get(token_env, "")
    if not token:
        raise ConfigurationError(f"--token-env {token_env}: the variable is not set (it holds the admin token)")
    if ca_cert and insecure:
        raise ConfigurationError("--ca-cert and --insecure: choose one")
    verify: bool | str = ca_cert or not insecure
    return [ProxyAdmin(url, token, verify=verify) for url in urls]


def _kafka_config(brokers: str, protocol: str, mechanism: str | None, user: str | None, password_env: str | None,
                  ca: str | None) -> dict[str, Any]:
    if not brokers:
        raise ConfigurationError("--brokers (or MIGRATION_KAFKA_BROKERS) is required")
    options = KafkaOptions(brokers=brokers, topic="unused", security_protocol=protocol, sasl_mechanism=mechanism,
                           sasl_username=user, sasl_password_env=password_env, ssl_ca_file=ca)
    return {k: str(v) for k, v in security_config(options).items()}


def _run(direction: Direction, urls: list[str], token_env: str, brokers: str, topic: str | None, group: str,
         drain_timeout_s: float, max_hold_s: float | None, ca_cert: str | None, insecure: bool,
         kafka: tuple[str, str | None, str | None, str | None, str | None], json_output: bool) -> None:
    try:
        proxies = _proxies(urls, token_env, ca_cert, insecure)
        config = _kafka_config(brokers, *kafka)
        result = switch_traffic(direction, proxies, brokers=brokers, group=group, topic=topic, kafka_config=config,
                                drain_timeout_s=drain_timeout_s, max_hold_s=max_hold_s,
                                progress=lambda line: typer.echo(line, err=True))
    except CutoverAborted as exc:
        typer.echo(f"{direction} aborted at {exc}", err=True)
        if json_output:
            typer.echo(json.dumps({"aborted": exc.stage, "error": str(exc), "remaining": exc.remaining,
                                   "statuses": exc.statuses}, indent=2))
        raise typer.Exit(3) from None
    except MigrationError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None
    if json_output:
        typer.echo(json.dumps(result.to_dict(), indent=2))
    else:
        typer.echo(f"{direction} done: traffic goes to the {result.to_side}; writes held {result.hold_s:.2f}s "
                   f"(pause {result.pause_s:.2f}s, drain {result.drain_s:.2f}s, switch {result.switch_s:.2f}s)")


@app.command()
def cutover(admin_url: AdminUrls, brokers: Brokers = "", topic: Topic = None, group: Group = DEFAULT_GROUP,
            token_env: TokenEnv = DEFAULT_TOKEN_ENV, drain_timeout_s: DrainTimeout = 20.0, max_hold_s: MaxHold = None,
            ca_cert: CaCert = None, insecure: Insecure = False, kafka_security_protocol: KafkaProtocol = "PLAINTEXT",
            kafka_sasl_mechanism: KafkaMechanism = None, kafka_sasl_username: KafkaUser = None,
            kafka_sasl_password_env: KafkaPasswordEnv = None, kafka_ssl_ca: KafkaCa = None,
            json_output: JsonOut = False) -> None:
    """Source to target: hold writes, wait for the forward replayers (GROUP on TOPIC), switch, release."""
    _run("cutover", admin_url, token_env, brokers, topic, group, drain_timeout_s, max_hold_s, ca_cert, insecure,
         (kafka_security_protocol, kafka_sasl_mechanism, kafka_sasl_username, kafka_sasl_password_env, kafka_ssl_ca),
         json_output)


@app.command()
def backout(admin_url: AdminUrls, brokers: Brokers = "", reverse_topic: ReverseTopic = None,
            reverse_group: ReverseGroup = DEFAULT_REVERSE_GROUP, token_env: TokenEnv = DEFAULT_TOKEN_ENV,
            drain_timeout_s: DrainTimeout = 20.0, max_hold_s: MaxHold = None, ca_cert: CaCert = None,
            insecure: Insecure = False, kafka_security_protocol: KafkaProtocol = "PLAINTEXT",
            kafka_sasl_mechanism: KafkaMechanism = None, kafka_sasl_username: KafkaUser = None,
            kafka_sasl_password_env: KafkaPasswordEnv = None, kafka_ssl_ca: KafkaCa = None,
            json_output: JsonOut = False) -> None:
    """Target back to source: hold writes, wait for the reverse replayers (REVERSE_GROUP on REVERSE_TOPIC), switch
    back, release."""
    _run("backout", admin_url, token_env, brokers, reverse_topic, reverse_group, drain_timeout_s, max_hold_s,
         ca_cert, insecure,
         (kafka_security_protocol, kafka_sasl_mechanism, kafka_sasl_username, kafka_sasl_password_env, kafka_ssl_ca),
         json_output)


@app.command()
def status(admin_url: AdminUrls, brokers: Brokers = "", topic: Topic = None, reverse_topic: ReverseTopic = None,
           group: Group = DEFAULT_GROUP, reverse_group: ReverseGroup = DEFAULT_REVERSE_GROUP,
           token_env: TokenEnv = DEFAULT_TOKEN_ENV, ca_cert: CaCert = None, insecure: Insecure = False,
           kafka_security_protocol: KafkaProtocol = "PLAINTEXT", kafka_sasl_mechanism: KafkaMechanism = None,
           kafka_sasl_username: KafkaUser = None, kafka_sasl_password_env: KafkaPasswordEnv = None,
           kafka_ssl_ca: KafkaCa = None, json_output: JsonOut = False) -> None:
    """Which side each proxy sends traffic to, and how far the forward and reverse replayers are behind."""
    try:
        proxies = _proxies(admin_url, token_env, ca_cert, insecure)
        config = _kafka_config(brokers, kafka_security_protocol, kafka_sasl_mechanism, kafka_sasl_username,
                               kafka_sasl_password_env, kafka_ssl_ca) if brokers else None
        first = combined_status(proxies, brokers=None, groups={})
        reported = [p.get("topics") or {} for p in first["proxies"].values() if "error" not in p]
        forward_topic = topic or next((t["source"] for t in reported if t.get("source")), None)
        if forward_topic is None:
            raise ConfigurationError("--topic is needed: no proxy reported its topics")
        backward_topic = reverse_topic or next((t["target"] for t in reported if t.get("target")),
                                               reverse_topic_of(forward_topic))
        result = combined_status(proxies, brokers=brokers or None, kafka_config=config, groups={
            "forward": (forward_topic, group), "reverse": (backward_topic, reverse_group)})
    except MigrationError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None
    if json_output:
        typer.echo(json.dumps(result, indent=2))
    else:
        typer.echo("\n".join(status_lines(result)))
    if result["side"] in ("mixed", "unknown"):
        sys.exit(1)
