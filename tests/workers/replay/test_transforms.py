"""The replayer's transform pipeline on real request shapes: renames and ES <= 6 types in paths and in bulk, msearch
and mget bodies (document lines never touched), user transforms (fan-out, drop, failure, bad paths), gzip, Host,
and the target's credentials replacing the captured ones (basic, SigV4 over the bytes sent)."""

from __future__ import annotations

import base64
import gzip
import hashlib
from typing import Any

import orjson
import pytest
from botocore.auth import SigV4Auth as BotoSigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from workers.common.clusters import ClusterConnection
from workers.common.errors import ConfigurationError
from workers.metadata.rename import RenameRules
from workers.replay.messages import HttpRequest
from workers.replay.parsing import parse_request, wire_body, wire_headers
from workers.replay.transforms import TransformOptions, TransformPipeline
from workers.replay.transforms.auth import AuthTransform, canonical_query
from workers.replay.transforms.renames import RenameTransform
from workers.replay.transforms.types import TypeTransform

USER = "tests.workers.replay.user_transforms"
TARGET = ClusterConnection(endpoint="https://target.example:9200")
CAPTURED = (("Host", "source:9200"), ("Authorization", "Basic c291cmNlOnNlY3JldA=="),
            ("X-Amz-Security-Token", "captured-token"), ("Content-Type", "application/json"))


def request(method: str, path: str, body: bytes = b"", query: str = "") -> HttpRequest:
    return HttpRequest(method, path, query, CAPTURED, body)


def ndjson(*lines: Any) -> bytes:
    return b"".join((line if isinstance(line, bytes) else orjson.dumps(line)) + b"\n" for line in lines)


def pipeline(**options: Any) -> TransformPipeline:
    return TransformPipeline(TransformOptions(target=options.pop("target", TARGET), **options))


def only(pipe: TransformPipeline, req: HttpRequest) -> HttpRequest:
    outcome = pipe.apply(req)
    assert outcome.error is None and len(outcome.requests) == 1, outcome
    return outcome.requests[0]


# Renames.

RULES = RenameRules.parse(["logs=archive", "regex:web-(\\d+)=site-$1"])


def test_renames_in_paths_with_comma_lists_and_exclusions() -> None:
    rename = RenameTransform(RULES)
    assert rename.apply(request("GET", "/logs,web-1,-web-2,other/_search"))[0].path == \
        "/archive,site-1,-site-2,other/_search"
    assert rename.apply(request("PUT", "/logs/_doc/logs"))[0].path == "/archive/_doc/logs"  # only the index
    unchanged = request("GET", "/_cat/indices/logs")
    assert rename.apply(unchanged)[0] is unchanged  # endpoints' later segments are not index expressions
    catch_all = RenameTransform(RenameRules.parse(["regex:(.*)=new-$1"]))
    assert catch_all.apply(request("GET", "/logs-*,remote:logs/_search"))[0].path == \
        "/new-logs-*,remote:logs/_search"  # a pattern is renamed like the names it matches
    assert catch_all.apply(request("GET", "/_all/_search"))[0].path == "/_all/_search"


def test_rename_bulk_with_mixed_actions_keeps_documents_byte_for_byte() -> None:
    # A document line that looks like an action, one pretty-spaced, and a delete (no document line after it).
    doc1 = b'{"index": {"_index": "logs"}, "note": "a document, not an action"}'
    doc2 = b'{ "doc" : { "x" : 1 } }'
    body = ndjson({"index": {"_index": "logs", "_id": "1"}}, doc1,
                  {"delete": {"_index": "web-7", "_id": "2"}},
                  {"update": {"_index": "other", "_id": "3"}}, doc2,
                  {"create": {"_id": "4"}}, b'{"n":4}')
    out = RenameTransform(RULES).apply(request("POST", "/logs/_bulk", body))[0]
    assert out.path == "/archive/_bulk"
    assert out.body == ndjson({"index": {"_index": "archive", "_id": "1"}}, doc1,
                              {"delete": {"_index": "site-7", "_id": "2"}},
                              {"update": {"_index": "other", "_id": "3"}}, doc2,
                              {"create": {"_id": "4"}}, b'{"n":4}')


def test_rename_leaves_an_unchanged_or_malformed_bulk_body_as_is() -> None:
    body = ndjson({"index": {"_index": "other"}}, {"a": 1})
    assert RenameTransform(RULES).apply(request("POST", "/_bulk", body))[0].body is body
    broken = b'{"index": {"_index": "logs"}\n{"a":1}\n'
    assert RenameTransform(RULES).apply(request("POST", "/_bulk", broken))[0].body is broken


