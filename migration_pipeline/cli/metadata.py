"""``console metadata evaluate|migrate``: templates, settings, mappings and aliases from the source to the target."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from opensearchpy.exceptions import OpenSearchWarning
from rich.table import Table

from migration_pipeline.cli.common import err, handle_errors, out, print_json
from migration_pipeline.cli.metadata_config import MetadataFile, SnapshotConfig, load_metadata_file
from workers.common.clusters import Auth, BasicAuth, ClusterConnection, SigV4Auth, Tls, build_client, parse_connection
from workers.common.errors import ConfigurationError
from workers.metadata.apply import migrate as apply_plan
from workers.metadata.model import KIND_LABELS
from workers.metadata.options import MigrationOptions
from workers.metadata.plan import evaluate as evaluate_plan
from workers.metadata.report import Report, Row
from workers.metadata.source import SnapshotLocation, read_source
from workers.metadata.versions import EngineVersion

app = typer.Typer(help="Evaluate and migrate templates, settings, mappings and aliases to the target.",
                  no_args_is_help=True)

ConfigOpt = Annotated[Path | None, typer.Option("--config", help="YAML file (source/snapshot/target/metadata)")]
RepoOpt = Annotated[str | None, typer.Option("--snapshot-repo", help="file:///path or s3://bucket/prefix")]
SnapOpt = Annotated[str | None, typer.Option("--snapshot", help="Snapshot name")]
S3EndpointOpt = Annotated[str | None, typer.Option("--s3-endpoint", help="S3 endpoint URL of the repository")]
S3RegionOpt = Annotated[str | None, typer.Option("--s3-region", help="S3 region of the repository")]
SourceVersionOpt = Annotated[str | None, typer.Option(
    "--source-version", help="ENGINE:VERSION of the source, when the snapshot does not record it (es:6.8.23)")]
EndpointOpt = Annotated[str | None, typer.Option(help="http(s)://host:port")]
UserOpt = Annotated[str | None, typer.Option(help="Basic-auth user")]
PasswordEnvOpt = Annotated[str | None, typer.Option(help="Environment variable holding the password")]
SourceInsecureOpt = Annotated[bool, typer.Option("--source-insecure", help="Do not verify TLS certificates")]
TargetInsecureOpt = Annotated[bool, typer.Option("--target-insecure", help="Do not verify TLS certificates")]
CaOpt = Annotated[str | None, typer.Option(help="PEM file of the CA")]
RegionOpt = Annotated[str | None, typer.Option(help="SigV4: AWS region (turns SigV4 on)")]
ServiceOpt = Annotated[str, typer.Option(help="SigV4: es or aoss")]
ListOpt = Annotated[list[str] | None, typer.Option(help="Exact name or regex:PATTERN (repeat the option)")]
RenameOpt = Annotated[list[str] | None, typer.Option(
    "--rename", help="OLD=NEW or regex:PATTERN=REPLACEMENT ($1 or \\1 for groups); repeat the option")]
ReplicasOpt = Annotated[int | None, typer.Option(min=0, help="Replica count for the target's indices")]
MultiTypeOpt = Annotated[str | None, typer.Option(
    help="Several mapping types in one index: union (one mapping) or split (INDEX_TYPE indices)")]
OutputOpt = Annotated[str, typer.Option(help="table or json")]


@dataclass
class _ClusterFlags:
    endpoint: str | None
    username: str | None
    password_env: str | None
    insecure: bool
    ca_certs: str | None
    aws_region: str | None
    aws_service: str

    def merge(self, configured: ClusterConnection | None, role: str) -> ClusterConnection | None:
        """The file's cluster with these flags on top; flags alone when the file has none."""
        if self.endpoint is None and configured is None:
            return None
        auth: Auth | None = None
        if self.username or self.password_env:
            if not self.username or not self.password_env:
                raise ConfigurationError(f"--{role}-username and --{role}-password-env go together")
            auth = BasicAuth(username=self.username, password_env=self.password_env)
        elif self.aws_region:
            if self.aws_service not in ("es", "aoss"):
                raise ConfigurationError(f"--{role}-aws-service must be es or aoss, not {self.aws_service!r}")
            auth = SigV4Auth(region=self.aws_region, service="aoss" if self.aws_service == "aoss" else "es")
        if configured is None:
            return parse_connection({"endpoint": self.endpoint, "auth": auth or {"kind": "none"},
                                     "tls": {"verify": not self.insecure, "ca_file": self.ca_certs}}, role)
        tls = Tls(verify=configured.tls.verify and not self.insecure, ca_file=self.ca_certs or configured.tls.ca_file)
        merged = {"endpoint": self.endpoint or configured.endpoint, "auth": auth or configured.auth, "tls": tls,
                  "timeout_s": configured.timeout_s}
        return parse_connection(merged, role)


