"""Which requests are held for their capture acknowledgement (no cluster needed)."""

from __future__ import annotations

import pytest

from workers.capture.classify import api_of, changes_data


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/logs/_search"), ("POST", "/_search"), ("POST", "/_search/scroll"), ("POST", "/a,b/_msearch"),
    ("POST", "/logs/_count"), ("POST", "/_mget"), ("POST", "/logs/_explain/1"), ("POST", "/logs/_validate/query"),
    ("POST", "/_search/template"), ("POST", "/logs/_field_caps"), ("GET", "/logs/_doc/1"), ("HEAD", "/logs"),
])
def test_reads_are_not_held(method: str, path: str) -> None:
    assert not changes_data(method, path)


@pytest.mark.parametrize(("method", "path"), [
    ("POST", "/logs/_doc"), ("POST", "/logs/_doc/1"), ("POST", "/_bulk"), ("POST", "/logs/_bulk"),
    ("POST", "/logs/_update/1"), ("POST", "/logs/_delete_by_query"), ("POST", "/logs/_update_by_query"),
    ("POST", "/_reindex"), ("POST", "/logs/_refresh"), ("POST", "/_aliases"), ("POST", "/logs/_doc/_search"),
    ("POST", "/_plugins/_sql"), ("POST", "/logs"), ("PUT", "/logs/_search"), ("DELETE", "/_search/scroll"),
    ("PATCH", "/x"), ("PUT", "/logs/_doc/1"),
])
def test_writes_are_held(method: str, path: str) -> None:
    assert changes_data(method, path)


def test_durable_read_posts_holds_every_post() -> None:
    assert changes_data("POST", "/logs/_search", durable_read_posts=True)
    assert not changes_data("GET", "/logs/_search", durable_read_posts=True)


def test_api_is_the_first_underscore_segment() -> None:
    assert api_of("/logs/_doc/_search") == "_doc"
    assert api_of("/logs") == ""
