"""The shard worker's launch settings: its options as Pipes extras, and the pod it gets on Kubernetes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster_k8s.pipes import build_pod_body

from resources.shard_worker import WORKER_COMMAND, shard_pod_spec, worker_extras
from workers.common.errors import ConfigurationError
from workflow_model import WorkflowConfig
from workflow_model.store import parse, sample_text


def _config(**sections: dict[str, Any]) -> WorkflowConfig:
    doc = yaml.safe_load(sample_text())
    for key, value in sections.items():
        doc[key] = {**doc[key], **value}
    return parse(yaml.safe_dump(doc), "sample")


def test_extras_carry_options_and_the_password_variable_name_only() -> None:
    config = _config(target={"endpoint": "https://t:9200",
                             "auth": {"kind": "basic", "username": "u", "password_env": "TARGET_PW"}})
    snapshot = {"uri": "s3://b/p", "snapshot": "s1", "s3_endpoint": "http://127.0.0.1:9", "s3_region": "eu-west-1"}
    extras = worker_extras(config, snapshot, Path("/tmp/dl"))
    assert extras["target_password_env"] == "TARGET_PW" and extras["target_username"] == "u"
    assert extras["snapshot_repo"] == "s3://b/p" and extras["s3_endpoint"] == "http://127.0.0.1:9"
    assert extras["dead_letter"] == "/tmp/dl" and extras["max_connections"] == 10
    assert extras["fixed_concurrency"] is False and extras["no_gzip"] is False
    assert "password" not in {k for k in extras if k != "target_password_env" and "password" in k}
    # No dead_letter_s3: the worker's default (the repository's S3 settings) applies.
    assert "dead_letter_s3_endpoint" not in extras and "dead_letter_s3_region" not in extras
    own = worker_extras(_config(backfill={"dead_letter": "s3://dl/x",
                                          "dead_letter_s3": {"endpoint": "http://127.0.0.1:8", "region": "us-west-2"}}),
                        snapshot, Path("/tmp/dl"))
    assert own["dead_letter"] == "s3://dl/x" and own["dead_letter_s3_endpoint"] == "http://127.0.0.1:8"
    assert own["dead_letter_s3_region"] == "us-west-2"


@pytest.mark.parametrize(("multi_type", "type_mode"), [("union", "drop"), ("split", "index-per-type")])
def test_type_mode_follows_the_metadata_multi_type(multi_type: str, type_mode: str) -> None:
    config = _config(metadata={"transformations": {"multi_type": multi_type},
                               "rename": ["regex:logs-(.*)=archive-$1"]})
    extras = worker_extras(config, {"uri": "file:///r", "snapshot": "s1"}, Path("/tmp/dl"))
    assert extras["type_mode"] == type_mode and extras["rename"] == ["regex:logs-(.*)=archive-$1"]
    assert config.metadata.rename_rules.apply("logs-7") == "archive-7"
    # Said again, it agrees; said otherwise, the config is refused, naming both keys.
    assert _config(metadata={"transformations": {"multi_type": multi_type}},
                   backfill={"type_mode": type_mode}).backfill_type_mode == type_mode
    other = "drop" if type_mode == "index-per-type" else "index-per-type"
    with pytest.raises(ConfigurationError, match=r"backfill\.type_mode .* contradicts metadata\.transformations"):
        _config(metadata={"transformations": {"multi_type": multi_type}}, backfill={"type_mode": other})


def test_pod_spec_builds_a_never_restarting_pod_with_secrets_from_kubernetes() -> None:
    kube = _config(backfill={"kubernetes": {"secret": "migration-secrets", "service_account": "migrator"}}
                   ).backfill.kubernetes
    spec = shard_pod_spec(kube, ["TARGET_PW"])
    pod = build_pod_body("shard-logs-0", kube.image, WORKER_COMMAND, {}, {"labels": {"app": "rfs"}}, spec)
    assert pod.spec.restart_policy == "Never" and pod.spec.service_account_name == "migrator"
    [container] = pod.spec.containers
    assert container.image == kube.image and container.command == WORKER_COMMAND
    assert container.resources.limits == {"cpu": "2", "memory": "2Gi"}
    [env] = [e for e in container.env if e.name == "TARGET_PW"]
    assert env.value is None and env.value_from.secret_key_ref.name == "migration-secrets"
