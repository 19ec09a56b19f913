"""Dagster resources: the workflow config, the clusters it names, and the shard worker launcher."""

from resources.clusters import SearchClusterResource
from resources.shard_worker import ShardWorkerResource
from resources.workflow import WorkflowResource

__all__ = ["SearchClusterResource", "ShardWorkerResource", "WorkflowResource"]
