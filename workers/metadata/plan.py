"""Evaluate: transform every allowed object for the target, compare with what it holds, and decide an action."""

from __future__ import annotations

from opensearchpy import OpenSearch

from workers.metadata import checks, unknown_settings
from workers.metadata.bodies import request_body
from workers.metadata.capabilities import AnalysisCapabilities, LiveAnalysis, LiveSettings, SettingCapabilities
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


def _simulate(client: OpenSearch, where: str, obj: MetadataObject, components: dict[str, MetadataObject]
              ) -> str | None:
    """The target's reason to refuse ``obj``, after dropping the settings it names as unknown (the fallback)."""
    reason = simulate(client, where, obj, components)
    for _ in range(unknown_settings.MAX_ROUNDS):
        dropped = unknown_settings.drop_named(obj.settings, reason) if reason else {}
        if not dropped:
            break
        unknown_settings.record(obj, dropped)
        reason = simulate(client, where, obj, components)
    return reason


def _decide(obj: MetadataObject, target: TargetState, client: OpenSearch, where: str,
            components: dict[str, MetadataObject], allow_existing: bool) -> Row:
    if obj.blockers:
        return _row(obj, "blocked")
    existing = target.existing(obj.kind, obj.name)
    diffs = differences(obj, existing) if existing is not None else []
    if existing is not None and diffs and set(obj.settings) - set(existing.settings):
        # Settings the target lacks may be ones the fallback drops (as it did when migrate created the object).
        _simulate(client, where, obj, components)
        diffs = differences(obj, existing)
    if existing is not None and not diffs:
        return _row(obj, "exists-identical")
    # Anything migrate may write is first shown to the target (a template that would be overwritten included).
    if existing is None or (allow_existing and obj.kind != "index"):
        reason = _simulate(client, where, obj, components)
        if reason:
            obj.block(f"the target rejects it: {reason}")
            return _row(obj, "blocked", diffs)
    return _row(obj, "create") if existing is None else _row(obj, "exists-different", diffs)


def evaluate(source: SourceMetadata, client: OpenSearch, where: str, options: MigrationOptions,
             analysis: AnalysisCapabilities | None = None, settings: SettingCapabilities | None = None) -> Report:
    """The report of what migrate would do on the target at ``where`` (nothing is changed on it)."""
    target_version = cluster_version(client, where)
    ctx = Context(source.version, target_version, options, analysis or LiveAnalysis(client, where),
                  settings or LiveSettings(client, where))
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
    if any(unknown_settings.NAME in r.transformations for r in report.rows):
        report.transformations[unknown_settings.NAME] = unknown_settings.SUMMARY
    report.sort()
    return report