@dataclass
class _Request:
    file: MetadataFile
    source: _ClusterFlags
    target: _ClusterFlags
    snapshot_repo: str | None
    snapshot: str | None
    s3_endpoint: str | None
    s3_region: str | None
    source_version: str | None
    index_allowlist: list[str] | None
    index_template_allowlist: list[str] | None
    component_template_allowlist: list[str] | None
    rename: list[str] | None
    replicas: int | None
    multi_type: str | None
    allow_existing: bool
    output: str

    def run(self, mode: str) -> Report:
        """Read the source, evaluate against the target, and migrate when ``mode`` says so."""
        if self.output not in ("table", "json"):
            raise ConfigurationError(f"--output must be table or json, not {self.output!r}")
        o, t = self.file.metadata, self.file.metadata.transformations
        options = MigrationOptions.build(
            index_allowlist=o.index_allowlist if self.index_allowlist is None else self.index_allowlist,
            index_template_allowlist=(o.index_template_allowlist if self.index_template_allowlist is None
                                      else self.index_template_allowlist),
            component_template_allowlist=(o.component_template_allowlist if self.component_template_allowlist
                                          is None else self.component_template_allowlist),
            rename=o.rename if self.rename is None else self.rename,
            replicas=t.replicas if self.replicas is None else self.replicas,
            multi_type=self.multi_type or t.multi_type,
            allow_existing=self.allow_existing or t.allow_existing,
        )
        target_conn = self.target.merge(self.file.target, "target")
        if target_conn is None:
            raise ConfigurationError("no target: give --target-endpoint (or target.endpoint in --config)")
        version_text = self.source_version or self.file.source_version
        version = EngineVersion.parse(version_text) if version_text else None
        source = read_source(self._snapshot(), self._source_cluster(), version)
        client = build_client(target_conn)
        where = target_conn.redacted()
        report = evaluate_plan(source, client, where, options)
        if mode == "migrate":
            apply_plan(report, client, where, options.allow_existing, progress=_progress if self.output == "table"
                       and err.is_terminal else None)
        return report

    def _snapshot(self) -> SnapshotLocation | None:
        if self.source.endpoint and (self.snapshot_repo or self.snapshot):
            raise ConfigurationError("give either --snapshot-repo/--snapshot or --source-endpoint, not both")
        if self.source.endpoint:
            return None  # an explicit live source wins over a snapshot in the file
        snap = self.file.snapshot or SnapshotConfig(repo="", name="")
        repo, name = self.snapshot_repo or snap.repo, self.snapshot or snap.name
        if not repo and not name:
            return None
        if not repo or not name:
            raise ConfigurationError("reading a snapshot needs both --snapshot-repo and --snapshot")
        return SnapshotLocation(repo, name, self.s3_endpoint or snap.s3_endpoint, self.s3_region or snap.s3_region)

    def _source_cluster(self) -> ClusterConnection | None:
        if self._snapshot() is not None:
            return None
        source = self.source.merge(self.file.source, "source")
        if source is None:
            raise ConfigurationError("no source: give --snapshot-repo and --snapshot, or --source-endpoint")
        return source


def _progress(row: Row) -> None:
    err.print(f"[dim]{KIND_LABELS[row.kind]} {row.name}: {row.result}[/]", highlight=False)


def _print(report: Report, output: str) -> None:
    if output == "json":
        print_json(report.to_dict())
        return
    migrate = report.mode == "migrate"
    table = Table(title=f"metadata {report.mode}: {report.source_version} → {report.target_version}",
                  show_lines=True)
    for col in ("kind", "name", "action", *(["result"] if migrate else []), "transformations", "notes"):
        table.add_column(col, overflow="fold")
    styles = {"blocked": "red", "exists-different": "yellow", "excluded": "dim", "create": "green"}
    for row in report.rows:
        name = row.name if row.name == row.source_name else f"{row.name}\n(from {row.source_name})"
        cells = [KIND_LABELS[row.kind], name, f"[{styles.get(row.action, 'default')}]{row.action}[/]"]
        if migrate:
            cells.append(f"[red]{row.result}[/]" if row.result == "failed" else str(row.result))
        cells += ["\n".join(row.transformations), "\n".join(row.notes)]
        table.add_row(*cells)
    out.print(table)
    counts = ", ".join(f"{k} {v}" for k, v in report.counts().items() if v)
    out.print(f"{report.source} → {report.target}: {counts or 'nothing to do'}", highlight=False)


