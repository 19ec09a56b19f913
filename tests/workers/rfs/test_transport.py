"""The backfill worker's transport against the real target, seen and perturbed through a loopback tap.

The tap (tap.py) forwards to the sandbox's real OpenSearch; it only records what the worker sends and, where a test
says so, injects the faults a real cluster cannot be made to produce on demand (gateway 502/503/504 answers, a cut
connection, some items of a request refused) and terminates TLS with a test CA's certificate, since the sandbox's
target speaks plain HTTP and has no security plugin.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import certifi
import pytest
from opensearchpy import OpenSearch

from migration_pipeline.sandbox.state import SandboxState
from tests.conftest import unique
from tests.workers.capture.certs import make_pki
from tests.workers.rfs.helpers import SnapshotFixture, build_snapshot, options, target_rows
from tests.workers.rfs.tap import Drop, FailItems, Status, Tap
from workers.common.clusters import Auth, BasicAuth, CertAuth, ClusterConnection, NoAuth, SigV4Auth, Tls
from workers.common.errors import MigrationError
from workers.metadata.rename import RenameRules
from workers.rfs.__main__ import build_parser, options_from
from workers.rfs.options import BackfillOptions
from workers.rfs.sender import BulkResponseSerializer
from workers.rfs.worker import ShardResult, run_shards
from workers.snapshot.blobstore import open_blob_store

REPO_ROOT = Path(__file__).resolve().parents[3]
SHARDS = [0, 1]


@pytest.fixture(scope="module")
def snap(sandbox: SandboxState) -> Iterator[SnapshotFixture]:
    node = sandbox.engines["source"]
    yield build_snapshot(node.url, node.repo_path, docs=300, shards=2)


@pytest.fixture
def target(sandbox: SandboxState) -> str:
    return sandbox.engines["target"].url


def _options(endpoint: str, tmp_path: Path, snap: SnapshotFixture, renamed: str, *, auth: Auth | None = None,
             verify: bool = True, ca_file: str | None = None, **kwargs: Any) -> BackfillOptions:
    """Options sending ``snap``'s index to ``renamed`` (each test writes an index of its own) through ``endpoint``."""
    base = options(endpoint, tmp_path, rename=RenameRules.parse([f"{snap.index}={renamed}"]), **kwargs)
    target = ClusterConnection(endpoint=endpoint, auth=auth or NoAuth(), tls=Tls(verify=verify, ca_file=ca_file))
    return dataclasses.replace(base, target=target)


def _run(snap: SnapshotFixture, opts: BackfillOptions) -> list[ShardResult]:
    return run_shards(open_blob_store(snap.repo_uri), snap.snapshot, snap.index, SHARDS, opts)


def _cli(snap: SnapshotFixture, endpoint: str, tmp_path: Path, renamed: str, *extra: str,
         env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "workers.rfs", "--snapshot-repo", snap.repo_uri, "--snapshot", snap.snapshot,
            "--index", snap.index, "--shard", ",".join(map(str, SHARDS)), "--target-endpoint", endpoint,
            "--rename", f"{snap.index}={renamed}", "--coordination-index", unique(".mws"),
            "--dead-letter", str(tmp_path / "dead-cli"), "--progress", "log", "--json", *extra]
    return subprocess.run(argv, capture_output=True, text=True, timeout=180, cwd=REPO_ROOT,
                          env={**os.environ, **(env or {})})


def _versions(target: str, index: str) -> dict[str, int]:
    client = OpenSearch(hosts=[target], timeout=60)
    client.indices.refresh(index=index)
    resp = client.search(index=index, body={"version": True, "size": 10_000, "query": {"match_all": {}}})
    return {hit["_id"]: hit["_version"] for hit in resp["hits"]["hits"]}


