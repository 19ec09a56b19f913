"""The replayer member's pod spec: image, command, resources, secrets from Kubernetes, its name from the pod's."""

from __future__ import annotations

import json

import kubernetes.client
import pytest
from dagster_k8s.models import k8s_model_from_dict, k8s_snake_case_dict

from resources.replayer import REPLAYER_COMMAND, replayer_pod_spec
from workers.common.errors import ConfigurationError
from workflow_model.config import KubernetesWorkerModel

KUBE = KubernetesWorkerModel(image="registry/ma:1.2", cpu="1", memory="1Gi", secret="migration-secrets",
                             service_account="migrator")
ARGS = ["--kafka-brokers", "kafka:9092", "--target-endpoint", "https://t:9200", "--target-username", "u",
        "--target-password-env", "TARGET_PW", "--kafka-sasl-password-env=KAFKA_PW", "--max-speed"]


def test_a_member_pod_runs_the_replayer_with_secrets_from_the_kubernetes_secret() -> None:
    spec = replayer_pod_spec(KUBE, ARGS, ["AWS_SECRET_ACCESS_KEY"])
    # The API's own schema: a misspelt key fails here.
    pod = k8s_model_from_dict(kubernetes.client.V1PodSpec, k8s_snake_case_dict(kubernetes.client.V1PodSpec, spec))
    assert pod.restart_policy == "Always" and pod.service_account_name == "migrator"
    assert pod.termination_grace_period_seconds == 60
    [container] = pod.containers
    assert container.image == "registry/ma:1.2"
    assert container.command == REPLAYER_COMMAND == ["python", "-P", "-m", "workers.replay"]
    assert container.args == ARGS
    assert container.resources.requests == container.resources.limits == {"cpu": "1", "memory": "1Gi"}
    env = {e.name: e for e in container.env}
    assert sorted(env) == ["AWS_SECRET_ACCESS_KEY", "KAFKA_PW", "REPLAYER_MEMBER", "TARGET_PW"]
    for name in ("AWS_SECRET_ACCESS_KEY", "KAFKA_PW", "TARGET_PW"):
        ref = env[name].value_from.secret_key_ref
        assert env[name].value is None and (ref.name, ref.key) == ("migration-secrets", name)
    assert env["REPLAYER_MEMBER"].value_from.field_ref.field_path == "metadata.name"


def test_a_named_member_an_idle_exit_and_no_secret() -> None:
    kube = KubernetesWorkerModel()
    spec = replayer_pod_spec(kube, ["--member", "m1", "--exit-when-idle-s", "30"])
    assert spec["restartPolicy"] == "OnFailure" and "serviceAccountName" not in spec
    assert spec["containers"][0]["env"] == []
    json.dumps(spec)  # plain values only


def test_secrets_never_go_on_the_command_line() -> None:
    with pytest.raises(ConfigurationError, match="replayer pod: --target-password: pass a secret as an environment"):
        replayer_pod_spec(KUBE, ["--target-password", "hunter2"])
    with pytest.raises(ConfigurationError, match=r"TARGET_PW must come from a Kubernetes secret.*kubernetes\.secret"):
        replayer_pod_spec(KubernetesWorkerModel(), ["--target-password-env", "TARGET_PW"])
    with pytest.raises(ConfigurationError, match="--target-password-env needs the variable's name"):
        replayer_pod_spec(KUBE, ["--target-password-env"])
