"""Dagster resources: the workflow config, the clusters it names, S3, and the shard worker launcher."""

from resources.clusters import SearchClusterResource
from resources.s3 import MigrationS3Resource, s3_client
from resources.shard_worker import ShardWorkerResource
from resources.workflow import WorkflowResource

__all__ = ["MigrationS3Resource", "SearchClusterResource", "ShardWorkerResource", "WorkflowResource", "s3_client"]