def test_transient_failures_are_retried_and_only_failed_items_resent(target: str, snap: SnapshotFixture,
                                                                    tmp_path: Path) -> None:
    """Gateway errors, a cut connection and partly refused requests, all injected by the tap (the real target
    cannot be made to answer so on demand), are retried until every document is on the target exactly once."""
    renamed = unique("retried")
    faults = [Status(502), None, Status(503), Drop(), Status(504), FailItems(every=3), None, FailItems(every=2)]
    with Tap(target) as tap:
        tap.fail_bulk(*faults)
        opts = _options(tap.url, tmp_path, snap, renamed, documents_per_bulk_request=20, max_connections=3,
                        initial_backoff_s=0.01, max_backoff_s=0.05)
        results = _run(snap, opts)
        assert tap.pending_faults == 0, "fewer bulk requests than faults: the test exercised nothing"
        refused = [e for e in tap.bulk_requests if isinstance(e.fault, FailItems)]
        assert len(refused) == 2 and all(e.status == 200 for e in refused)

    # Each injected fault costs exactly one retry of the request (or of the refused items) it hit.
    assert sum(r.retries for r in results) == sum(f is not None for f in faults)
    reasons: dict[str, int] = {}
    for r in results:
        for reason, n in r.retry_reasons.items():
            reasons[reason] = reasons.get(reason, 0) + n
    assert {"HTTP 502", "HTTP 503", "HTTP 504"} <= set(reasons), reasons
    assert any(reason.startswith("connection error") for reason in reasons), reasons
    assert reasons.get("503 unavailable_shards_exception") == 2, reasons
    assert all(r.status == "completed" and r.dead_letters == 0 for r in results)
    assert sum(r.docs_written for r in results) == len(snap.expected)
    assert target_rows(target, renamed) == snap.expected
    # Version 1 everywhere: no item the target had accepted was sent again (resending a whole partly refused
    # request would have written its accepted two thirds a second time).
    versions = _versions(target, renamed)
    assert len(versions) == len(snap.expected)
    assert {doc_id: v for doc_id, v in versions.items() if v != 1} == {}


def test_bulk_bodies_are_gzipped_unless_disabled(target: str, snap: SnapshotFixture, tmp_path: Path) -> None:
    sent: dict[bool, list[tuple[str | None, int]]] = {}
    for gzip in (True, False):
        renamed = unique("gzip" if gzip else "plain")
        with Tap(target) as tap:
            results = _run(snap, _options(tap.url, tmp_path, snap, renamed, gzip=gzip))
            sent[gzip] = [(e.header("content-encoding"), e.body_size) for e in tap.bulk_requests]
        assert sum(r.docs_written for r in results) == len(snap.expected)
        assert target_rows(target, renamed) == snap.expected
    assert sent[True] and {encoding for encoding, _ in sent[True]} == {"gzip"}
    assert sent[False] and {encoding for encoding, _ in sent[False]} == {None}
    # The header is not just a label: the same documents took far fewer bytes on the wire.
    assert sum(size for _, size in sent[True]) * 2 < sum(size for _, size in sent[False])
    required = ["--snapshot-repo", "r", "--snapshot", "s", "--index", "i", "--shard", "0", "--target-endpoint",
                "http://127.0.0.1:9"]
    assert options_from(build_parser().parse_args(required)).gzip is True
    assert options_from(build_parser().parse_args([*required, "--no-gzip"])).gzip is False


