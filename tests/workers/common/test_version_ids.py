"""The writer of a snapshot from the ids and texts repositories record, for every release family."""

from __future__ import annotations

import pytest

from workers.common.versions import decode_recorded_version, decode_version_id


@pytest.mark.parametrize(("version_id", "expected"), [
    (5061699, ("elasticsearch", 5, 6, 16)),
    (6082399, ("elasticsearch", 6, 8, 23)),
    (7100299, ("elasticsearch", 7, 10, 2)),
    (8090199, ("elasticsearch", 8, 9, 1)),
    (8100499, ("elasticsearch", 8, 10, 4)),
    # Elasticsearch 8.11+: index-format ids (IndexVersions.csv), the release's major and minor.
    (8500003, ("elasticsearch", 8, 11, 0)),
    (8500008, ("elasticsearch", 8, 12, 0)),
    (8500010, ("elasticsearch", 8, 12, 0)),
    (8503000, ("elasticsearch", 8, 13, 0)),
    (8505000, ("elasticsearch", 8, 14, 0)),
    (8512000, ("elasticsearch", 8, 15, 0)),
    (8518000, ("elasticsearch", 8, 16, 0)),
    (8521000, ("elasticsearch", 8, 17, 0)),
    (8537000, ("elasticsearch", 8, 19, 0)),
    (9009000, ("elasticsearch", 9, 0, 0)),
    (9039001, ("elasticsearch", 9, 2, 0)),
    # Newer than the table: the newest release known, never an older one.
    (9999000, ("elasticsearch", 9, 3, 0)),
    # OpenSearch carries its mask bit.
    (0x08000000 ^ 1030099, ("opensearch", 1, 3, 0)),
    (136408427, ("opensearch", 2, 19, 6)),
    (0x08000000 ^ 3080099, ("opensearch", 3, 8, 0)),
])
def test_version_ids(version_id: int, expected: tuple[str, int, int, int]) -> None:
    assert decode_version_id(version_id) == expected


def test_recorded_versions_in_repository_data() -> None:
    assert decode_recorded_version("7.10.2") == ("elasticsearch", 7, 10, 2)
    assert decode_recorded_version("8.8.2") == ("elasticsearch", 8, 8, 2)
    # OpenSearch writes its own release as text: no Elasticsearch wrote a 1.x-3.x release there.
    assert decode_recorded_version("2.11.0") == ("opensearch", 2, 11, 0)
    assert decode_recorded_version(8537000) == ("elasticsearch", 8, 19, 0)  # index_version of 8.19.21
    assert decode_recorded_version(9039001) == ("elasticsearch", 9, 2, 0)  # index_version of 9.2.0
    assert decode_recorded_version(None) is None
    assert decode_recorded_version("") is None
    assert decode_recorded_version(True) is None
