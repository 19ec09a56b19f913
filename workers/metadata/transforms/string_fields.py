"""``string`` fields (Elasticsearch 5 and older) become ``text`` or ``keyword`` as Elasticsearch 5 upgraded them."""

from __future__ import annotations

from typing import Any

from workers.metadata.mappings import visit_fields
from workers.metadata.model import MetadataObject
from workers.metadata.transforms.base import Context, Transform

_COMMON = {"type", "index", "store", "boost", "copy_to", "fields", "similarity", "norms", "index_options",
           "eager_global_ordinals", "include_in_all", "meta"}
_TEXT = _COMMON | {"analyzer", "search_analyzer", "search_quote_analyzer", "term_vector", "position_increment_gap",
                   "fielddata", "fielddata_frequency_filter", "index_prefixes", "index_phrases"}
_KEYWORD = _COMMON | {"doc_values", "ignore_above", "null_value", "normalizer", "split_queries_on_whitespace"}
# keyword fields index only docs or docs+freqs.
_KEYWORD_INDEX_OPTIONS = {"docs", "freqs"}


def _truthy(value: Any) -> bool:
    return str(value).lower() in ("true", "yes", "on", "1")


def _upgrade_common(field: dict[str, Any], keyword: bool) -> None:
    """Norms and fielddata, rewritten as StringFieldMapper.TypeParser of Elasticsearch 5 did."""
    norms = field.pop("norms", None)
    if isinstance(norms, dict):
        norms = norms.get("enabled")
    if norms is not None:
        field["norms"] = _truthy(norms)
    omit_norms = field.pop("omit_norms", None)
    if omit_norms is not None:
        field["norms"] = not _truthy(omit_norms)
    if "position_offset_gap" in field:  # the 1.x name
        field["position_increment_gap"] = field.pop("position_offset_gap")
    fielddata = field.get("fielddata")
    if isinstance(fielddata, dict):
        if keyword:
            del field["fielddata"]
        else:
            field["fielddata"] = fielddata.get("format") != "disabled"
            frequency = (fielddata.get("filter") or {}).get("frequency")
            if isinstance(frequency, dict):
                field["fielddata_frequency_filter"] = {
                    k: v for k, v in frequency.items() if k in ("min", "max", "min_segment_size")
                }
        loading = fielddata.get("loading")
        if loading is not None:
            field["eager_global_ordinals"] = loading == "eager_global_ordinals"


def convert_string_field(field: dict[str, Any]) -> tuple[str, list[str]]:
    """Rewrite one ``string`` field in place; returns the new type and the parameters it had to drop."""
    index = field.get("index")
    # Elasticsearch 5: a string is a keyword unless it is analyzed (index absent or "analyzed").
    keyword = index is not None and str(index).lower() not in ("analyzed", "true")
    field["type"] = "keyword" if keyword else "text"
    if keyword:
        indexed = str(index).lower() not in ("no", "false")
        if indexed:
            field.pop("index")
        else:
            field["index"] = False
    else:
        field.pop("index", None)
    _upgrade_common(field, keyword)
    allowed = _KEYWORD if keyword else _TEXT
    dropped = sorted(k for k in field if k not in allowed)
    if keyword and field.get("index_options") not in (None, *_KEYWORD_INDEX_OPTIONS):
        dropped.append("index_options")
    for key in dropped:
        field.pop(key, None)
    # doc_values on an analyzed string was never used: text has no doc values.
    return field["type"], [d for d in dropped if not (d == "doc_values" and not keyword)]


class StringToTextKeyword(Transform):
    """``string`` → ``text`` (analyzed) or ``keyword`` (``not_analyzed``, ``no``), multi-fields included."""

    name = "string-to-text-keyword"
    summary = ("rewrites string fields as text (analyzed) or keyword (not_analyzed / index: no), including "
               "multi-fields and dynamic templates, with norms and fielddata upgraded as Elasticsearch 5 did")

    def applies(self, ctx: Context) -> bool:
        """Elasticsearch 5 and older (6+ refuse string mappings)."""
        return ctx.source.es_at_most(5)

    def apply(self, obj: MetadataObject, ctx: Context) -> None:
        """Convert every string field of every mapping type."""
        def visit(path: str, field: dict[str, Any]) -> None:
            if field.get("type") != "string":
                return
            new_type, dropped = convert_string_field(field)
            obj.note(self.name)
            if dropped:
                obj.warn(f"field {path}: string became {new_type}; dropped {', '.join(dropped)} "
                         f"({new_type} does not take them)")

        for body in obj.mappings.values():
            visit_fields(body, visit)
