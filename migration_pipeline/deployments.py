"""The resources of each deployment, chosen by one setting (``$MIGRATION_DEPLOYMENT``).

- ``local`` (default): the workflow config is the active file in the project's Dagster home (or
  ``$MIGRATION_WORKFLOW_CONFIG``); the clusters are the ones it names; shard workers run as subprocesses (or as pods
  when the config's ``backfill.worker_mode`` says ``kubernetes``); S3 (``s3``) is the config's
  ``snapshot.repository.s3`` endpoint and region, with credentials from the AWS chain.
- ``sandbox``: as ``local``, and while no workflow config is loaded the clusters are the running local sandbox's
  (handy for looking at the sandbox in the UI before configuring anything), and so is S3: its moto server, with the
  sandbox's credentials whenever the endpoint is that server.
- ``kubernetes``: the workflow config is the file mounted from the Helm chart's ConfigMap
  (``$MIGRATION_WORKFLOW_CONFIG``, which must be set); nothing falls back to a local sandbox.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import dagster as dg

from resources import MigrationS3Resource, SearchClusterResource, ShardWorkerResource, WorkflowResource
from workers.common.clusters import ClusterConnection
from workers.common.errors import ConfigurationError
from workflow_model.config import S3Model
from workflow_model.store import CONFIG_ENV

if TYPE_CHECKING:
    from migration_pipeline.sandbox.s3 import S3Server

DEPLOYMENT_ENV = "MIGRATION_DEPLOYMENT"
DEFAULT_DEPLOYMENT = "local"


class SandboxClusterResource(SearchClusterResource):
    """The workflow config's cluster, or the running local sandbox's while no config is loaded."""

    def connection(self) -> ClusterConnection:
        """The config's cluster when there is a config, else the sandbox's."""
        if self.workflow.path().is_file():
            return super().connection()
        from migration_pipeline.sandbox import manager

        node = manager.running().engines.get(self.role)
        if node is None:
            raise ConfigurationError(f"no workflow config is loaded and the local sandbox has no {self.role} "
                                     "cluster running (workflow configure --load FILE, or migration sandbox up)")
        return ClusterConnection(endpoint=node.url)


class SandboxS3Resource(MigrationS3Resource):
    """The workflow config's S3 settings, or the running local sandbox's moto server while no config is loaded;
    the sandbox's credentials whenever the endpoint is that server (moto takes any, boto3 insists on some)."""

    def default_s3(self) -> S3Model | None:
        """The config's ``snapshot.repository.s3`` when there is a config, else the sandbox's moto server."""
        if self.workflow.path().is_file():
            return self.config_s3()
        server = _sandbox_s3()
        if server is None:
            raise ConfigurationError("no workflow config is loaded and the local sandbox has no S3 server running "
                                     "(workflow configure --load FILE, or migration sandbox up --s3)")
        from migration_pipeline.sandbox import s3 as sandbox_s3

        return S3Model(endpoint=server.endpoint, region=sandbox_s3.REGION)

    def client_settings(self, settings: S3Model | None = None) -> dict[str, Any]:
        """As the base resource's, with the sandbox's keys for its own server when the binding sets none."""
        fields = super().client_settings(settings)
        server = _sandbox_s3()
        if server is not None and fields["endpoint_url"] == server.endpoint and not fields["aws_access_key_id"]:
            from migration_pipeline.sandbox import s3 as sandbox_s3

            fields.update(aws_access_key_id=sandbox_s3.ACCESS_KEY, aws_secret_access_key=sandbox_s3.SECRET_KEY,
                          aws_session_token=None)
        return fields


def _sandbox_s3() -> S3Server | None:
    from migration_pipeline.sandbox import state

    server = state.load().s3
    return server if server is not None and server.alive() else None


def _clusters(workflow: WorkflowResource, cluster: type[SearchClusterResource],
              s3: type[MigrationS3Resource] = MigrationS3Resource) -> dict[str, dg.ConfigurableResource]:
    return {"workflow": workflow, "source": cluster(workflow=workflow, role="source"),
            "target": cluster(workflow=workflow, role="target"), "s3": s3(workflow=workflow)}


def _local() -> dict[str, dg.ConfigurableResource]:
    return {**_clusters(WorkflowResource(), SearchClusterResource), "shard_worker": ShardWorkerResource()}


def _sandbox() -> dict[str, dg.ConfigurableResource]:
    return {**_clusters(WorkflowResource(), SandboxClusterResource, SandboxS3Resource),
            "shard_worker": ShardWorkerResource()}


def _kubernetes() -> dict[str, dg.ConfigurableResource]:
    path = os.environ.get(CONFIG_ENV)
    if not path:
        raise ConfigurationError(f"{DEPLOYMENT_ENV}=kubernetes needs {CONFIG_ENV}: the path of the workflow file "
                                 "mounted from the chart's ConfigMap")
    return {**_clusters(WorkflowResource(config_path=path), SearchClusterResource),
            "shard_worker": ShardWorkerResource()}


RESOURCES_BY_DEPLOYMENT: dict[str, Callable[[], dict[str, dg.ConfigurableResource]]] = {
    "local": _local, "sandbox": _sandbox, "kubernetes": _kubernetes,
}


def deployment_name() -> str:
    """``$MIGRATION_DEPLOYMENT``, else ``local``; an error naming the variable for anything else."""
    name = os.environ.get(DEPLOYMENT_ENV, "").strip() or DEFAULT_DEPLOYMENT
    if name not in RESOURCES_BY_DEPLOYMENT:
        raise ConfigurationError(f"{DEPLOYMENT_ENV}={name!r}: expected one of {', '.join(RESOURCES_BY_DEPLOYMENT)}")
    return name


def resources_for(deployment: str) -> dict[str, dg.ConfigurableResource]:
    """The resources of ``deployment``."""
    if deployment not in RESOURCES_BY_DEPLOYMENT:
        raise ConfigurationError(f"unknown deployment {deployment!r}: expected one of "
                                 f"{', '.join(RESOURCES_BY_DEPLOYMENT)}")
    return RESOURCES_BY_DEPLOYMENT[deployment]()
