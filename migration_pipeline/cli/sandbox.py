"""``migration sandbox``: start, inspect, fill and stop the local sandbox of real engines."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from migration_pipeline.cli.common import err, handle_errors, out, print_json
from migration_pipeline.sandbox import loader, manager
from migration_pipeline.sandbox.catalog import DEFAULT_SOURCE, DEFAULT_TARGET, supported_specs
from migration_pipeline.sandbox.datagen import PROFILES
from workers.common.errors import ConfigurationError

app = typer.Typer(help="A local sandbox of real engines on 127.0.0.1 (Elasticsearch, OpenSearch, Kafka, S3).",
                  no_args_is_help=True)

NameOption = Annotated[
    str | None,
    typer.Option("--name", help="Sandbox name (several can run side by side). Env: MIGRATION_SANDBOX_NAME."),
]


def _settings(pairs: list[str], option: str) -> dict[str, str]:
    settings = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigurationError(f"{option} {pair!r} must be KEY=VALUE")
        settings[key.strip()] = value.strip()
    return settings


@app.command()
@handle_errors
def up(
    source: Annotated[str, typer.Option(help=f"ENGINE:VERSION of the source, or 'none'. Supported: "
                                             f"{', '.join(supported_specs())}.")] = DEFAULT_SOURCE,
    target: Annotated[str, typer.Option(help="ENGINE:VERSION of the target, or 'none'.")] = DEFAULT_TARGET,
    kafka: Annotated[bool, typer.Option("--kafka", help="Also start a Kafka broker (KRaft).")] = False,
    kafka_sasl: Annotated[bool, typer.Option(
        "--kafka-sasl", help="Kafka with a second listener, SASL_SSL (PLAIN user, a CA made here); implies "
                             "--kafka. Its address, CA file and credentials: status --json.")] = False,
    s3: Annotated[bool, typer.Option("--s3", help="Also start a moto S3 server.")] = False,
    kubernetes: Annotated[bool, typer.Option(
        "--kubernetes", help="Also start a single-node Kubernetes cluster (built from source once, ~12 min; needs "
                             "Go). Its node runs pods' commands as local processes. Kubeconfig: --json.")] = False,
    source_setting: Annotated[list[str], typer.Option(help="Extra source node setting KEY=VALUE.")] = [],  # noqa: B006
    target_setting: Annotated[list[str], typer.Option(help="Extra target node setting KEY=VALUE.")] = [],  # noqa: B006
    json_output: Annotated[bool, typer.Option("--json", help="Print connection facts as JSON.")] = False,
    name: NameOption = None,
) -> None:
    """Start the source and target engines (and Kafka/S3 on request); reuse what already runs."""
    request = manager.UpRequest(
        source=None if source.lower() == "none" else source,
        target=None if target.lower() == "none" else target,
        kafka=kafka, kafka_sasl=kafka_sasl, s3=s3, kubernetes=kubernetes,
        source_settings=_settings(source_setting, "--source-setting"),
        target_settings=_settings(target_setting, "--target-setting"),
    )
    state = manager.up(request, name=name, progress=lambda msg: err.print(f"[dim]sandbox:[/] {msg}"))
    if json_output:
        print_json(state.summary())
    else:
        _print_table(manager.status(state.name))


@app.command()
@handle_errors
def status(
    json_output: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
    name: NameOption = None,
) -> None:
    """Show what the sandbox runs, with the modules and plugins each engine loaded."""
    info = manager.status(name)
    if json_output:
        print_json(info)
        return
    if not any(k in info for k in ("source", "target", "kafka", "s3", "kubernetes")):
        out.print(f"no sandbox {info['name']!r} is running")
        return
    _print_table(info)


def _print_table(info: dict) -> None:
    table = Table(title=f"sandbox {info['name']}")
    for col in ("component", "address", "version", "state", "modules / plugins"):
        table.add_column(col)
    for role in ("source", "target"):
        if role in info:
            n = info[role]
            comps = ", ".join(n.get("modules", []) + [f"{p} (plugin)" for p in n.get("plugins", [])])
            table.add_row(role, n["url"], f"{n['engine']} {n['version']} (Java {n['java']})",
                          "up" if n["alive"] else "[red]down[/]", comps)
    if "kafka" in info:
        k = info["kafka"]
        table.add_row("kafka", k["bootstrap"], k["version"], "up" if k["alive"] else "[red]down[/]", "KRaft")
        if "sasl" in k:
            table.add_row("kafka (SASL_SSL)", k["sasl"]["bootstrap"], k["version"],
                          "up" if k["alive"] else "[red]down[/]",
                          f"PLAIN user {k['sasl']['username']}, CA {k['sasl']['ca_file']}")
    if "s3" in info:
        s = info["s3"]
        table.add_row("s3", s["endpoint"], "moto", "up" if s["alive"] else "[red]down[/]", "")
    if "kubernetes" in info:
        k = info["kubernetes"]
        parts = ", ".join(f"{name}{'' if up else ' [red](down)[/]'}" for name, up in k["components"].items())
        table.add_row("kubernetes", k["server"], k["version"], "up" if k["alive"] else "[red]down[/]",
                      f"{parts}; node {k['node']}; kubeconfig {k['kubeconfig']}")
    out.print(table)
    for role in ("source", "target"):
        if role in info:
            out.print(f"{role} snapshot repository path: {info[role]['repo_path']}")


@app.command()
@handle_errors
def down(
    keep_data: Annotated[bool, typer.Option(help="Keep the nodes' data folders.")] = False,
    name: NameOption = None,
) -> None:
    """Stop everything the sandbox started (by PID/process group) and remove its data."""
    stopped = manager.down(name, keep_data=keep_data)
    if not stopped:
        out.print("no sandbox is running; nothing to stop")
        return
    for item in stopped:
        out.print(f"stopped {item}")


@app.command()
@handle_errors
def load(
    index: Annotated[str, typer.Option(help="Index to create (if missing) and fill.")],
    docs: Annotated[int, typer.Option(min=1, help="Number of documents.")],
    profile: Annotated[str, typer.Option(help=f"Document profile: {', '.join(PROFILES)}.")] = "logs",
    shards: Annotated[int, typer.Option(min=1, help="Primary shards when the index is created.")] = 1,
    routing: Annotated[bool, typer.Option("--routing", help="Give each document a custom routing.")] = False,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same documents.")] = 0,
    start: Annotated[int, typer.Option(min=0, help="Number of the first document (to append more).")] = 0,
    cluster: Annotated[str, typer.Option(help="source or target.")] = "source",
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    name: NameOption = None,
) -> None:
    """Bulk-load realistic, deterministic documents into a sandbox cluster."""
    if cluster not in manager.ROLES:
        raise ConfigurationError(f"--cluster must be source or target, not {cluster!r}")
    if profile not in PROFILES:
        raise ConfigurationError(f"--profile must be one of {', '.join(PROFILES)}, not {profile!r}")
    state = manager.running(name)
    node = state.engines.get(cluster)
    if node is None or not node.alive():
        raise ConfigurationError(f"the sandbox has no running {cluster}; start it with 'migration sandbox up'")
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=err, transient=True, disable=json_output or not err.is_terminal) as bar:
        task = bar.add_task(f"loading {index}", total=docs)
        result = loader.load(node.url, index, docs, profile_name=profile, shards=shards, routing=routing,
                             seed=seed, start=start, progress=lambda n: bar.advance(task, n))
    summary = {"index": index, "cluster": cluster, "docs": result.docs, "source_bytes": result.source_bytes,
               "seconds": round(result.seconds, 2), "docs_per_s": round(result.docs_per_s)}
    if json_output:
        print_json(summary)
    else:
        out.print(f"loaded {result.docs} {profile} documents ({result.source_bytes / 1e6:.1f} MB) into "
                  f"{cluster} index {index} in {result.seconds:.1f}s ({result.docs_per_s:.0f} docs/s)")
