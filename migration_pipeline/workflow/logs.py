"""Where the workflow keeps its log files: beside the active config, one file per shard worker."""

from __future__ import annotations

from pathlib import Path

from workers.common.shard_key import ShardKey
from workflow_model import active_config_path


def logs_dir() -> Path:
    """The folder of the workflow's log files (``$DAGSTER_HOME/migration/logs``)."""
    return active_config_path().parent / "logs"


def shard_logs_dir() -> Path:
    """The folder the in-process drivers give each shard worker for its log file."""
    return logs_dir() / "shards"


def shard_log_path(partition_key: str) -> Path:
    """The log file of the worker of shard ``index:shard`` under the in-process drivers."""
    return shard_logs_dir() / ShardKey.parse(partition_key).file_name()