def test_rename_msearch_headers_and_mget_docs() -> None:
    body = ndjson({"index": "logs,web-3"}, {"query": {"match_all": {}}}, {}, {"size": 0},
                  {"index": ["web-4", "x"]}, {"query": {"term": {"index": "logs"}}})
    out = RenameTransform(RULES).apply(request("POST", "/_msearch", body))[0]
    assert out.body == ndjson({"index": "archive,site-3"}, {"query": {"match_all": {}}}, {}, {"size": 0},
                              {"index": ["site-4", "x"]}, {"query": {"term": {"index": "logs"}}})
    mget = orjson.dumps({"docs": [{"_index": "logs", "_id": "1"}, {"_id": "2"}]})
    out = RenameTransform(RULES).apply(request("POST", "/web-1/_mget", mget))[0]
    assert (out.path, orjson.loads(out.body)) == ("/site-1/_mget", {"docs": [{"_index": "archive", "_id": "1"},
                                                                               {"_id": "2"}]})


# Types.

@pytest.mark.parametrize(("method", "path", "expected"), [
    ("PUT", "/idx/post/1", "/idx/_doc/1"),
    ("GET", "/idx/post/1", "/idx/_doc/1"),
    ("DELETE", "/idx/post/1", "/idx/_doc/1"),
    ("POST", "/idx/post", "/idx/_doc"),
    ("POST", "/idx/post/1/_update", "/idx/_update/1"),
    ("PUT", "/idx/post/1/_create", "/idx/_create/1"),
    ("GET", "/idx/post/1/_source", "/idx/_source/1"),
    ("POST", "/idx/post/_search", "/idx/_search"),
    ("POST", "/a,b/post,comment/_count", "/a,b/_count"),
    ("POST", "/idx/post/_bulk", "/idx/_bulk"),
    ("PUT", "/idx/_doc/1", "/idx/_doc/1"),  # already typeless
    ("POST", "/idx/_update/1", "/idx/_update/1"),
    ("GET", "/_cat/indices", "/_cat/indices"),
])
def test_typed_paths_drop_the_type(method: str, path: str, expected: str) -> None:
    assert TypeTransform("drop", {}).apply(request(method, path))[0].path == expected


def test_typed_paths_route_to_index_per_type() -> None:
    types = TypeTransform("index-per-type", {"multi": {"Post", "comment", "_default_"}, "single": {"_default_", "x"}})
    assert types.apply(request("PUT", "/multi/Post/1"))[0].path == "/multi_post/_doc/1"
    assert types.apply(request("GET", "/multi/Post,comment/_search"))[0].path == "/multi_post,multi_comment/_search"
    assert types.apply(request("GET", "/multi,other/comment/_search"))[0].path == "/multi_comment,other/_search"
    assert types.apply(request("PUT", "/single/x/1"))[0].path == "/single/_doc/1"  # one type: not split
    assert types.apply(request("PUT", "/unknown/t/1"))[0].path == "/unknown/_doc/1"  # not known split: dropped
    assert types.apply(request("GET", "/multi/_doc/1"))[0].path == "/multi/_doc/1"


def test_typed_bulk_drop_mode() -> None:
    body = ndjson({"index": {"_index": "i", "_type": "post", "_id": "1"}}, b'{"_type":"in a doc"}',
                  {"delete": {"_index": "i", "_type": "post", "_id": "2"}},
                  {"index": {"_index": "i", "_type": "_doc", "_id": "3"}}, b'{"c":3}')
    out = TypeTransform("drop", {}).apply(request("POST", "/i/post/_bulk", body))[0]
    assert out.path == "/i/_bulk"
    assert out.body == ndjson({"index": {"_index": "i", "_id": "1"}}, b'{"_type":"in a doc"}',
                              {"delete": {"_index": "i", "_id": "2"}},
                              {"index": {"_index": "i", "_id": "3"}}, b'{"c":3}')
    untyped = ndjson({"index": {"_index": "i"}}, {"a": 1})
    assert TypeTransform("drop", {}).apply(request("POST", "/_bulk", untyped))[0].body is untyped


def test_typed_bulk_index_per_type_uses_path_defaults() -> None:
    types = TypeTransform("index-per-type", {"m": {"a", "b"}})
    body = ndjson({"index": {"_type": "b", "_id": "1"}}, {"n": 1},  # the path's index, its own type
                  {"index": {"_id": "2"}}, {"n": 2},  # the path's index and type: the path says where
                  {"delete": {"_index": "m", "_id": "3"}},  # an explicit index takes the path's type
                  {"update": {"_index": "m", "_type": "a", "_id": "4"}}, {"doc": {"n": 4}},
                  {"index": {"_index": "plain", "_type": "t", "_id": "5"}}, {"n": 5})
    out = types.apply(request("POST", "/m/a/_bulk", body))[0]
    assert out.path == "/m_a/_bulk"
    assert out.body == ndjson({"index": {"_id": "1", "_index": "m_b"}}, {"n": 1},
                              {"index": {"_id": "2"}}, {"n": 2},
                              {"delete": {"_index": "m_a", "_id": "3"}},
                              {"update": {"_index": "m_a", "_id": "4"}}, {"doc": {"n": 4}},
                              {"index": {"_index": "plain", "_id": "5"}}, {"n": 5})


