"""The Dagster instance the in-process drivers (``workflow`` without ``--dagster-url``, the demo) run against."""

from __future__ import annotations

import dagster as dg

# Not exported at the top level; the only way to open the home's instance with one setting changed.
from dagster._core.instance.ref import InstanceRef

from workflow_model.home import use_dagster_home

# In-process runs share this process's stdout/stderr with the CLI. Dagster's compute-log capture swaps file
# descriptors 1 and 2 for each run (process-wide, so two shard runs on threads would trade each other's streams)
# and mirrors them back through `tail` processes; the CLI prints its own progress, and each shard worker writes
# its log file (migration_pipeline.workflow.logs), so capture is off here. `dagster dev` on the same home keeps it.
_NO_CAPTURE = {"compute_logs": {"module": "dagster._core.storage.noop_compute_log_manager",
                                "class": "NoOpComputeLogManager", "config": {}}}


def open_local_instance() -> dg.DagsterInstance:
    """The persistent instance in the project's Dagster home (set as ``$DAGSTER_HOME``), without log capture."""
    home = use_dagster_home()
    instance = dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home), overrides=_NO_CAPTURE))
    if not runs_configure_logging(instance):
        # Dagster applies `python_logs.dagster_handler_config` with logging.config.dictConfig when each run starts,
        # even when there is none: that call takes logging's module lock and then every handler's lock, while a
        # run on another thread holds its handler's lock and asks for the module lock (a deadlock seen with two
        # shard runs). With nothing configured there is nothing to apply.
        setattr(instance, "get_yaml_python_handlers", list)  # noqa: B010 (a method replaced on this one object)
    return instance


def runs_configure_logging(instance: dg.DagsterInstance) -> bool:
    """True when the instance has Python log handlers of its own (``python_logs.dagster_handler_config``): runs
    then reconfigure logging as they start and must not start on two threads at once."""
    return bool(instance.get_python_log_dagster_handler_config())
