"""The metadata CLI's --config file: the workflow file's sections as they are, and the older keys as aliases."""

from __future__ import annotations

from pathlib import Path

import pytest

from migration_pipeline.cli.metadata_config import MetadataFile, load_metadata_file
from workers.common.clusters import CertAuth, ClusterConnection, Tls
from workers.common.errors import ConfigurationError


def _load(tmp_path: Path, text: str) -> MetadataFile:
    path = tmp_path / "metadata.yaml"
    path.write_text(text)
    return load_metadata_file(path)


def test_workflow_sections_are_read_as_the_one_cluster_model(tmp_path: Path) -> None:
    file = _load(tmp_path, """
source: {endpoint: 'https://s:9200/', auth: {kind: cert, cert_file: /c.pem, key_file: /k.pem}, tls: {ca_file: /ca.pem}}
target: {endpoint: 'http://t:9200', timeout_s: 5}
metadata: {index_allowlist: [a], transformations: {replicas: 0, multi_type: split}}
""")
    assert file.source == ClusterConnection(endpoint="https://s:9200", tls=Tls(ca_file="/ca.pem"),
                                            auth=CertAuth(cert_file="/c.pem", key_file="/k.pem"))
    assert file.target == ClusterConnection(endpoint="http://t:9200", timeout_s=5)
    transformations = file.metadata.transformations
    assert (transformations.replicas, transformations.multi_type) == (0, "split")


def test_older_keys_are_aliases(tmp_path: Path) -> None:
    file = _load(tmp_path, """
target: {endpoint: 'https://t:9200', verify_certs: false, ca_certs: /ca.pem}
metadata: {replicas: 2, multi_type: split, allow_existing: true}
""")
    assert file.target is not None and file.target.tls == Tls(verify=False, ca_file="/ca.pem")
    transformations = file.metadata.transformations
    assert (transformations.replicas, transformations.multi_type, transformations.allow_existing) == (2, "split", True)


def test_errors_name_the_file_and_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"metadata\.yaml: target\.auth\.password_env: Field required"):
        _load(tmp_path, "target: {endpoint: 'https://t:9200', auth: {kind: basic, username: u}}\n")
    with pytest.raises(ConfigurationError, match=r"metadata\.yaml: target\.endpoint: .*must be http"):
        _load(tmp_path, "target: {endpoint: 't:9200'}\n")
    # A key given under its older name is named so.
    with pytest.raises(ConfigurationError, match=r"target\.verify_certs: .*; metadata\.replicas: "):
        _load(tmp_path, "target: {endpoint: 'https://t:9200', verify_certs: maybe}\nmetadata: {replicas: many}\n")
