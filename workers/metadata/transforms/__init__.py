"""The transformation rules and their order; :func:`select` picks those a version pair needs."""

from __future__ import annotations

from workers.metadata.model import MetadataObject
from workers.metadata.transforms.all_field import RemoveAllField
from workers.metadata.transforms.analysis import AnalysisComponents
from workers.metadata.transforms.base import Context, Transform
from workers.metadata.transforms.dense_vector import DenseVectorToKnn
from workers.metadata.transforms.es_mapping import DropElasticsearchOnlyMapping
from workers.metadata.transforms.es_settings import DropElasticsearchOnlySettings
from workers.metadata.transforms.flattened import FlattenedToFlatObject
from workers.metadata.transforms.knn_engine import NmslibToFaiss
from workers.metadata.transforms.mapping_types import MergeMappingTypes
from workers.metadata.transforms.removed_settings import DropRemovedSettings
from workers.metadata.transforms.rename import RenameIndices
from workers.metadata.transforms.replicas import ReplicaOverride
from workers.metadata.transforms.setting_values import RewriteRefusedValues
from workers.metadata.transforms.settings_strip import StripInternalSettings
from workers.metadata.transforms.similarity import ClassicSimilarityToBM25
from workers.metadata.transforms.string_fields import StringToTextKeyword
from workers.metadata.transforms.template_patterns import TemplateToIndexPatterns

# Order matters: strings are converted, _all removed and classic similarities rewritten per type before types are
# merged (so that a 5.x "string not_analyzed" in one type and "keyword" in another agree); renames run last, on final
# names.
ALL: tuple[Transform, ...] = (
    TemplateToIndexPatterns(),
    StripInternalSettings(),
    DropElasticsearchOnlySettings(),
    DropRemovedSettings(),
    RewriteRefusedValues(),
    StringToTextKeyword(),
    RemoveAllField(),
    ClassicSimilarityToBM25(),
    MergeMappingTypes(),
    DropElasticsearchOnlyMapping(),
    DenseVectorToKnn(),
    FlattenedToFlatObject(),
    NmslibToFaiss(),
    AnalysisComponents(),
    RenameIndices(),
    ReplicaOverride(),
)


def select(ctx: Context) -> list[Transform]:
    """The rules ``ctx``'s version pair and options need, in application order."""
    return [t for t in ALL if t.applies(ctx)]


def transform(obj: MetadataObject, ctx: Context, rules: list[Transform] | None = None) -> MetadataObject:
    """A transformed copy of ``obj`` (the source object is left as it was)."""
    out = obj.copy()
    for rule in select(ctx) if rules is None else rules:
        rule.apply(out, ctx)
    return out


__all__ = ["ALL", "Context", "Transform", "select", "transform"]