def test_typed_msearch_and_mget_bodies() -> None:
    types = TypeTransform("index-per-type", {"m": {"a", "b"}})
    body = ndjson({"index": "m", "type": "b"}, {"query": {}}, {"types": ["a", "b"]}, {"query": {}})
    out = types.apply(request("POST", "/m/_msearch", body))[0]
    assert out.body == ndjson({"index": "m_b"}, {"query": {}}, {"index": "m_a,m_b"}, {"query": {}})
    mget = orjson.dumps({"docs": [{"_index": "m", "_type": "a", "_id": "1"}, {"_index": "x", "_type": "t"}]})
    out = types.apply(request("GET", "/_mget", mget))[0]
    assert orjson.loads(out.body) == {"docs": [{"_index": "m_a", "_id": "1"}, {"_index": "x"}]}


def test_split_names_are_renamed_after_routing() -> None:
    pipe = pipeline(type_mode="index-per-type", split_types={"m": frozenset({"a", "b"})},
                    rename=RenameRules.parse(["regex:m_(.*)=new-$1"]))
    assert pipe.names == ["types", "renames", "host", "auth"]
    body = ndjson({"index": {"_index": "m", "_type": "b", "_id": "1"}}, {"n": 1})
    out = only(pipe, request("POST", "/m/a/_bulk", body))
    assert out.path == "/new-a/_bulk"
    assert out.body == ndjson({"index": {"_index": "new-b", "_id": "1"}}, {"n": 1})


# User transforms.

def test_user_transform_fans_out_and_each_request_goes_through_the_rest() -> None:
    pipe = pipeline(user_transforms=[f"{USER}:split_create_by_type"], rename=RenameRules.parse(["old_a=new_a"]))
    body = orjson.dumps({"mappings": {"a": {"properties": {}}, "b": {"properties": {}}}})
    outcome = pipe.apply(request("PUT", "/old", body))
    assert outcome.error is None
    assert [r.path for r in outcome.requests] == ["/new_a", "/old_b"]
    assert all(r.header("Host") == "target.example:9200" and r.header("Authorization") is None
               for r in outcome.requests)


def test_user_transforms_drop_chain_and_dotted_attributes() -> None:
    pipe = pipeline(user_transforms=[f"{USER}:drop_deletes", f"{USER}:Holder.tag"])
    assert pipe.apply(request("DELETE", "/i/_doc/1")).requests == []
    assert only(pipe, request("GET", "/i/_doc/1")).header("X-Tagged") == "1"


@pytest.mark.parametrize(("function", "message"), [
    ("explode", "ValueError: cannot handle /i/_doc/1"),
    ("wrong_type", "TypeError: returned str"),
])
def test_a_failing_user_transform_sends_nothing(function: str, message: str) -> None:
    outcome = pipeline(user_transforms=[f"{USER}:{function}"]).apply(request("PUT", "/i/_doc/1", b"{}"))
    assert outcome.requests == []
    assert outcome.error is not None
    assert f"transform '{USER}:{function}' failed" in outcome.error and message in outcome.error


