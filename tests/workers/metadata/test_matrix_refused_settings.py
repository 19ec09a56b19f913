"""Settings OpenSearch 2.x/3.x refuse at index creation, from every source release that accepts them (opt-in:
``pytest -m matrix``): the evaluation removes or rewrites each with a warning, predicts no failure, and migrate
creates the index and the template on the real target."""

from __future__ import annotations

import pytest

from tests.workers.metadata.matrix_scenarios import REFUSED_SETTINGS, build_refused, expected_on_target
from tests.workers.metadata.test_matrix import _mine, _run_pair

PAIRS = [
    ("os:1.3.20", "os:2.19.6"), ("es:7.10.2", "os:2.19.6"), ("es:8.19.21", "os:2.19.6"),
    ("es:6.8.23", "os:2.19.6"), ("es:7.17.29", "os:2.19.6"), ("es:9.2.0", "os:3.8.0"),
    ("os:1.3.20", "os:3.8.0"), ("os:2.19.6", "os:3.8.0"), ("es:8.19.21", "os:3.8.0"),
]


@pytest.mark.parametrize(("source", "target"), PAIRS, ids=[f"{s}->{t}" for s, t in PAIRS])
@pytest.mark.matrix
def test_refused_settings_are_handled_before_migrate(source: str, target: str) -> None:
    p, live, migrated, second = _run_pair(source, target, build_refused(source))
    rows = {r.name: r for r in _mine(live, p)}
    assert set(rows) == {f"{p}-lt", f"{p}-refused"}
    # The evaluation predicts every failure: nothing is blocked and nothing fails.
    assert [r.name for r in _mine(live, p) if r.action == "blocked"] == []
    assert [r.name for r in _mine(migrated, p) if r.action == "blocked"] == [r.name for r in migrated.failed] == []
    assert {r.name: r.result for r in _mine(migrated, p)} == {f"{p}-lt": "created", f"{p}-refused": "created"}
    assert {r.action for r in _mine(second, p)} == {"exists-identical"}
    for name, row in rows.items():
        assert row.body is not None
        sent = row.body.get("settings", {})  # absent when every setting was removed
        for key, value in REFUSED_SETTINGS[source].items():
            want = expected_on_target(target, key, value)
            assert sent.get(key) == want, (name, key, sent.get(key), want)
            said = "classic similarity" if key.startswith("index.similarity.") else key
            if want != value:
                assert any(said in w for w in row.warnings), (name, key, row.warnings)
        # Handled by the rules, not by the fallback for unknown settings.
        assert "drop-unknown-settings" not in row.transformations, row.warnings
    if "index.similarity.tfidf.type" in REFUSED_SETTINGS[source]:
        body = rows[f"{p}-refused"].body
        assert body is not None and body["mappings"]["properties"]["body"]["similarity"] == "BM25"
