"""Allow lists: exact names, whole-name regexes, errors, and the default exclusions."""

from __future__ import annotations

import pytest

from workers.metadata import objects
from workers.metadata.allowlist import AllowList, AllowLists, internal_reason
from workers.metadata.errors import AllowListError


def test_exact_names_are_literal() -> None:
    allow = AllowList.parse(["logs.2024", "products"], "index allow list")
    assert allow.matches("logs.2024") and allow.matches("products")
    assert not allow.matches("logsX2024") and not allow.matches("products-old")


def test_regex_must_match_the_whole_name() -> None:
    allow = AllowList.parse(["regex:logs-\\d+"], "index allow list")
    assert allow.matches("logs-2024")
    assert not allow.matches("old-logs-2024") and not allow.matches("logs-2024-x")


def test_invalid_or_empty_patterns_are_errors_naming_the_entry() -> None:
    with pytest.raises(AllowListError, match=r"index template allow list: entry 'regex:\(unclosed' is not a valid"):
        AllowLists.parse(index_templates=["regex:(unclosed"])
    with pytest.raises(AllowListError, match="has an empty pattern"):
        AllowLists.parse(indices=["regex:"])


def test_empty_list_excludes_system_and_internal_objects() -> None:
    allow = AllowList.parse([], "index allow list")
    assert allow.exclusion(objects.index(".kibana_1", {}, {}, {})) == \
        "excluded by default: system object (name starts with '.')"
    assert allow.exclusion(objects.index("ilm-history-3-000001", {}, {}, {})) is not None
    assert allow.exclusion(objects.index("logs", {}, {}, {})) is None  # an index called logs is user data
    assert internal_reason("index_template", "logs") is not None
    assert internal_reason("component_template", "logs@mappings") is not None
    managed = objects.index_template("synthetics", {"index_patterns": ["s-*"], "_meta": {"managed": True}})
    assert AllowList.parse([], "x").exclusion(managed) is not None
    assert internal_reason("legacy_template", "posts_index_template") is None


def test_a_non_empty_list_replaces_the_defaults() -> None:
    allow = AllowList.parse([".kibana_1"], "index allow list")
    assert allow.exclusion(objects.index(".kibana_1", {}, {}, {})) is None
    assert allow.exclusion(objects.index("logs", {}, {}, {})) == "not in the index allow list"


def test_each_kind_has_its_list() -> None:
    lists = AllowLists.parse(indices=["a"], index_templates=["t"], component_templates=["c"])
    assert lists.for_kind("index").entries == ("a",)
    assert lists.for_kind("legacy_template").entries == ("t",)
    assert lists.for_kind("index_template").entries == ("t",)
    assert lists.for_kind("component_template").entries == ("c",)
