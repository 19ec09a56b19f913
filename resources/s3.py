"""S3 for the Dagster layer: one dagster-aws ``S3Resource`` (snapshot repositories, dead letters, tuples).

Configured once: each deployment binds it (``migration_pipeline/deployments.py``), and whatever region and endpoint
the binding leaves unset come from the workflow config's ``snapshot.repository.s3``, read at each use like every other
section of the config. Credentials come from the usual AWS chain (environment, profile, instance or pod role) unless
the binding sets them. The workers have their own S3 access (they run without Dagster); this is only for assets,
sensors and jobs.
"""

from __future__ import annotations

from typing import Any

from dagster_aws.s3 import S3Resource
from dagster_aws.s3.utils import construct_s3_client

from resources.workflow import WorkflowResource
from workflow_model.config import S3Model

# boto3 has no inline type hints and mypy-boto3-s3 is not a dependency: an S3 client is typed as Any.
S3Client = Any


class MigrationS3Resource(S3Resource):
    """dagster-aws's S3Resource whose unset region and endpoint are the workflow config's
    ``snapshot.repository.s3`` (while no config is loaded: the resource's own settings, else boto3's defaults).

    The section's ``role_arn`` is not assumed here: it is the role the *source cluster* (Amazon OpenSearch Service)
    assumes to write the snapshot, trusted by that service rather than by whoever runs the workflow.
    """

    workflow: WorkflowResource

    def config_s3(self) -> S3Model | None:
        """The workflow config's ``snapshot.repository.s3``; None while no config is loaded."""
        if not self.workflow.path().is_file():
            return None
        return self.workflow.load().snapshot.repository.s3

    def default_s3(self) -> S3Model | None:
        """Where the region and endpoint the binding leaves unset come from: the workflow config."""
        return self.config_s3()

    def client_settings(self, settings: S3Model | None = None) -> dict[str, Any]:
        """``construct_s3_client``'s arguments: the resource's fields, with the region and endpoint of ``settings``
        (another S3 section of the config, such as ``backfill.dead_letter_s3``) when given, else the resource's,
        else ``default_s3()``'s."""
        fields = _fields(self)
        if settings is not None:
            return {**fields, "region_name": settings.region, "endpoint_url": settings.endpoint}
        if not (fields["region_name"] and fields["endpoint_url"]):
            section = self.default_s3()
            if section is not None:
                fields["region_name"] = fields["region_name"] or section.region
                fields["endpoint_url"] = fields["endpoint_url"] or section.endpoint
        return fields

    def client(self, settings: S3Model | None = None) -> S3Client:
        """A boto3 S3 client (see ``client_settings``)."""
        return construct_s3_client(**self.client_settings(settings))

    def get_client(self) -> S3Client:
        """A boto3 S3 client for the workflow config's snapshot repository settings."""
        return self.client()


def _fields(resource: S3Resource) -> dict[str, Any]:
    names = ("max_attempts", "region_name", "endpoint_url", "use_unsigned_session", "profile_name", "use_ssl",
             "verify", "aws_access_key_id", "aws_secret_access_key", "aws_session_token")
    return {name: getattr(resource, name) for name in names}


def s3_client(s3: S3Resource, settings: S3Model | None = None) -> S3Client:
    """A boto3 S3 client from the deployment's ``s3`` resource, for assets. ``settings``: another S3 section of the
    workflow config (``backfill.dead_letter_s3``): its region and endpoint, with the resource's credentials."""
    if isinstance(s3, MigrationS3Resource):
        return s3.client(settings)
    if settings is None:
        return s3.get_client()
    return construct_s3_client(**{**_fields(s3), "region_name": settings.region, "endpoint_url": settings.endpoint})
