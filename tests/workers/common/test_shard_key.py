"""The shard partition key ``index:shard``: built, parsed and turned into a log file name in one place."""

from __future__ import annotations

import pytest

from workers.common.errors import ConfigurationError
from workers.common.shard_key import ShardKey


@pytest.mark.parametrize("index", ["logs", "logs-2024.01.02", "my.index-v2", "a", "products_v1", "x" * 255])
@pytest.mark.parametrize("shard", [0, 1, 9, 10, 127])
def test_round_trip(index: str, shard: int) -> None:
    key = ShardKey(index, shard)
    text = key.format()
    assert text == f"{index}:{shard}" == str(key)
    assert ShardKey.parse(text) == key
    assert ShardKey.parse(text).format() == text


def test_index_with_a_colon_splits_at_the_last_one() -> None:
    # Elasticsearch 5.x/6.x could hold ':' in an index name; the shard number never does.
    key = ShardKey.parse("cluster:logs:3")
    assert key == ShardKey("cluster:logs", 3)
    assert key.format() == "cluster:logs:3"


def test_file_name_is_what_shard_log_name_gave() -> None:
    # The shard workers' log files keep their names: INDEX-SHARD.log.
    assert ShardKey.parse("logs-2024.01:7").file_name() == "logs-2024.01-7.log"
    assert ShardKey("products", 0).file_name() == "products-0.log"
    assert ShardKey("products", 12).file_name(".jsonl") == "products-12.jsonl"


def test_keys_sort_by_index_then_shard_number() -> None:
    keys = [ShardKey.parse(t) for t in ("logs:10", "logs:2", "a:1", "logs:0")]
    assert [k.format() for k in sorted(keys)] == ["a:1", "logs:0", "logs:2", "logs:10"]


def test_hashable_and_frozen() -> None:
    key = ShardKey("logs", 1)
    assert {key, ShardKey.parse("logs:1")} == {key}
    with pytest.raises(AttributeError):
        key.shard = 2  # type: ignore[misc]


@pytest.mark.parametrize(("text", "message"), [
    ("logs", r"shard key 'logs' has no ':'; expected INDEX:SHARD"),
    ("", r"shard key '' has no ':'"),
    (":3", r"shard key ':3' has no index name"),
    ("logs:", r"shard key 'logs:': '' is not a shard number"),
    ("logs:x", r"shard key 'logs:x': 'x' is not a shard number"),
    ("logs:-1", r"shard key 'logs:-1': '-1' is not a shard number"),
    ("logs:1.5", r"'1.5' is not a shard number"),
    ("logs: 1", r"' 1' is not a shard number"),
    ("logs:01", r"'01' is not a shard number \(a non-negative integer without leading zeros\)"),
    ("logs:²", r"'²' is not a shard number"),
    ("logs:0:", r"shard key 'logs:0:': '' is not a shard number"),
    ("a/b:0", r"shard key 'a/b:0': index name 'a/b' contains '/'"),
    ("..\\x:0", r"index name '..\\\\x' contains '/' or '\\'"),
])
def test_bad_text_is_a_configuration_error_quoting_it(text: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as caught:
        ShardKey.parse(text)
    assert caught.value.exit_code == 2  # bad input


@pytest.mark.parametrize(("index", "shard", "message"), [
    ("", 0, "the index name is empty"),
    ("logs", -1, "non-negative integer, not -1"),
    ("logs", True, "non-negative integer, not True"),
    ("logs", "1", "non-negative integer, not '1'"),
    ("a/b", 0, "contains '/'"),
])
def test_bad_fields_are_refused(index: str, shard: object, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        ShardKey(index, shard)  # type: ignore[arg-type]
