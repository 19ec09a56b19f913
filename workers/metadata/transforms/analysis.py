"""Analysis components: rename those later engines renamed, and block on those the target lacks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from workers.metadata.capabilities import KIND_WORDS, AnalysisKind
from workers.metadata.mappings import visit_fields
from workers.metadata.model import MetadataObject
from workers.metadata.settings import analysis_settings
from workers.metadata.transforms.base import Context, Transform

# Names Elasticsearch 6 deprecated and 7 refuses for new indices (so every OpenSearch does).
RENAMED: dict[str, dict[str, str]] = {
    "filter": {"nGram": "ngram", "edgeNGram": "edge_ngram", "delimited_payload_filter": "delimited_payload"},
    "tokenizer": {"nGram": "ngram", "edgeNGram": "edge_ngram", "PathHierarchy": "path_hierarchy"},
}
# The "standard" token filter did nothing since Elasticsearch 5 and was removed in 7.
REMOVED_FILTERS = {"standard"}
PLUGIN_HINTS = (("icu_", "analysis-icu"), ("kuromoji", "analysis-kuromoji"), ("nori", "analysis-nori"),
                ("phonetic", "analysis-phonetic"), ("smartcn", "analysis-smartcn"), ("polish", "analysis-stempel"),
                ("stempel", "analysis-stempel"), ("ukrainian", "analysis-ukrainian"), ("seunjeon", "seunjeon"))
_CHAIN_KINDS: tuple[AnalysisKind, ...] = ("filter", "char_filter")
_DEFINED_KINDS: tuple[AnalysisKind, ...] = ("tokenizer", "filter", "char_filter")
_MAPPING_ANALYZER_KEYS = ("analyzer", "search_analyzer", "search_quote_analyzer")
# Index-level names that resolve to the index's own default analyzers, never to a global one.
_INDEX_DEFAULTS = {"default", "default_search", "default_search_quoted"}


def _hint(name: str) -> str:
    plugin = next((p for prefix, p in PLUGIN_HINTS if prefix in name.lower()), None)
    return f" (install the {plugin} plugin on the target)" if plugin else ""


def _as_list(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    return [v.strip() for v in str(value).split(",") if v.strip()]


class AnalysisComponents(Transform):
    """Rename nGram/edgeNGram/delimited_payload_filter, drop the standard filter, block on missing components."""

    name = "analysis-components"
    summary = ("renames analysis components later engines renamed (nGram → ngram, ...), drops the removed standard "
               "token filter, and blocks on analyzers, tokenizers and filters the target lacks")

    def applies(self, ctx: Context) -> bool:
        """Every pair with an OpenSearch target."""
        return ctx.target.is_opensearch

    def apply(self, obj: MetadataObject, ctx: Context) -> None:
        """Rewrite the analysis settings, then check every component against the target."""
        self._rename(obj)
        defined = analysis_settings(obj.settings)
        missing: list[str] = []

        def check(kind: AnalysisKind, name: str, where: str) -> None:
            if ctx.analysis.lacks(kind, name):
                missing.append(f"{KIND_WORDS[kind]} {name} ({where}){_hint(name)}")

        for kind in _DEFINED_KINDS:
            for name, params in defined.get(kind, {}).items():
                if "type" in params:
                    check(kind, str(params["type"]), f"type of {KIND_WORDS[kind]} {name}")
        for group in ("analyzer", "normalizer"):
            for name, params in defined.get(group, {}).items():
                if group == "analyzer" and params.get("type", "custom") != "custom":
                    check("analyzer", str(params["type"]), f"type of analyzer {name}")
                    continue
                tokenizer = params.get("tokenizer")
                if tokenizer and tokenizer not in defined.get("tokenizer", {}):
                    check("tokenizer", str(tokenizer), f"{group} {name}")
                for kind in _CHAIN_KINDS:
                    for item in _as_list(params.get(kind, [])):
                        if item not in defined.get(kind, {}):
                            check(kind, item, f"{group} {name}")
        # Index templates may use analyzers their component templates define; those are checked after composition.
        if obj.kind != "index_template":
            self._check_mapping_analyzers(obj, defined, check)
        for item in dict.fromkeys(missing):
            obj.block(f"analysis: the target lacks {item}")

    def _check_mapping_analyzers(self, obj: MetadataObject, defined: dict[str, dict[str, dict[str, Any]]],
                                 check: Callable[[AnalysisKind, str, str], None]) -> None:
        def visit(path: str, field: dict[str, Any]) -> None:
            for key in _MAPPING_ANALYZER_KEYS:
                name = field.get(key)
                if isinstance(name, str) and name not in defined.get("analyzer", {}) and name not in _INDEX_DEFAULTS:
                    check("analyzer", name, f"field {path}")

        for body in obj.mappings.values():
            visit_fields(body, visit)

    def _rename(self, obj: MetadataObject) -> None:
        for key in list(obj.settings):
            parts = key.split(".")
            if len(parts) != 5 or parts[:2] != ["index", "analysis"]:
                continue
            group, component, param = parts[2], parts[3], parts[4]
            value = obj.settings[key]
            if param == "type" and group in RENAMED and value in RENAMED[group]:
                obj.settings[key] = RENAMED[group][value]
                obj.note(self.name)
                obj.warn(f"analysis: {group} {component} type {value} renamed {obj.settings[key]}")
            elif group in ("analyzer", "normalizer") and param == "tokenizer" and value in RENAMED["tokenizer"]:
                obj.settings[key] = RENAMED["tokenizer"][value]
                obj.note(self.name)
            elif group in ("analyzer", "normalizer") and param == "filter":
                items = _as_list(value)
                kept = [RENAMED["filter"].get(i, i) for i in items if i not in REMOVED_FILTERS]
                if kept != items:
                    obj.settings[key] = kept
                    obj.note(self.name)
                    if len(kept) < len(items):
                        obj.warn(f"analysis: {group} {component}: the standard token filter (a no-op, removed in "
                                 "Elasticsearch 7) was dropped")
