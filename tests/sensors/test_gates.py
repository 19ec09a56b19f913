"""The auto-approval sensor against a real instance: a skipped gate is approved once per new evaluation."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from migration_pipeline.definitions import defs
from migration_pipeline.sandbox.state import SandboxState
from resources.workflow import WorkflowResource
from sensors.gates import GATES_INTERVAL_ENV, auto_approvals, gates_sensor_interval
from tests.migration_pipeline.workflow.helpers import build_migration
from workers.common.errors import ConfigurationError

QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def test_auto_approvals_requests_each_skipped_gate_once(sandbox: SandboxState, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    m = build_migration(sandbox, tmp_path, docs=20, skip_approvals=True)
    monkeypatch.setenv("DAGSTER_HOME", str(m.home))
    monkeypatch.delenv("MIGRATION_WORKFLOW_CONFIG", raising=False)
    resources = {"workflow": WorkflowResource(config_path=str(m.config))}

    def evaluate(instance: dg.DagsterInstance) -> dg.SensorResult | dg.SkipReason:
        with dg.build_sensor_context(instance=instance, resources=resources) as context:
            result = auto_approvals(context)
        assert isinstance(result, (dg.SensorResult, dg.SkipReason))
        return result

    with dg.DagsterInstance.from_config(str(m.home)) as instance:
        assert isinstance(evaluate(instance), dg.SkipReason)
        assert defs.resolve_job_def("prepare_migration").execute_in_process(instance=instance,
                                                                            run_config=QUIET).success
        result = evaluate(instance)
        assert isinstance(result, dg.SensorResult)
        [request] = result.run_requests or []
        evaluation = instance.fetch_materializations(dg.AssetKey("metadata_evaluation"), limit=1).records[0]
        assert request.job_name == "approve_metadata"
        assert request.run_key == f"metadata_approval:{evaluation.storage_id}"
        assert defs.resolve_job_def("approve_metadata").execute_in_process(
            instance=instance, run_config={**QUIET, **request.run_config}).success
        # Approved: nothing more is due until the evaluation changes.
        assert isinstance(evaluate(instance), dg.SkipReason)


def test_gates_sensor_interval_is_15_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(GATES_INTERVAL_ENV, raising=False)
    assert gates_sensor_interval() == 15
    monkeypatch.setenv(GATES_INTERVAL_ENV, "1")
    assert gates_sensor_interval() == 1
    for bad in ("0", "-3", "1.5", "soon"):
        monkeypatch.setenv(GATES_INTERVAL_ENV, bad)
        with pytest.raises(ConfigurationError, match=GATES_INTERVAL_ENV):
            gates_sensor_interval()