def test_basic_auth_is_sent_and_the_password_never_shown(target: str, snap: SnapshotFixture, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The sandbox's target has no security plugin and ignores the header: the tap is where it is checked."""
    user, password, var = "migrator", f"pw-{unique('s3cret')}", "RFS_TAP_TEST_PASSWORD"
    expected_header = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    monkeypatch.setenv(var, password)
    renamed = unique("basic")
    with Tap(target) as tap:
        auth = BasicAuth(username=user, password_env=var)
        results = _run(snap, _options(tap.url, tmp_path, snap, renamed, auth=auth))
        assert tap.bulk_requests
        assert {e.header("authorization") for e in tap.exchanges} == {expected_header}
    assert sum(r.docs_written for r in results) == len(snap.expected)
    assert target_rows(target, renamed) == snap.expected

    cli_index = unique("basic-cli")
    with Tap(target) as tap:
        proc = _cli(snap, tap.url, tmp_path, cli_index, "--target-username", user, "--target-password-env", var,
                    env={var: password})
        assert proc.returncode == 0, proc.stderr
        assert tap.bulk_requests and {e.header("authorization") for e in tap.bulk_requests} == {expected_header}
        # A refusing target (the tap answering 401, as a security plugin would) makes the worker print an error.
        tap.fail_bulk(Status(401, b'{"error":"unauthorized"}', "application/json"))
        refused = _cli(snap, tap.url, tmp_path, unique("basic-401"), "--target-username", user,
                       "--target-password-env", var, env={var: password})
        assert refused.returncode != 0 and "401" in refused.stderr, refused.stderr
    assert sum(r["docs_written"] for r in json.loads(proc.stdout)) == len(snap.expected)
    assert target_rows(target, cli_index) == snap.expected
    for output in (proc.stdout, proc.stderr, refused.stdout, refused.stderr):
        assert password not in output and expected_header.split()[1] not in output


def test_sigv4_signs_every_request_and_keeps_the_secret(target: str, snap: SnapshotFixture, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    """Fake credentials: the target is no AWS domain and ignores the signature; the tap checks its form."""
    key_id, secret, region = "AKIDTAPTEST00000000", f"secret-{unique('sigv4')}", "eu-west-3"
    aws_env = {"AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": secret}
    for name, value in aws_env.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    signature = re.compile(rf"AWS4-HMAC-SHA256 Credential={key_id}/(\d{{8}})/{region}/es/aws4_request, "
                           r"SignedHeaders=([a-z0-9;-]+), Signature=[0-9a-f]{64}")
    caplog.set_level(logging.DEBUG)
    renamed = unique("sigv4")
    with Tap(target) as tap:
        results = _run(snap, _options(tap.url, tmp_path, snap, renamed, auth=SigV4Auth(region=region, service="es")))
        bulk = tap.bulk_requests
    assert bulk
    for e in bulk:
        match = signature.fullmatch(e.header("authorization") or "")
        assert match, e.header("authorization")
        amz_date = e.header("x-amz-date") or ""
        assert re.fullmatch(r"\d{8}T\d{6}Z", amz_date) and amz_date.startswith(match.group(1))
        assert {"host", "x-amz-date"} <= set(match.group(2).split(";"))
    assert sum(r.docs_written for r in results) == len(snap.expected)
    assert target_rows(target, renamed) == snap.expected
    assert secret not in caplog.text

    cli_index = unique("sigv4-cli")
    with Tap(target) as tap:
        proc = _cli(snap, tap.url, tmp_path, cli_index, "--target-aws-region", region, env=aws_env)
        assert proc.returncode == 0, proc.stderr
        assert tap.bulk_requests and all(signature.fullmatch(e.header("authorization") or "")
                                         for e in tap.bulk_requests)
    assert secret not in proc.stdout and secret not in proc.stderr
    assert target_rows(target, cli_index) == snap.expected


def test_untrusted_certificate_is_refused_clearly(target: str, snap: SnapshotFixture, tmp_path: Path) -> None:
    """The tap serves HTTPS with a certificate from a CA the worker was not given: nothing may be sent."""
    (tmp_path / "pki").mkdir()
    pki = make_pki(tmp_path / "pki")
    renamed, cli_index = unique("tls-refused"), unique("tls-refused-cli")
    with Tap(target, certfile=pki.server_cert, keyfile=pki.server_key) as tap:
        with pytest.raises(MigrationError) as raised:
            _run(snap, _options(tap.url, tmp_path, snap, renamed))
        proc = _cli(snap, tap.url, tmp_path, cli_index)
        assert tap.tls_failures, "the worker never tried a handshake"
        assert tap.exchanges == []
    client = OpenSearch(hosts=[target])
    assert not client.indices.exists(index=renamed) and not client.indices.exists(index=cli_index)
    message = str(raised.value)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr
    for text in (message, proc.stderr):
        assert tap.url in text and re.search(r"certificate verif", text, re.IGNORECASE), text
    # The target was reached; its certificate was not trusted. Saying otherwise sends the operator to the network.
    for text in (message, proc.stderr):
        assert "cannot reach" not in text, text


@pytest.fixture(params=["no-bundle-env", "bundle-env"])
def ca_bundle_env(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Without and with REQUESTS_CA_BUNDLE (set in many images and corporate setups to the system's CAs): an
    explicit CA file or --target-insecure must win either way."""
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    if request.param == "bundle-env":
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    return str(request.param)


@pytest.mark.parametrize("trust", ["ca-file", "insecure"])
def test_trusted_or_unverified_certificate_gets_everything(target: str, snap: SnapshotFixture, tmp_path: Path,
                                                           ca_bundle_env: str, trust: str) -> None:
    """The test CA's file given, or verification turned off: everything arrives, in process and through the CLI."""
    (tmp_path / "pki").mkdir()
    pki = make_pki(tmp_path / "pki")
    renamed, cli_index = unique(f"tls-{trust}"), unique(f"tls-{trust}-cli")
    tls: dict[str, Any] = {"ca_file": str(pki.ca)} if trust == "ca-file" else {"verify": False}
    flags = ["--target-ca-cert", str(pki.ca)] if trust == "ca-file" else ["--target-insecure"]
    with Tap(target, certfile=pki.server_cert, keyfile=pki.server_key) as tap:
        results = _run(snap, _options(tap.url, tmp_path, snap, renamed, **tls))
        proc = _cli(snap, tap.url, tmp_path, cli_index, *flags)
        assert proc.returncode == 0, proc.stderr
        assert tap.bulk_requests and not tap.tls_failures
    assert sum(r.docs_written for r in results) == len(snap.expected)
    assert target_rows(target, renamed) == snap.expected
    assert sum(r["docs_written"] for r in json.loads(proc.stdout)) == len(snap.expected)
    assert target_rows(target, cli_index) == snap.expected


def test_client_certificate_authenticates_to_a_target_that_requires_one(target: str, snap: SnapshotFixture,
                                                                        tmp_path: Path) -> None:
    """The tap requires a client certificate from the test CA: with one everything arrives (in process and through
    the CLI's --target-client-cert); without, nothing is sent and the worker fails."""
    (tmp_path / "pki").mkdir()
    pki = make_pki(tmp_path / "pki")
    renamed, cli_index, refused_index = unique("cert"), unique("cert-cli"), unique("cert-refused")
    cert = CertAuth(cert_file=str(pki.client_cert), key_file=str(pki.client_key))
    with Tap(target, certfile=pki.server_cert, keyfile=pki.server_key, client_ca=pki.ca) as tap:
        results = _run(snap, _options(tap.url, tmp_path, snap, renamed, auth=cert, ca_file=str(pki.ca)))
        proc = _cli(snap, tap.url, tmp_path, cli_index, "--target-ca-cert", str(pki.ca),
                    "--target-client-cert", str(pki.client_cert), "--target-client-key", str(pki.client_key))
        assert proc.returncode == 0, proc.stderr
        sent = len(tap.exchanges)
        refused = _cli(snap, tap.url, tmp_path, refused_index, "--target-ca-cert", str(pki.ca))
        assert refused.returncode != 0 and "Traceback" not in refused.stderr, refused.stderr
        assert len(tap.exchanges) == sent, "a request got through without a client certificate"
    assert sum(r.docs_written for r in results) == len(snap.expected)
    assert target_rows(target, renamed) == snap.expected
    assert target_rows(target, cli_index) == snap.expected
    assert not OpenSearch(hosts=[target]).indices.exists(index=refused_index)


def test_bulk_responses_without_errors_skip_the_items() -> None:
    parse = BulkResponseSerializer().loads
    assert parse('{"errors":false,"items":[{"index":{"status":201}}]}') == {"errors": False}
    assert parse('{"errors":false}') == {"errors": False}
    # Anything else is parsed whole: the items are what says which documents to resend.
    failed = '{"errors":true,"items":[{"index":{"status":429,"error":{"type":"es_rejected_execution_exception"}}}]}'
    assert parse(failed)["items"][0]["index"]["status"] == 429
    assert parse('{"took":3,"errors":false,"items":[]}') == {"took": 3, "errors": False, "items": []}
    assert parse('{"_id":"x","_seq_no":4}') == {"_id": "x", "_seq_no": 4}
