"""Engine versions from text and from internal version ids."""

from __future__ import annotations

import pytest

from workers.common.errors import ConfigurationError
from workers.metadata.versions import EngineVersion


def test_parse() -> None:
    assert EngineVersion.parse("es:7.10.2") == EngineVersion("elasticsearch", 7, 10, 2)
    assert EngineVersion.parse("opensearch 2.19") == EngineVersion("opensearch", 2, 19, 0)
    assert EngineVersion.of("opensearch", "3.0.0-SNAPSHOT") == EngineVersion("opensearch", 3, 0, 0)
    with pytest.raises(ConfigurationError):
        EngineVersion.parse("7.10")


def test_ids() -> None:
    assert EngineVersion.from_id(5061699) == EngineVersion("elasticsearch", 5, 6, 16)
    assert EngineVersion.from_id(7100299) == EngineVersion("elasticsearch", 7, 10, 2)
    # OpenSearch 2.19.6 as the target wrote it into index.version.created.
    assert EngineVersion.from_id(136408427) == EngineVersion("opensearch", 2, 19, 6)


def test_comparisons() -> None:
    v = EngineVersion.parse("es:7.10.2")
    assert v.es_at_most(7) and v.es_at_least(7, 3) and not v.es_at_least(7, 11) and not v.os_at_least(1)
