"""The reverse replayer's transforms (after a cutover, target traffic replayed onto the source): renames undone, and
Elasticsearch 5/6 mapping types put back into typeless paths and bulk actions."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from workers.common.clusters import ClusterConnection
from workers.common.errors import ConfigurationError
from workers.metadata.rename import RenameRules
from workers.replay.messages import HttpRequest
from workers.replay.transforms import TransformOptions, TransformPipeline
from workers.replay.transforms.renames import inverse_renames
from workers.replay.transforms.restore_types import RestoreTypeTransform

SOURCE = ClusterConnection(endpoint="http://source.example:9200")
TYPES = {"logs": "log", "orders": "order"}


def request(method: str, path: str, body: bytes = b"", query: str = "") -> HttpRequest:
    return HttpRequest(method, path, query, (("Host", "target:9200"),), body)


def ndjson(*lines: Any) -> bytes:
    return b"".join(orjson.dumps(line) + b"\n" for line in lines)


def restored(method: str, path: str, body: bytes = b"") -> HttpRequest:
    (out,) = RestoreTypeTransform(TYPES).apply(request(method, path, body))
    return out


# Renames undone.

def test_exact_rules_are_inverted_in_order() -> None:
    assert inverse_renames(["logs=archive", "orders=orders-v2", " "]) == ["archive=logs", "orders-v2=orders"]
    rules = RenameRules.parse(inverse_renames(["logs=archive"]))
    assert rules.apply("archive") == "logs" and rules.apply("other") == "other"


def test_a_regex_rule_cannot_be_inverted_and_the_error_names_it() -> None:
    with pytest.raises(ConfigurationError, match=r"regex:web-\(\\d\+\)=site-\$1.*exact OLD=NEW"):
        inverse_renames(["logs=archive", "regex:web-(\\d+)=site-$1"])


def test_two_rules_naming_the_same_index_cannot_be_inverted() -> None:
    with pytest.raises(ConfigurationError, match="both name 'all-logs'"):
        inverse_renames(["a=all-logs", "b=all-logs"])
    # The same rule twice is harmless.
    assert inverse_renames(["a=b", "a=b"]) == ["b=a"]


# Types put back.

def test_document_paths_get_the_index_type_back() -> None:
    assert restored("PUT", "/logs/_doc/1").path == "/logs/log/1"
    assert restored("DELETE", "/logs/_doc/a%2Fb").path == "/logs/log/a%2Fb"
    assert restored("GET", "/orders/_doc/7").path == "/orders/order/7"
    assert restored("POST", "/logs/_doc").path == "/logs/log"
    assert restored("PUT", "/logs/_create/1").path == "/logs/log/1/_create"
    assert restored("POST", "/logs/_update/1").path == "/logs/log/1/_update"
    assert restored("GET", "/logs/_source/1").path == "/logs/log/1/_source"
    # The query goes along unchanged.
    out = RestoreTypeTransform(TYPES).apply(request("PUT", "/logs/_doc/1", b"{}", "refresh=true&routing=r"))[0]
    assert (out.path, out.query, out.body) == ("/logs/log/1", "refresh=true&routing=r", b"{}")


def test_unlisted_indices_and_other_apis_are_left_alone() -> None:
    for method, path in (("PUT", "/other/_doc/1"), ("POST", "/logs/_search"), ("POST", "/logs/_doc/1/_update"),
                         ("PUT", "/logs"), ("GET", "/_cluster/health"), ("PUT", "/logs/_doc")):
        assert restored(method, path).path == path


def test_bulk_actions_gain_the_type_of_their_index() -> None:
    body = ndjson({"index": {"_index": "logs", "_id": "1"}}, {"n": 1},
                  {"delete": {"_index": "orders", "_id": "2"}},
                  {"update": {"_index": "logs", "_id": "3"}}, {"doc": {"n": 2}},
                  {"index": {"_index": "other", "_id": "4"}}, {"_index": "not an action"},
                  {"create": {"_index": "logs", "_type": "kept", "_id": "5"}}, {"n": 3})
    out = restored("POST", "/_bulk", body)
    assert out.path == "/_bulk"
    lines = [orjson.loads(line) for line in out.body.splitlines()]
    assert lines[0] == {"index": {"_index": "logs", "_id": "1", "_type": "log"}}
    assert lines[2] == {"delete": {"_index": "orders", "_id": "2", "_type": "order"}}
    assert lines[3] == {"update": {"_index": "logs", "_id": "3", "_type": "log"}}
    assert lines[5] == {"index": {"_index": "other", "_id": "4"}}
    # A document line is copied through, even one that looks like an action; an explicit type is kept.
    assert lines[6] == {"_index": "not an action"}
    assert lines[7] == {"create": {"_index": "logs", "_type": "kept", "_id": "5"}}
    assert out.body.splitlines()[1] == b'{"n":1}'


def test_bulk_on_an_index_path_uses_the_path_index() -> None:
    body = ndjson({"index": {"_id": "1"}}, {"n": 1}, {"index": {"_index": "orders", "_id": "2"}}, {"n": 2})
    out = restored("POST", "/logs/_bulk", body)
    assert out.path == "/logs/_bulk"
    assert [orjson.loads(line) for line in out.body.splitlines()[::2]] == [
        {"index": {"_id": "1", "_type": "log"}}, {"index": {"_index": "orders", "_id": "2", "_type": "order"}}]
    untouched = ndjson({"index": {"_id": "1"}}, {"n": 1})
    assert restored("POST", "/other/_bulk", untouched).body is untouched


def test_the_pipeline_undoes_renames_before_restoring_types() -> None:
    pipe = TransformPipeline(TransformOptions(
        target=SOURCE, rename=RenameRules.parse(inverse_renames(["logs=archive"])), type_mode="restore",
        restore_types=TYPES))
    assert pipe.names == ["renames", "restore-types", "host", "auth"]
    outcome = pipe.apply(request("PUT", "/archive/_doc/1", b'{"n":1}'))
    assert outcome.error is None and outcome.requests[0].path == "/logs/log/1"
    bulk = pipe.apply(request("POST", "/_bulk", ndjson({"index": {"_index": "archive", "_id": "1"}}, {"n": 1})))
    assert orjson.loads(bulk.requests[0].body.splitlines()[0]) == {"index": {"_index": "logs", "_id": "1",
                                                                             "_type": "log"}}
    assert bulk.requests[0].header("Host") == "source.example:9200"


def test_restore_types_only_with_type_mode_restore() -> None:
    with pytest.raises(ConfigurationError, match="restore_types is for type_mode restore"):
        TransformOptions(target=SOURCE, type_mode="drop", restore_types=TYPES)


def test_the_replayer_cli_reads_restore_types() -> None:
    import typer

    from workers.replay.cli import parse_restore_types, replay

    assert parse_restore_types(["logs=log", " orders = order "]) == TYPES
    with pytest.raises(ConfigurationError, match="INDEX=TYPE"):
        parse_restore_types(["logs=a,b"])
    app = typer.Typer()
    app.command()(replay)
    result = CliRunner().invoke(app, ["--kafka-brokers", "k:9092", "--target-endpoint", "http://s:9200",
                                      "--restore-type", "logs=log"])
    assert result.exit_code == 2 and "--restore-type needs --type-mode restore" in result.output
