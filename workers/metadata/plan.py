"""Evaluate: transform every allowed object for the target, compare with what it holds, and decide an action."""

from __future__ import annotations

from opensearchpy import OpenSearch

from workers.metadata import checks
from workers.metadata.bodies import request_body
from workers.metadata.capabilities import AnalysisCapabilities, LiveAnalysis
from workers.metadata.compare import differences
from workers.metadata.model import KIND_ORDER, MetadataObject, SourceMetadata
from workers.metadata.options import MigrationOptions
from workers.metadata.read_cluster import cluster_version
from workers.metadata.report import Action, Report, Row
from workers.metadata.target import TargetState, read_target_state
from workers.metadata.transforms import Context, select, transform
from workers.metadata.transforms.mapping_types import split_by_type
from workers.metadata.validate import simulate


def _row(obj: MetadataObject, action: Action, differences: list[str] | None = None) -> Row:
    return Row(obj.kind, obj.name, obj.source_name, action, list(obj.transformations), list(obj.warnings),
               list(obj.blockers), differences or [], request_body(obj), obj.source_type)


def plan_objects(source: SourceMetadata, ctx: Context) -> tuple[list[MetadataObject], list[Row]]:
    """The transformed objects to migrate, and a row for each excluded one."""
    rules = select(ctx)
    planned: list[MetadataObject] = []
    excluded: list[Row] = []
    for kind in KIND_ORDER:
        for obj in source.of_kind(kind):
            reason = ctx.options.allow.for_kind(kind).exclusion(obj)
            if reason:
                excluded.append(Row(kind, obj.name, obj.source_name, "excluded", warnings=[reason]))
                continue
            parts = split_by_type(obj) if ctx.options.multi_type == "split" else [obj]
            planned.extend(transform(part, ctx, rules) for part in parts)
    indices = [o for o in planned if o.kind == "index"]
    checks.check_mapping_types(planned)
    checks.check_index_names(indices)
    return planned, excluded


def _decide(obj: MetadataObject, target: TargetState, client: OpenSearch, where: str,
            components: dict[str, MetadataObject], allow_existing: bool) -> Row:
    if obj.blockers:
        return _row(obj, "blocked")
    existing = target.existing(obj.kind, obj.name)
    diffs = differences(obj, existing) if existing is not None else []
    if existing is not None and not diffs:
        return _row(obj, "exists-identical")
    # Anything migrate may write is first shown to the target (a template that would be overwritten included).
    if existing is None or (allow_existing and obj.kind != "index"):
        reason = simulate(client, where, obj, components)
        if reason:
            obj.block(f"the target rejects it: {reason}")
            return _row(obj, "blocked", diffs)
    return _row(obj, "create") if existing is None else _row(obj, "exists-different", diffs)


def evaluate(source: SourceMetadata, client: OpenSearch, where: str, options: MigrationOptions,
             analysis: AnalysisCapabilities | None = None) -> Report:
    """The report of what migrate would do on the target at ``where`` (nothing is changed on it)."""
    target_version = cluster_version(client, where)
    ctx = Context(source.version, target_version, options, analysis or LiveAnalysis(client, where))
    planned, excluded = plan_objects(source, ctx)
    target = read_target_state(client, where, target_version, [o.name for o in planned if o.kind == "index"])
    indices = [o for o in planned if o.kind == "index"]
    checks.check_aliases(indices, target)
    components = {o.name: o for o in planned if o.kind == "component_template"}
    for name in {n for o in planned if o.kind == "index_template" for n in o.extra.get("composed_of", [])}:
        if name not in components and (found := target.existing("component_template", name)) is not None:
            components[name] = found
    checks.check_components([o for o in planned if o.kind == "index_template"],
                            {o.name: o for o in planned if o.kind == "component_template"}, target)
    report = Report("evaluate", source.origin, where, str(source.version), str(target_version),
                    transformations={t.name: t.summary for t in select(ctx)})
    report.rows = [*excluded, *(_decide(o, target, client, where, components, options.allow_existing) for o in planned)]
    report.sort()
    return report

