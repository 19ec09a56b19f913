"""``console tuples show|summary``: the replayer's tuples read back from a folder, as tables and as JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from migration_pipeline.cli.console import app
from workers.replay.compare import compare
from workers.replay.messages import HttpRequest, HttpResponse, ReplayedTransaction, TargetExchange
from workers.replay.tuples import TupleWriter

CONSOLE = str(Path(sys.executable).parent / "console")


def exchange(method: str, path: str, source: tuple[int, bytes], target: tuple[int, bytes], seq: int,
             body: bytes = b"") -> ReplayedTransaction:
    request = HttpRequest(method, path, body=body)
    return ReplayedTransaction("conn-a", seq, 0, seq, request, HttpResponse(source[0], (), source[1]),
                               1_000_000, 3_500_000,
                               [TargetExchange(request, HttpResponse(target[0], (), target[1]), 5_000_000,
                                               6_000_000, attempts=2 if seq == 3 else 1)])


@pytest.fixture
def tuples(tmp_path: Path) -> Path:
    """A folder with five tuples: two bulk requests, a search, two document reads (one whose status differs)."""
    folder = tmp_path / "tuples"
    writer = TupleWriter(folder, writer_id="t")
    ok = b'{"took":3,"errors":false,"items":[]}'
    bulk_body = b'{"index":{"_index":"logs"}}\n{"msg":"' + b"x" * 500 + b'"}\n'
    for tx in [
        exchange("POST", "/_bulk", (200, ok), (200, ok), 1, bulk_body),
        exchange("POST", "/logs/_bulk", (200, ok), (200, ok), 2, bulk_body),
        exchange("GET", "/logs/_search", (200, b'{"hits":{"total":2,"hits":[{"_id":"a"},{"_id":"b"}]}}'),
                 (200, b'{"hits":{"total":{"value":2,"relation":"eq"},"hits":[{"_id":"b"},{"_id":"a"}]}}'), 3),
        exchange("GET", "/logs/_doc/[1]", (200, b'{"found":true}'), (200, b'{"found":true}'), 4),
        exchange("GET", "/logs/_doc/2", (200, b'{"found":true}'), (404, b'{"found":false}'), 5),
    ]:
        writer.add(tx, compare(tx))
    writer.close()
    return folder


def run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "250"})


def test_summary_table_and_json(tuples: Path) -> None:
    table = run("tuples", "summary", str(tuples))
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    header = next(line for line in lines if "path pattern" in line)
    assert "match" in header and "status mismatch" in header and "hits mismatch" in header
    assert any("/{index}/_doc/{id}" in line and " 2 " in line for line in lines)
    assert "5 tuples: 3 match (60.0%)" in table.output
    data = json.loads(run("tuples", "summary", str(tuples), "--json").output)
    assert data["location"] == str(tuples) and data["total"] == 5
    assert data["kinds"] == {"match": 3, "hits_mismatch": 1, "status_mismatch": 1}
    assert {(e["method"], e["pattern"], e["total"]) for e in data["endpoints"]} == {
        ("POST", "/_bulk", 1), ("POST", "/{index}/_bulk", 1), ("GET", "/{index}/_search", 1),
        ("GET", "/{index}/_doc/{id}", 2)}


def test_show_table_filters_by_kind(tuples: Path) -> None:
    result = run("tuples", "show", str(tuples))
    assert result.exit_code == 0, result.output
    assert "/logs/_doc/[1]" in result.output  # brackets are text, not markup
    assert "conn-a#3" in result.output and "1.0 (2 tries)" in result.output and "2.5" in result.output
    mismatches = run("tuples", "show", str(tuples), "--kind", "status_mismatch", "--kind", "hits_mismatch")
    assert "conn-a#5" in mismatches.output and "source 200, target 404" in mismatches.output
    assert "the same 2 _ids in another order" in mismatches.output and "conn-a#1" not in mismatches.output
    first = run("tuples", "show", str(tuples), "--limit", "1", "--bodies", "--body-chars", "10")
    assert "conn-a#1" in first.output and "conn-a#2" not in first.output and '{"took":3,' in first.output
    none = run("tuples", "show", str(tuples), "--kind", "target_error")
    assert none.exit_code == 0 and "no tuples of kind target_error" in none.output


def test_show_json_lines_shorten_bodies(tuples: Path) -> None:
    result = run("tuples", "show", str(tuples), "--json", "--limit", "2", "--body-chars", "12")
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [r["seq"] for r in rows] == [1, 2]
    assert rows[0]["source_request"]["body"] == '{"index":{"_… (539 bytes)'
    assert rows[0]["source_response"]["body"] == '{"took":3,"e… (36 bytes)'
    assert rows[0]["target"][0]["request"]["body_as_source"] is True


def test_errors_exit_without_traceback(tmp_path: Path) -> None:
    missing = run("tuples", "summary", str(tmp_path / "nowhere"))
    assert missing.exit_code == 1 and "no tuples at" in missing.output and "Traceback" not in missing.output
    bad_kind = run("tuples", "show", str(tmp_path), "--kind", "nonsense")
    assert bad_kind.exit_code == 2 and "unknown comparison kind nonsense" in bad_kind.output


def test_the_console_command_has_the_sub_app(tuples: Path) -> None:
    proc = subprocess.run([CONSOLE, "tuples", "summary", str(tuples), "--json"], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "COLUMNS": "250"})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["total"] == 5
