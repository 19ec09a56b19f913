"""The pod a replayer member runs in on Kubernetes (a bare pod per member, no Deployment: the workflow decides how
many run, and ``stop`` is deleting them; each leaves the consumer group gracefully on SIGTERM)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from resources.workflow import WorkflowResource
from workers.common.clusters import BasicAuth, CertAuth, ClusterConnection, SigV4Auth
from workers.common.errors import ConfigurationError
from workers.replay.group import ReplayerGroup, password_env_names
from workers.replay.start_time import replay_start_ms
from workflow_model import WorkflowConfig
from workflow_model.config import KubernetesWorkerModel

if TYPE_CHECKING:
    from resources.replayer_pods import PodReplayerGroup

# -P: the image's working directory is not put on sys.path (as for the shard workers).
REPLAYER_COMMAND = ["python", "-P", "-m", "workers.replay"]
CONTAINER_NAME = "replayer"
# SIGTERM: a member finishes in-flight requests (up to revoke_grace_s), commits and leaves the group; a target
# slow to answer can hold that up, and a kill before the commit means those records are replayed again.
TERMINATION_GRACE_S = 60


def replayer_pod_spec(kube: KubernetesWorkerModel, args: Sequence[str], secret_envs: Sequence[str] = (),
                      *, termination_grace_s: int = TERMINATION_GRACE_S) -> dict[str, Any]:
    """The pod spec of one replayer member: ``python -P -m workers.replay`` with ``args`` in ``kube.image``.

    Variables named by ``--…-password-env`` flags in ``args`` (and ``secret_envs``) come from the Kubernetes secret
    ``kube.secret``, key for key. The member is named after its pod (``REPLAYER_MEMBER`` from the pod's name) unless
    ``args`` name it. A member that ends on its own (``--exit-when-idle-s``) is not restarted; others are, on any exit.
    """
    names = sorted({*password_env_names(list(args), "replayer pod"), *secret_envs})
    if names and not kube.secret:
        raise ConfigurationError(f"replayer pod: the variable(s) {', '.join(names)} must come from a Kubernetes "
                                 "secret, and the pod settings name none (kubernetes.secret)")
    flags = {a.partition("=")[0] for a in args}
    env: list[dict[str, Any]] = [{"name": name, "valueFrom": {"secretKeyRef": {"name": kube.secret, "key": name}}}
                                 for name in names]
    if "--member" not in flags:
        env.append({"name": "REPLAYER_MEMBER", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}})
    container: dict[str, Any] = {
        "name": CONTAINER_NAME, "image": kube.image, "command": list(REPLAYER_COMMAND), "args": list(args),
        "env": env,
        "resources": {"requests": {"cpu": kube.cpu, "memory": kube.memory},
                      "limits": {"cpu": kube.cpu, "memory": kube.memory}},
    }
    spec: dict[str, Any] = {
        "containers": [container],
        "restartPolicy": "OnFailure" if "--exit-when-idle-s" in flags else "Always",
        "terminationGracePeriodSeconds": termination_grace_s,
    }
    if kube.service_account:
        spec["serviceAccountName"] = kube.service_account
    return spec


def kafka_security(config: WorkflowConfig) -> dict[str, str]:
    """librdkafka's security settings for the capture topic (the SASL password read from its variable)."""
    from workers.capture.kafka_sink import security_config
    from workers.capture.options import KafkaOptions

    replay = config.replay
    options = KafkaOptions(brokers=replay.kafka_brokers or "-", topic=replay.topic,
                           security_protocol=replay.security_protocol, sasl_mechanism=replay.sasl_mechanism,
                           sasl_username=replay.sasl_username, sasl_password_env=replay.sasl_password_env,
                           ssl_ca_file=replay.ssl_ca_file)
    return {k: str(v) for k, v in security_config(options).items()}


def _location(value: str, local: Path) -> str | None:
    if value.lower() in ("off", "none", ""):
        return None
    return str(local) if value == "local" else value


def _cluster_args(cluster: ClusterConnection) -> list[str]:
    """The replayer's flags for the cluster it sends to (passwords as the names of their variables)."""
    args = ["--target-endpoint", cluster.endpoint, "--target-timeout", str(cluster.timeout_s)]
    auth = cluster.auth
    if isinstance(auth, BasicAuth):
        args += ["--target-username", auth.username, "--target-password-env", auth.password_env]
    elif isinstance(auth, SigV4Auth):
        args += ["--target-aws-region", auth.region, "--target-aws-service", auth.service]
    elif isinstance(auth, CertAuth):
        args += ["--target-client-cert", auth.cert_file] + (["--target-client-key", auth.key_file]
                                                             if auth.key_file else [])
    if cluster.tls.ca_file:
        args += ["--target-ca-cert", cluster.tls.ca_file]
    if not cluster.tls.verify:
        args.append("--target-insecure")
    return args


def _common_args(config: WorkflowConfig, workflow: WorkflowResource, group_id: str,
                 transforms: list[str]) -> list[str]:
    """Speed, user ``transforms``, tuples, dead letters and Kafka security: the same for both directions."""
    replay = config.replay
    args = ["--max-speed"] if replay.max_speed else ["--speedup-factor", str(replay.speedup_factor)]
    args += ["--commit-interval-s", str(replay.commit_interval_s)]
    for transform in transforms:
        args += ["--transform", transform]
    folder = workflow.replay_dir() / group_id
    tuples = _location(replay.tuples, folder / "tuples")
    if tuples:
        args += ["--tuples", tuples]
    letters = _location(replay.dead_letter, workflow.dead_letter_dir())
    if letters:
        args += ["--dead-letters", letters]
    s3 = config.snapshot.repository.s3
    if s3 is not None and s3.endpoint and any(v and v.startswith("s3://") for v in (tuples, letters)):
        args += ["--s3-endpoint", s3.endpoint] + (["--s3-region", s3.region] if s3.region else [])
    args += ["--kafka-security-protocol", replay.security_protocol]
    for flag, value in (("--kafka-sasl-mechanism", replay.sasl_mechanism),
                        ("--kafka-sasl-username", replay.sasl_username),
                        ("--kafka-sasl-password-env", replay.sasl_password_env),
                        ("--kafka-ssl-ca", replay.ssl_ca_file)):
        if value:
            args += [flag, value]
    return args


def replayer_args(config: WorkflowConfig, snapshot: dict[str, Any], workflow: WorkflowResource) -> list[str]:
    """The replayer's flags from the workflow config and the snapshot asset's value (no secret values: passwords
    travel as the names of the variables holding them)."""
    replay = config.replay
    # The group id is the group's own flag (ReplayerGroup sets it for every member).
    args = ["--kafka-brokers", replay.kafka_brokers, "--kafka-topic", replay.topic,
            *_cluster_args(config.target.connection()), "--type-mode", config.backfill_type_mode]
    started = snapshot.get("start_time_ms")
    if isinstance(started, int):
        args += ["--from-timestamp", str(replay_start_ms(started, replay.overlap_s))]
    for rule in config.metadata.rename:
        args += ["--rename", rule]
    return args + _common_args(config, workflow, replay.group_id, replay.transforms)


def reverse_replayer_args(config: WorkflowConfig, workflow: WorkflowResource,
                          restore_types: dict[str, str]) -> list[str]:
    """The reverse replayer's flags: the reverse topic from its beginning, sent to the source, the renames undone
    and, for an Elasticsearch 5/6 source, each index's mapping type put back. A regex rename cannot be undone (an
    error names it); the user transforms are the forward direction's and are not applied."""
    from workers.replay.transforms.renames import inverse_renames

    replay, cutover = config.replay, config.cutover
    if config.backfill_type_mode == "index-per-type":
        raise ConfigurationError("metadata.transformations.multi_type is split: writes to the split indices cannot "
                                 "be merged back into one typed source index, so a back-out would lose them")
    args = ["--kafka-brokers", replay.kafka_brokers, "--kafka-topic", cutover.reverse_topic_of(replay.topic),
            *_cluster_args(config.source.connection())]
    args += ["--type-mode", "restore"] if restore_types else ["--type-mode", "drop"]
    for index, mapping_type in sorted(restore_types.items()):
        args += ["--restore-type", f"{index}={mapping_type}"]
    for rule in inverse_renames(config.metadata.rename):
        args += ["--rename", rule]
    # The forward transforms rewrite source-bound traffic for the target: not for this direction.
    return args + _common_args(config, workflow, cutover.reverse_group_id, [])


def _pod_group(config: WorkflowConfig, workflow: WorkflowResource, group_id: str) -> PodReplayerGroup | None:
    """The group as pods when ``backfill.worker_mode`` is kubernetes (one setting for shard workers and replayers)."""
    if config.backfill.worker_mode != "kubernetes":
        return None
    from resources.replayer_pods import PodReplayerGroup

    return PodReplayerGroup(config.backfill.kubernetes, workflow.replay_dir() / group_id, group_id)


def reverse_replayer_group(config: WorkflowConfig,
                           workflow: WorkflowResource) -> ReplayerGroup | PodReplayerGroup:
    """The reverse replayer group (after a cutover it keeps the source current for a back-out): local processes,
    or pods with ``backfill.worker_mode: kubernetes``."""
    pods = _pod_group(config, workflow, config.cutover.reverse_group_id)
    if pods is not None:
        return pods
    return ReplayerGroup(workflow.replay_dir() / config.cutover.reverse_group_id, config.cutover.reverse_group_id)


def replayer_group(config: WorkflowConfig, workflow: WorkflowResource) -> ReplayerGroup | PodReplayerGroup:
    """The replayer group of the workflow: local processes (their records beside the Dagster instance), or pods
    with ``backfill.worker_mode: kubernetes`` (``resources/replayer_pods.py``)."""
    pods = _pod_group(config, workflow, config.replay.group_id)
    if pods is not None:
        return pods
    return ReplayerGroup(workflow.replay_dir() / config.replay.group_id, config.replay.group_id)
