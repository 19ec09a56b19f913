"""The source and target clusters as Dagster resources: the workflow config's, through its resource."""

from __future__ import annotations

from typing import Literal

import dagster as dg
from opensearchpy import OpenSearch
from pydantic import Field

from resources.workflow import WorkflowResource
from workers.common.clusters import ClusterConnection, build_client


class SearchClusterResource(dg.ConfigurableResource):
    """The workflow config's ``role`` cluster (its connection is the config's ``source`` or ``target`` section)."""

    workflow: WorkflowResource
    role: Literal["source", "target"] = Field(description="which of the workflow config's clusters")

    def connection(self) -> ClusterConnection:
        """The connection the workers take."""
        conn: ClusterConnection = getattr(self.workflow.load(), self.role).connection()
        return conn

    def get_client(self) -> OpenSearch:
        """An opensearch-py client with auth and TLS applied."""
        return build_client(self.connection())
