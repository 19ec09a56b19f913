"""The command line: `migration proxy` and `python -m workers.capture` take every flag from CAPTURE_PROXY_* too."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from migration_pipeline.cli.main import app
from workers.capture.cli import app as worker_app
from workers.capture.kafka_sink import producer_config
from workers.capture.options import KafkaOptions
from workers.common.errors import ConfigurationError


def test_every_flag_has_an_environment_variable() -> None:
    command = next(c for c in app.registered_commands if c.name == "proxy")
    assert command.callback is not None
    result = CliRunner().invoke(worker_app(), ["--help"], terminal_width=200, env={"COLUMNS": "200"})
    flags = set(re.findall(r"--[a-z][a-z0-9-]+", result.output)) - {"--help", "--no-no-capture"}
    envs = set(re.findall(r"CAPTURE_PROXY_[A-Z_]+", result.output))
    assert len(flags) >= 35
    assert {"CAPTURE_PROXY_" + f[2:].upper().replace("-", "_") for f in flags} <= envs


def test_errors_name_the_option_and_exit_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAPTURE_PROXY_DESTINATION", "ftp://source")
    monkeypatch.setenv("CAPTURE_PROXY_KAFKA_BROKERS", "127.0.0.1:1")
    result = CliRunner().invoke(app, ["proxy"])
    assert result.exit_code == 2
    result = CliRunner().invoke(app, ["proxy", "--destination", "http://127.0.0.1:1", "--kafka-property",
                                      "sasl.password=secret"])
    assert result.exit_code == 2


def test_sasl_password_is_read_from_the_named_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    options = KafkaOptions("b:9092", "t", security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
                           sasl_username="u", sasl_password_env="CAPTURE_TEST_PASSWORD")
    with pytest.raises(ConfigurationError, match="CAPTURE_TEST_PASSWORD"):
        producer_config(options, 1 << 20)
    monkeypatch.setenv("CAPTURE_TEST_PASSWORD", "s3cret")
    config = producer_config(options, 1 << 20)
    assert config["sasl.password"] == "s3cret" and config["acks"] == "all" and config["enable.idempotence"] is True


def test_durable_read_posts_reaches_the_options_from_flag_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import workers.capture.server as server

    seen: list[bool] = []
    monkeypatch.setattr(server, "main", lambda options: seen.append(options.durable_read_posts))
    base = ["proxy", "--destination", "http://127.0.0.1:1", "--no-capture"]
    assert CliRunner().invoke(app, base).exit_code == 0
    assert CliRunner().invoke(app, [*base, "--durable-read-posts"]).exit_code == 0
    monkeypatch.setenv("CAPTURE_PROXY_DURABLE_READ_POSTS", "1")
    assert CliRunner().invoke(app, base).exit_code == 0
    assert seen == [False, True, True]