@pytest.mark.parametrize(("path", "message"), [
    ("no_colon_here", "must be package.module:function"),
    ("tests.workers.replay.no_such_module:f", "cannot import module"),
    (f"{USER}:missing", "has no 'missing'"),
    (f"{USER}:NOT_CALLABLE", "is not callable"),
])
def test_bad_user_transform_paths_fail_at_build(path: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as info:
        pipeline(user_transforms=[path])
    assert repr(path) in str(info.value)


# Compression, Host, auth.

def test_gzip_target_and_host() -> None:
    out = only(pipeline(gzip_target=True), parse_request(
        b"POST /i/_doc HTTP/1.1\r\nHost: source:9200\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s"
        % (len(gzip.compress(b'{"a":1}')), gzip.compress(b'{"a":1}'))))
    assert out.gzip and out.body == b'{"a":1}'
    assert wire_headers(out) == [("Host", "target.example:9200"), ("Content-Encoding", "gzip")]
    assert gzip.decompress(wire_body(out)) == b'{"a":1}'
    assert not only(pipeline(gzip_target=True), request("GET", "/i/_doc/1")).gzip  # nothing to compress


@pytest.mark.parametrize("auth", [{"kind": "none"}, {"kind": "cert", "cert_file": "/c.pem"}])
def test_captured_credentials_are_never_forwarded(auth: dict[str, str]) -> None:
    target = ClusterConnection.model_validate({"endpoint": "http://t:9200", "auth": auth})
    out = only(pipeline(target=target), request("GET", "/i/_search"))
    assert out.headers == (("Content-Type", "application/json"), ("Host", "t:9200"))


def test_basic_auth(monkeypatch: pytest.MonkeyPatch) -> None:
    target = ClusterConnection.model_validate(
        {"endpoint": "http://t:9200", "auth": {"kind": "basic", "username": "admin", "password_env": "T_PASS"}})
    monkeypatch.delenv("T_PASS", raising=False)
    with pytest.raises(ConfigurationError, match="T_PASS"):
        pipeline(target=target)
    monkeypatch.setenv("T_PASS", "s3cr:t")
    pipe = pipeline(target=target)
    out = only(pipe, request("GET", "/i/_search"))
    assert out.header("Authorization") == "Basic " + base64.b64encode(b"admin:s3cr:t").decode()
    assert [v for k, v in out.headers if k.lower() in ("authorization", "x-amz-security-token")] == \
        [out.header("Authorization")]
    assert "s3cr:t" not in repr(pipe.transforms[-1])


def verify_sigv4(req: HttpRequest, credentials: Credentials, region: str, service: str) -> None:
    """Recompute the signature of ``req`` as sent (its wire body) and compare it with the one it carries."""
    authorization = req.header("Authorization")
    assert authorization is not None and authorization.startswith("AWS4-HMAC-SHA256 ")
    amz_date = req.header("X-Amz-Date")
    assert amz_date is not None
    assert f"Credential={credentials.access_key}/{amz_date[:8]}/{region}/{service}/aws4_request" in authorization
    assert req.header("X-Amz-Content-SHA256") == hashlib.sha256(wire_body(req)).hexdigest()
    signed = authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
    assert {"host", "x-amz-content-sha256", "x-amz-date"} <= set(signed)
    again = AWSRequest(method=req.method, url="https://target.example:9200" + req.target,
                       headers={name: req.header(name) for name in signed})
    again.context["timestamp"] = amz_date
    signer = BotoSigV4Auth(credentials, service, region)
    signature = signer.signature(signer.string_to_sign(again, signer.canonical_request(again)), again)
    assert authorization.endswith(f"Signature={signature}")


@pytest.mark.parametrize("gzip_target", [False, True])
def test_sigv4_signs_the_final_request(gzip_target: bool) -> None:
    target = ClusterConnection.model_validate(
        {"endpoint": "https://target.example:9200", "auth": {"kind": "sigv4", "region": "eu-west-1"}})
    credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG", "session-token")
    pipe = TransformPipeline(TransformOptions(target=target, gzip_target=gzip_target,
                                              rename=RenameRules.parse(["logs=archive"])), credentials=credentials)
    body = ndjson({"index": {"_index": "logs", "_id": "1"}}, {"a": 1})
    out = only(pipe, request("POST", "/logs/_bulk", body, query="refresh=wait_for&q=a:b+c&pretty"))
    assert out.path == "/archive/_bulk" and out.gzip == gzip_target
    assert out.query == "refresh=wait_for&q=a%3Ab%20c&pretty"  # sent as AWS canonicalizes it
    assert out.header("X-Amz-Security-Token") == "session-token"  # the target's, not the captured one
    assert "Basic c291cmNlOnNlY3JldA==" not in [v for _, v in out.headers]
    verify_sigv4(out, credentials, "eu-west-1", "es")


def test_sigv4_uses_the_default_credential_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDFROMENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "from-env")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    target = ClusterConnection.model_validate(
        {"endpoint": "https://target.example:9200", "auth": {"kind": "sigv4", "region": "us-east-1",
                                                             "service": "aoss"}})
    out = AuthTransform(target).apply(request("GET", "/i/_search").with_header("Host", "target.example:9200"))[0]
    verify_sigv4(out, Credentials("AKIDFROMENV", "from-env"), "us-east-1", "aoss")
    assert out.header("X-Amz-Security-Token") is None


def test_canonical_query() -> None:
    assert canonical_query("a=1&&b=x%2Fy&c&d=e f&e=%7e") == "a=1&b=x%2Fy&c&d=e%20f&e=~"


def test_a_failing_builtin_step_is_named() -> None:
    class Boom:
        name = "boom"

        def apply(self, req: HttpRequest) -> list[HttpRequest]:
            raise KeyError("x")

    outcome = TransformPipeline(steps=[Boom()]).apply(request("GET", "/"))
    assert outcome.requests == [] and outcome.error == "transform 'boom' failed: KeyError: 'x'"
