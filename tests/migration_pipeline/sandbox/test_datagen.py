"""The generator: deterministic bytes, realistic sizes, the profiles' shapes."""

from __future__ import annotations

import orjson
import pytest

from migration_pipeline.sandbox.datagen import PROFILES, generate
from workers.common.errors import ConfigurationError


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_same_seed_same_documents(profile: str) -> None:
    first = list(generate(profile, 200, seed=7, routing=True))
    again = list(generate(profile, 200, seed=7, routing=True))
    other = list(generate(profile, 200, seed=8, routing=True))
    assert first == again
    assert [d.source for d in first] != [d.source for d in other]
    # Document i does not depend on where a batch starts.
    assert list(generate(profile, 50, seed=7, start=100, routing=True)) == first[100:150]


def test_logs_profile_averages_about_2_4_kb() -> None:
    docs = list(generate("logs", 5000, seed=3))
    average = sum(len(d.source) for d in docs) / len(docs)
    assert 2200 <= average <= 2600, average
    assert len({d.id for d in docs}) == len(docs)
    sample = orjson.loads(docs[0].source)
    assert {"@timestamp", "message", "service", "http", "user"} <= sample.keys()


def test_routing_only_when_asked() -> None:
    assert all(d.routing is None for d in generate("products", 20))
    routed = list(generate("products", 20, routing=True))
    assert all(d.routing for d in routed)


def test_nested_profile_has_items() -> None:
    doc = orjson.loads(next(generate("nested", 1)).source)
    assert isinstance(doc["items"], list) and doc["items"]
    assert PROFILES["nested"].mapping["properties"]["items"]["type"] == "nested"


def test_unknown_profile_names_the_known_ones() -> None:
    with pytest.raises(ConfigurationError, match="unknown profile 'metrics'; use one of logs, products, nested"):
        list(generate("metrics", 1))
