"""The target's analysis components, asked of the real OpenSearch 2.19 (read-only ``_analyze`` probes)."""

from __future__ import annotations

from migration_pipeline.sandbox.state import SandboxState
from tests.workers.metadata.scenario import client
from tests.workers.metadata.transforms.test_analysis import ES6_ANALYSIS
from workers.metadata import objects
from workers.metadata.capabilities import LiveAnalysis
from workers.metadata.options import MigrationOptions
from workers.metadata.transforms.analysis import AnalysisComponents
from workers.metadata.transforms.base import Context
from workers.metadata.versions import EngineVersion


def test_live_probes(sandbox: SandboxState) -> None:
    live = LiveAnalysis(client(sandbox.engines["target"].url), "target")
    assert live.lacks("filter", "icu_folding") and live.lacks("tokenizer", "kuromoji_tokenizer")
    assert live.lacks("analyzer", "kuromoji") and live.lacks("char_filter", "no_such_char_filter")
    assert live.lacks("filter", "standard")  # removed in Elasticsearch 7, so in every OpenSearch
    # Present, including those that refuse to run without parameters (synonym, mapping).
    assert not live.lacks("filter", "lowercase") and not live.lacks("filter", "synonym")
    assert not live.lacks("char_filter", "mapping") and not live.lacks("tokenizer", "edge_ngram")
    assert not live.lacks("analyzer", "english") and not live.lacks("analyzer", "snowball")


def test_analysis_rule_against_the_real_target(sandbox: SandboxState) -> None:
    target = sandbox.engines["target"]
    ctx = Context(EngineVersion.parse("es:6.8.23"), EngineVersion.parse("os:2.19.6"), MigrationOptions(),
                  LiveAnalysis(client(target.url), target.url))
    obj = objects.index("suggest", dict(ES6_ANALYSIS), {}, {})
    AnalysisComponents().apply(obj, ctx)
    assert [b.split(" (")[0] for b in obj.blockers] == ["analysis: the target lacks tokenizer icu_tokenizer",
                                                        "analysis: the target lacks token filter icu_folding"]
    assert obj.settings["index.analysis.tokenizer.grams.type"] == "ngram"
