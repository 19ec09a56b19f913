"""``replay_catchup``: the workflow's replayer group started from the config, waited for until caught up."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from opensearchpy import OpenSearch

from assets.replay import replay_catchup
from migration_pipeline.sandbox.state import SandboxState
from migration_pipeline.sandbox.workflow_file import sandbox_workflow
from resources.replayer import replayer_args, replayer_group
from resources.workflow import WorkflowResource
from tests.conftest import unique
from tests.workers.capture.conftest import RunningProxy, create_topic, proxy_options
from tests.workers.replay.live import documents


def test_replay_off_is_a_no_op(sandbox: SandboxState, tmp_path: Path) -> None:
    path = tmp_path / "workflow.yaml"
    path.write_text(sandbox_workflow(sandbox, existing="none"))
    result = replay_catchup(dg.build_asset_context(), source_snapshot={},
                            workflow=WorkflowResource(config_path=str(path)))
    assert isinstance(result, dg.MaterializeResult)
    assert result.metadata == {"replay": dg.MetadataValue.text("off")}


def test_the_group_replays_until_caught_up_and_keeps_running(sandbox: SandboxState, tmp_path: Path) -> None:
    assert sandbox.kafka is not None
    brokers, target = sandbox.kafka.bootstrap, sandbox.engines["target"].url
    topic, index = create_topic(brokers, partitions=2), unique("asset-replay")
    for url in (sandbox.engines["source"].url, target):
        OpenSearch(hosts=[url]).indices.create(index=index, body={"settings": {"number_of_replicas": 0}})
    proxy = RunningProxy(proxy_options(sandbox.engines["source"].url, brokers, topic))
    try:
        client = OpenSearch(hosts=[proxy.url])
        for i in range(30):
            client.index(index=index, id=str(i), body={"n": i})
        client.index(index=index, body={"auto": True})
    finally:
        proxy.stop()
    path = tmp_path / "workflow.yaml"
    path.write_text(sandbox_workflow(sandbox, existing="none", replay={
        "enabled": True, "kafka_brokers": brokers, "topic": topic, "group_id": f"g-{topic}", "lag_threshold": 0,
        "steady_s": 1, "tuples": str(tmp_path / "tuples"), "dead_letter": str(tmp_path / "letters")}))
    workflow = WorkflowResource(config_path=str(path))
    config = workflow.load()
    snapshot = {"snapshot": "none", "start_time_ms": 0}
    assert "--from-timestamp" in replayer_args(config, snapshot, workflow)
    try:
        result = replay_catchup(dg.build_asset_context(), source_snapshot=snapshot, workflow=workflow)
        assert isinstance(result, dg.MaterializeResult)
        metadata = result.metadata or {}
        assert metadata["lag_records"] == dg.MetadataValue.int(0)
        assert metadata["dead_letters"] == dg.MetadataValue.int(0)
        assert "lag_plot" in metadata
        assert documents(target, index) == documents(sandbox.engines["source"].url, index)
        # The replayers keep running after the catch-up (until the cutover).
        assert all(m.alive for m in replayer_group(config, workflow).members())
    finally:
        replayer_group(config, workflow).stop(timeout_s=20)
