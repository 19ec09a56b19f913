"""``snapshot.repository.s3``: the role ARN's check, and configs without one keep their snapshot fingerprint."""

from __future__ import annotations

import pytest

from workers.common.errors import ConfigurationError
from workflow_model.store import parse

CONFIG = """
source: {endpoint: "http://source:9200"}
target: {endpoint: "http://target:9200"}
snapshot:
  create: snap
  repository: {location: "s3://bucket/prefix", s3: %s}
"""


@pytest.mark.parametrize("arn", ["arn:aws:iam::123456789012:role/Snapshots",
                                 "arn:aws-cn:iam::123456789012:role/service-role/snap.shots@x",
                                 "arn:aws-us-gov:iam::123456789012:role/a+b=c,d"])
def test_a_role_arn_is_taken(arn: str) -> None:
    assert parse(CONFIG % f"{{role_arn: '{arn}'}}", "t").snapshot.repository.s3.role_arn == arn


@pytest.mark.parametrize("arn", ["arn:aws:iam::1234:role/Snapshots", "arn:aws:iam::123456789012:user/me",
                                 "arn:aws:s3:::bucket", "Snapshots", "arn:aws:iam::123456789012:role/"])
def test_anything_else_is_an_error_naming_the_key(arn: str) -> None:
    with pytest.raises(ConfigurationError) as err:
        parse(CONFIG % f"{{role_arn: '{arn}'}}", "t")
    assert "snapshot.repository.s3.role_arn:" in str(err.value)
    assert "is not an IAM role ARN" in str(err.value) and "arn:aws:iam::<12-digit account>:role/NAME" in str(err.value)


def test_an_unset_role_arn_is_left_out_of_the_fingerprint() -> None:
    unset = parse(CONFIG % "{region: eu-west-1}", "t")
    assert unset.snapshot.model_dump(mode="json")["repository"]["s3"] == {"region": "eu-west-1", "endpoint": None}
    with_role = parse(CONFIG % "{region: eu-west-1, role_arn: 'arn:aws:iam::123456789012:role/S'}", "t")
    assert with_role.snapshot_fingerprint() != unset.snapshot_fingerprint()
