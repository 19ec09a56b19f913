"""Internal and per-cluster settings go; the user's stay."""

from __future__ import annotations

from tests.workers.metadata.helpers import ctx
from workers.metadata import objects
from workers.metadata.transforms.settings_strip import StripInternalSettings

RULE = StripInternalSettings()
# Index settings as an Elasticsearch 7.10 snapshot holds them after a shrink, with user settings mixed in.
SNAPSHOT_SETTINGS = {
    "index.creation_date": "1711120608041", "index.number_of_replicas": "1", "index.number_of_shards": "1",
    "index.provided_name": "posts_2023_02_25", "index.uuid": "CsS2Nx5QQ9ObYacB1k-vDg",
    "index.version.created": "7100299", "index.version.upgraded": "7100299", "index.history.uuid": "x1",
    "index.routing.allocation.include._tier_preference": "data_content",
    "index.routing.allocation.require.box_type": "hot", "index.routing.allocation.initial_recovery._id": "n1",
    "index.resize.source.name": "posts_big", "index.resize.source.uuid": "u2", "index.blocks.write": "true",
    "index.mapping.total_fields.limit": "5000", "index.refresh_interval": "30s",
    "index.analysis.analyzer.folded.type": "custom", "index.analysis.analyzer.folded.tokenizer": "standard",
    "index.analysis.analyzer.folded.filter": ["lowercase", "asciifolding"],
}


def test_applies_to_every_pair() -> None:
    assert RULE.applies(ctx("es:5.6.16")) and RULE.applies(ctx("os:1.3.20", "os:3.8.0"))


def test_internal_settings_go_and_user_settings_stay() -> None:
    obj = objects.index("posts", SNAPSHOT_SETTINGS, {}, {})
    RULE.apply(obj, ctx("es:7.10.2"))
    assert obj.settings == {
        "index.analysis.analyzer.folded.filter": ["lowercase", "asciifolding"],
        "index.analysis.analyzer.folded.tokenizer": "standard", "index.analysis.analyzer.folded.type": "custom",
        "index.mapping.total_fields.limit": "5000", "index.number_of_replicas": "1",
        "index.number_of_shards": "1", "index.refresh_interval": "30s",
    }
    assert obj.warnings == [
        "removed index.blocks.write=true: write/read blocks are not copied: the backfill must write; set them "
        "again after cutover",
        "removed index.routing.allocation.require.box_type=hot: allocation filters name the source's nodes",
    ]


def test_opensearch_settings_the_target_sets_itself() -> None:
    obj = objects.index("logs", {"index.replication.type": "DOCUMENT", "index.version.created": "136408427",
                                 "index.plugins.index_state_management.policy_id": "hot-warm",
                                 "index.number_of_shards": "3"}, {}, {})
    RULE.apply(obj, ctx("os:2.19.6", "os:3.8.0"))
    assert obj.settings == {"index.number_of_shards": "3"}
    assert obj.warnings == ["removed index.plugins.index_state_management.policy_id=hot-warm: attach the ISM "
                            "policy on the target"]
