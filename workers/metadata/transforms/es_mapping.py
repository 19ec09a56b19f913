"""Mapping features of Elasticsearch 7.11+ that OpenSearch lacks: runtime fields, synthetic source, TSDB markers."""

from __future__ import annotations

from typing import Any

from workers.metadata.mappings import visit_fields
from workers.metadata.model import MetadataObject
from workers.metadata.transforms.base import Context, Transform

# Field parameters of Elasticsearch time series data streams and synthetic source; OpenSearch refuses them.
_FIELD_PARAMS = ("time_series_dimension", "time_series_metric", "synthetic_source_keep")


def _drop_field_params(body: dict[str, Any]) -> list[str]:
    dropped: list[str] = []

    def visit(path: str, field: dict[str, Any]) -> None:
        for param in _FIELD_PARAMS:
            if param in field:
                del field[param]
                dropped.append(f"{path}.{param}")

    visit_fields(body, visit)
    return dropped


class DropElasticsearchOnlyMapping(Transform):
    """Remove runtime fields and TSDB field markers with a warning; synthetic ``_source`` blocks."""

    name = "drop-elasticsearch-only-mapping"
    summary = ("removes runtime fields and time-series field markers with a warning; an index with synthetic "
               "_source is blocked (its documents have no stored source to copy)")

    def applies(self, ctx: Context) -> bool:
        """Elasticsearch 7.11+ source (runtime fields appeared in 7.11), OpenSearch target."""
        return ctx.source.es_at_least(7, 11) and ctx.target.is_opensearch

    def apply(self, obj: MetadataObject, ctx: Context) -> None:
        """Drop what OpenSearch cannot take; block on synthetic source."""
        for body in obj.mappings.values():
            runtime = body.pop("runtime", None)
            if runtime:
                obj.note(self.name)
                obj.warn(f"runtime fields {', '.join(sorted(runtime))} removed (OpenSearch has no runtime fields)")
            source = body.get("_source")
            if isinstance(source, dict) and source.get("mode") == "synthetic":
                obj.note(self.name)
                if obj.kind == "index":
                    obj.block("_source is synthetic: documents have no stored source to copy")
                else:
                    del source["mode"]
                    obj.warn("synthetic _source mode removed: indices from this template store _source")
                    if not source:
                        del body["_source"]
            elif isinstance(source, dict) and "mode" in source:
                del source["mode"]
                obj.note(self.name)
            dropped = _drop_field_params(body)
            if dropped:
                obj.note(self.name)
                obj.warn(f"removed Elasticsearch-only field parameters: {', '.join(dropped)}")