def _run(mode: str, request: _Request) -> None:
    # Deprecation headers of old sources ("[types removal] ...") are about our reads, not the user's data.
    warnings.simplefilter("ignore", OpenSearchWarning)
    report = request.run(mode)
    _print(report, request.output)
    code = report.exit_code()
    if code:
        raise typer.Exit(code)


def _request(config: Path | None, **kw: Any) -> _Request:
    file = load_metadata_file(config) if config else MetadataFile()
    flags = {role: _ClusterFlags(**{k: kw.pop(f"{role}_{k}") for k in (
        "endpoint", "username", "password_env", "insecure", "ca_certs", "aws_region", "aws_service")})
        for role in ("source", "target")}
    return _Request(file, flags["source"], flags["target"], **kw)


@app.command("evaluate")
@handle_errors
def evaluate(
    config: ConfigOpt = None,
    snapshot_repo: RepoOpt = None, snapshot: SnapOpt = None, s3_endpoint: S3EndpointOpt = None,
    s3_region: S3RegionOpt = None, source_version: SourceVersionOpt = None,
    source_endpoint: EndpointOpt = None, source_username: UserOpt = None, source_password_env: PasswordEnvOpt = None,
    source_insecure: SourceInsecureOpt = False, source_ca_certs: CaOpt = None, source_aws_region: RegionOpt = None,
    source_aws_service: ServiceOpt = "es",
    target_endpoint: EndpointOpt = None, target_username: UserOpt = None, target_password_env: PasswordEnvOpt = None,
    target_insecure: TargetInsecureOpt = False, target_ca_certs: CaOpt = None, target_aws_region: RegionOpt = None,
    target_aws_service: ServiceOpt = "es",
    index_allowlist: ListOpt = None, index_template_allowlist: ListOpt = None,
    component_template_allowlist: ListOpt = None, rename: RenameOpt = None, replicas: ReplicasOpt = None,
    multi_type: MultiTypeOpt = None,
    allow_existing: Annotated[bool, typer.Option("--allow-existing",
                                                 help="Templates that differ would be overwritten")] = False,
    output: OutputOpt = "table",
) -> None:
    """Report what migrate would do, object by object; exit 3 when something is blocked. Changes nothing."""
    _run("evaluate", _request(**locals()))


@app.command("migrate")
@handle_errors
def migrate(
    config: ConfigOpt = None,
    snapshot_repo: RepoOpt = None, snapshot: SnapOpt = None, s3_endpoint: S3EndpointOpt = None,
    s3_region: S3RegionOpt = None, source_version: SourceVersionOpt = None,
    source_endpoint: EndpointOpt = None, source_username: UserOpt = None, source_password_env: PasswordEnvOpt = None,
    source_insecure: SourceInsecureOpt = False, source_ca_certs: CaOpt = None, source_aws_region: RegionOpt = None,
    source_aws_service: ServiceOpt = "es",
    target_endpoint: EndpointOpt = None, target_username: UserOpt = None, target_password_env: PasswordEnvOpt = None,
    target_insecure: TargetInsecureOpt = False, target_ca_certs: CaOpt = None, target_aws_region: RegionOpt = None,
    target_aws_service: ServiceOpt = "es",
    index_allowlist: ListOpt = None, index_template_allowlist: ListOpt = None,
    component_template_allowlist: ListOpt = None, rename: RenameOpt = None, replicas: ReplicasOpt = None,
    multi_type: MultiTypeOpt = None,
    allow_existing: Annotated[bool, typer.Option(
        "--allow-existing", help="Overwrite templates that differ; keep differing indices")] = False,
    output: OutputOpt = "table",
) -> None:
    """Create what evaluate plans, in dependency order; a failed object doesn't stop the rest (exit 1)."""
    _run("migrate", _request(**locals()))
