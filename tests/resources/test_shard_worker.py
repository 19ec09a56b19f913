"""The shard worker's launch settings: its options as Pipes extras, and the pod it gets on Kubernetes."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster_k8s.pipes import build_pod_body

from resources.kubernetes_pods import worker_pod_spec
from resources.shard_worker import WORKER_COMMAND, worker_request
from workers.common.clusters import BasicAuth
from workers.common.errors import ConfigurationError
from workers.rfs.__main__ import NOT_ON_COMMAND_LINE, build_parser, options_from
from workers.rfs.options import EXTRAS_KEY, BackfillOptions, ShardWorkerRequest
from workflow_model import WorkflowConfig
from workflow_model.store import parse, sample_text


def _config(**sections: dict[str, Any]) -> WorkflowConfig:
    doc = yaml.safe_load(sample_text())
    for key, value in sections.items():
        doc[key] = {**doc[key], **value}
    return parse(yaml.safe_dump(doc), "sample")


def test_extras_carry_one_request_with_the_password_variable_name_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TARGET_PW", "s3cr3t-value")
    config = _config(target={"endpoint": "https://t:9200",
                             "auth": {"kind": "basic", "username": "u", "password_env": "TARGET_PW"}})
    snapshot = {"uri": "s3://b/p", "snapshot": "s1", "s3_endpoint": "http://127.0.0.1:9", "s3_region": "eu-west-1"}
    extras = worker_request(config, snapshot, Path("/tmp/dl"), "logs", 3).to_extras()
    assert list(extras) == [EXTRAS_KEY]
    assert "s3cr3t-value" not in json.dumps(extras)
    # What the worker reads back is the same object, field for field.
    request = ShardWorkerRequest.from_extras(json.loads(json.dumps(extras)))
    assert request == worker_request(config, snapshot, Path("/tmp/dl"), "logs", 3)
    assert (request.index, request.shard) == ("logs", 3)
    assert request.options.target == config.target.connection()
    assert request.options.target.auth == BasicAuth(username="u", password_env="TARGET_PW")
    assert request.source.repo == "s3://b/p" and request.source.s3_endpoint == "http://127.0.0.1:9"
    assert request.options.dead_letter == "/tmp/dl" and request.options.max_connections == 10
    assert request.options.adaptive_concurrency and request.options.gzip
    # No dead_letter_s3: the repository's S3 settings apply to an s3:// store.
    assert request.options.dead_letter_s3_endpoint == "http://127.0.0.1:9"
    own_store = {"dead_letter": "s3://dl/x",
                 "dead_letter_s3": {"endpoint": "http://127.0.0.1:8", "region": "us-west-2"}}
    own = worker_request(_config(backfill=own_store), snapshot, Path("/tmp/dl"), "logs", 0)
    assert own.options.dead_letter == "s3://dl/x" and own.options.dead_letter_s3_endpoint == "http://127.0.0.1:8"
    assert own.options.dead_letter_s3_region == "us-west-2"


def test_a_misspelt_or_invalid_option_in_the_extras_is_refused_by_name() -> None:
    extras = worker_request(_config(), {"uri": "file:///r", "snapshot": "s1"}, Path("/tmp/dl"), "i", 0).to_extras()
    request, options = extras[EXTRAS_KEY], extras[EXTRAS_KEY]["options"]
    with pytest.raises(ConfigurationError, match=r"options\.max_conections"):
        ShardWorkerRequest.from_extras({EXTRAS_KEY: {**request, "options": {**options, "max_conections": 2}}})
    with pytest.raises(ConfigurationError, match=r"options\.rename: .*rename rule 'nope'"):
        ShardWorkerRequest.from_extras({EXTRAS_KEY: {**request, "options": {**options, "rename": ["nope"]}}})
    with pytest.raises(ConfigurationError, match="no 'shard_worker_request'"):
        ShardWorkerRequest.from_extras({"max_connections": 2})


def test_every_worker_option_is_on_the_command_line() -> None:
    """The flags are for people; each option of the request can be set by one (or is declared as not)."""
    argv = ["--snapshot-repo", "s3://b/p", "--snapshot", "s", "--index", "i", "--shard", "0",
            "--target-endpoint", "https://t:9200", "--target-username", "u", "--target-password-env", "PW",
            "--target-insecure", "--target-timeout", "5", "--max-connections", "3", "--fixed-concurrency",
            "--documents-per-bulk-request", "7", "--max-bulk-bytes", "4096", "--no-gzip", "--python-encoder",
            "--no-fingerprint", "--allowed-doc-exception-types", "a,b", "--transform", "m:f", "--rename", "a=b",
            "--type-mode", "index-per-type", "--dead-letter", "off", "--dead-letter-s3-endpoint", "http://e",
            "--dead-letter-s3-region", "r", "--coordination-index", "c", "--lease-seconds", "9", "--worker-id", "w",
            "--force", "--no-verify-checksums"]
    given = options_from(build_parser().parse_args(argv))
    default = options_from(build_parser().parse_args(argv[:10]))
    unchanged = {f.name for f in dataclasses.fields(BackfillOptions)
                 if getattr(given, f.name) == getattr(default, f.name) and f.name != "target"}
    assert unchanged == set(NOT_ON_COMMAND_LINE)
    assert given.target.auth == BasicAuth(username="u", password_env="PW") and not given.target.tls.verify


@pytest.mark.parametrize(("multi_type", "type_mode"), [("union", "drop"), ("split", "index-per-type")])
def test_type_mode_follows_the_metadata_multi_type(multi_type: str, type_mode: str) -> None:
    config = _config(metadata={"transformations": {"multi_type": multi_type},
                               "rename": ["regex:logs-(.*)=archive-$1"]})
    options = worker_request(config, {"uri": "file:///r", "snapshot": "s1"}, Path("/tmp/dl"), "i", 0).options
    assert options.type_mode == type_mode and options.rename.specs() == ["regex:logs-(.*)=archive-$1"]
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
    spec = worker_pod_spec(kube, ["TARGET_PW"])
    pod = build_pod_body("shard-logs-0", kube.image, WORKER_COMMAND, {}, {"labels": {"app": "rfs"}}, spec)
    assert pod.spec.restart_policy == "Never" and pod.spec.service_account_name == "migrator"
    [container] = pod.spec.containers
    assert container.image == kube.image and container.command == WORKER_COMMAND
    assert container.resources.limits == {"cpu": "2", "memory": "2Gi"}
    [env] = [e for e in container.env if e.name == "TARGET_PW"]
    assert env.value is None and env.value_from.secret_key_ref.name == "migration-secrets"


def test_pod_spec_mounts_the_local_paths_a_worker_is_given_unless_a_volume_holds_them(tmp_path: Path) -> None:
    kube = _config(backfill={"kubernetes": {"volumes": [
        {"name": "dead-letters", "mount_path": "/data/dl", "claim": "migration-dead-letters"}]}}).backfill.kubernetes
    spec = worker_pod_spec(kube, [], ["/snapshots/repo", "/data/dl/run-1"])
    mounts = {m["mountPath"]: m["name"] for m in spec["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert mounts == {"/data/dl": "dead-letters", "/snapshots/repo": "local-path-0"}
    assert volumes["local-path-0"]["hostPath"]["path"] == "/snapshots/repo"
    assert volumes["dead-letters"]["persistentVolumeClaim"]["claimName"] == "migration-dead-letters"
    assert spec["automountServiceAccountToken"] is False
    off = _config(backfill={"kubernetes": {"mount_local_paths": False}}).backfill.kubernetes
    assert "volumes" not in worker_pod_spec(off, [], ["/snapshots/repo"])
    with pytest.raises(ConfigurationError, match="exactly one of host_path or claim"):
        _config(backfill={"kubernetes": {"volumes": [{"name": "x", "mount_path": "/x"}]}})
