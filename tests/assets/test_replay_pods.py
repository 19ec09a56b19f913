"""``replay_catchup`` with ``backfill.worker_mode: kubernetes``: the replayer members run as pods on the sandbox's
real Kubernetes cluster (its node runs pods' commands as local processes), the target catches up, ``stop`` deletes
the pods."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import kubernetes
from opensearchpy import OpenSearch

from assets.replay import replay_catchup
from migration_pipeline.sandbox.kubernetes import launcher
from migration_pipeline.sandbox.state import SandboxState
from migration_pipeline.sandbox.workflow_file import sandbox_workflow
from resources.replayer import replayer_args, replayer_group
from resources.replayer_pods import GROUP_LABEL, PodReplayerGroup, group_label
from resources.workflow import WorkflowResource
from tests.conftest import unique
from tests.workers.capture.conftest import RunningProxy, create_topic, proxy_options
from tests.workers.replay.live import documents
from workflow_model.config import KubernetesWorkerModel


def _admin(state: SandboxState) -> Any:
    assert state.kubernetes is not None
    return kubernetes.client.CoreV1Api(launcher.admin_api(state.kubernetes))


def test_replayers_run_as_pods_until_caught_up_and_stop_deletes_them(kube_sandbox: SandboxState,
                                                                      tmp_path: Path) -> None:
    state = kube_sandbox
    assert state.kafka is not None and state.kubernetes is not None
    brokers, source, target = state.kafka.bootstrap, state.engines["source"].url, state.engines["target"].url
    topic, index = create_topic(brokers, partitions=2), unique("pod-replay")
    for url in (source, target):
        OpenSearch(hosts=[url]).indices.create(index=index, body={"settings": {"number_of_replicas": 0}})
    proxy = RunningProxy(proxy_options(source, brokers, topic))
    try:
        client = OpenSearch(hosts=[proxy.url])
        for i in range(30):
            client.index(index=index, id=str(i), body={"n": i})
        client.index(index=index, body={"auto": True})
    finally:
        proxy.stop()
    namespace = unique("replay")
    kubeconfig = launcher.prepare(state.kubernetes, namespace)
    group_id = f"g-{topic}"
    path = tmp_path / "workflow.yaml"
    path.write_text(sandbox_workflow(
        state, existing="none",
        replay={"enabled": True, "kafka_brokers": brokers, "topic": topic, "group_id": group_id, "replicas": 2,
                "lag_threshold": 0, "steady_s": 1, "tuples": str(tmp_path / "tuples"),
                "dead_letter": str(tmp_path / "letters")},
        backfill={"worker_mode": "kubernetes", "kubernetes": {
            "kubeconfig": str(kubeconfig), "namespace": namespace, "cpu": "100m", "memory": "256Mi",
            "service_account": launcher.WORKER_ACCOUNT}}))
    workflow = WorkflowResource(config_path=str(path))
    config = workflow.load()
    group = replayer_group(config, workflow)
    assert isinstance(group, PodReplayerGroup)
    api = _admin(state)
    selector = f"{GROUP_LABEL}={group_label(group_id)}"
    try:
        result = replay_catchup(dg.build_asset_context(), source_snapshot={"snapshot": "none", "start_time_ms": 0},
                                workflow=workflow)
        assert isinstance(result, dg.MaterializeResult)
        metadata = result.metadata or {}
        assert metadata["lag_records"] == dg.MetadataValue.int(0)
        assert metadata["replayers"] == dg.MetadataValue.int(2)
        assert metadata["dead_letters"] == dg.MetadataValue.int(0)
        assert documents(target, index) == documents(source, index)
        # The members are pods on the sandbox's node, still running after the catch-up (until the cutover).
        pods = api.list_namespaced_pod(namespace, label_selector=selector).items
        assert len(pods) == 2
        assert {p.spec.node_name for p in pods} == {state.kubernetes.node_name}
        assert all(p.status.phase == "Running" for p in pods)
        # Their counters came back through the status files on the hostPath-mounted state folder.
        replayed = metadata["documents"]
        assert isinstance(replayed, dg.IntMetadataValue) and (replayed.value or 0) >= 31
        names = {p.metadata.name for p in pods}
        assert {m.member.name for m in group.members()} == names and all(m.alive for m in group.members())
        # start again with the same flags: the same pods are kept.
        assert replay_catchup(dg.build_asset_context(), source_snapshot={"snapshot": "none", "start_time_ms": 0},
                              workflow=workflow) is not None
        again = api.list_namespaced_pod(namespace, label_selector=selector).items
        assert {p.metadata.name for p in again} == names
        # Other flags: the pods are replaced by new ones running them.
        args = [*replayer_args(config, {"start_time_ms": 0}, workflow), "--max-connections", "8"]
        assert len(group.start(2, args)) == 2
        replaced = api.list_namespaced_pod(namespace, label_selector=selector).items
        assert len(replaced) == 2 and not names & {p.metadata.name for p in replaced}
        assert all(p.status.phase == "Running" and "8" in p.spec.containers[0].args for p in replaced)
    finally:
        stopped = group.stop(timeout_s=30)
    assert sorted(s.outcome for s in stopped) == ["stopped", "stopped"]
    assert api.list_namespaced_pod(namespace, label_selector=selector).items == []


def test_without_mounted_local_paths_the_status_is_lag_only(tmp_path: Path) -> None:
    kube = KubernetesWorkerModel(mount_local_paths=False)
    group = PodReplayerGroup(kube, tmp_path / "g", "orders replay/1")
    assert not group.status_files_reach_pods
    pod = group._pod_manifest(["--kafka-brokers", "k:9092", "--tuples", str(tmp_path / "t"), "--rename", "a$=b"], [])
    container = pod["spec"]["containers"][0]
    assert "--status-file" not in container["args"] and "volumes" not in pod["spec"]
    assert container["args"][-2:] == ["--group-id", "orders replay/1"] and "a$$=b" in container["args"]
    assert pod["metadata"]["labels"][GROUP_LABEL] == group_label("orders replay/1") != "orders replay/1"
    assert pod["spec"]["restartPolicy"] == "Always" and pod["spec"]["automountServiceAccountToken"] is False
    mounted = PodReplayerGroup(KubernetesWorkerModel(), tmp_path / "g", "g1")._pod_manifest(
        ["--tuples", str(tmp_path / "t"), "--dead-letters", "s3://b/p"], [])
    paths = {m["mountPath"] for m in mounted["spec"]["containers"][0]["volumeMounts"]}
    assert paths == {str(tmp_path / "t"), str((tmp_path / "g").resolve())}
