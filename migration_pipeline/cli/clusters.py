"""``console clusters``: raw requests, index counts side by side and a connection check of source and target."""

from __future__ import annotations

import sys
import warnings
from dataclasses import asdict
from typing import Annotated, Any

import typer
from opensearchpy.exceptions import OpenSearchWarning
from rich.markup import escape
from rich.table import Table

from migration_pipeline.cli.common import err, handle_errors, out, print_json
from migration_pipeline.cli.curl import CurlRequest, apply_option, parse_args, send, shown_headers
from migration_pipeline.cli.targets import ROLES, ConfigOption, resolve
from migration_pipeline.sandbox import manager
from workers.common.cluster_info import ClusterObservation, observe
from workers.common.clusters import ClusterConnection, build_client
from workers.common.connection_check import auth_label, check
from workers.common.errors import ConfigurationError

app = typer.Typer(help="Look at the source and target clusters.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print as JSON.")]


def _say(message: str) -> None:
    err.print(f"[dim]note:[/] {escape(message)}", highlight=False)


@app.command("curl", context_settings={"ignore_unknown_options": True})
@handle_errors
def curl(
    cluster: Annotated[str, typer.Argument(metavar="source|target", help="Which cluster to send the request to.")],
    args: Annotated[list[str] | None, typer.Argument(
        help="-- PATH[?query] [-X METHOD] [-d BODY|@file|@-] [-H 'Name: value']", show_default=False)] = None,
    method: Annotated[str | None, typer.Option("-X", "--request", help="HTTP method (default GET, POST with -d)")]
    = None,
    data: Annotated[str | None, typer.Option("-d", "--data", help="Request body, @file or @- for stdin")] = None,
    header: Annotated[list[str] | None, typer.Option("-H", "--header", help="Extra header 'Name: value'")] = None,
    verbose: Annotated[bool, typer.Option("-v", "--verbose", help="Show the request and response headers on "
                                                                  "stderr (credentials redacted).")] = False,
    config: ConfigOption = None,
) -> None:
    """Send one REST request to the source or target with its configured auth and TLS; print the response body.

    Exits 0 for a 2xx answer, 1 otherwise (the status goes to stderr). Credentials are never printed.
    """
    if cluster not in ROLES:
        raise ConfigurationError(f"cluster must be source or target, not {cluster!r}")
    request = CurlRequest()
    if method is not None:
        apply_option(request, "-X", method)
    if data is not None:
        apply_option(request, "-d", data)
    for h in header or []:
        apply_option(request, "-H", h)
    parse_args(list(args or []), request)
    if not request.path:
        raise ConfigurationError("curl needs a PATH, e.g.: console clusters curl source -- /_cat/indices?v")
    clusters = resolve(config, _say)
    conn = clusters.connection(cluster)
    where = f"{cluster} cluster {conn.endpoint}"
    client = clusters.client(cluster)
    if verbose:
        err.print(f"> {request.effective_method} {conn.endpoint}{_slash(request.path)}", highlight=False, markup=False)
        err.print(f"> auth: {auth_label(conn)}; TLS verify {'on' if conn.tls.verify else 'off'}", highlight=False,
                  markup=False)
        for name, value in shown_headers(request.headers).items():
            err.print(f"> {name}: {value}", highlight=False, markup=False)
    response = send(client, request, where)
    if verbose:
        err.print(f"< HTTP {response.status}", highlight=False, markup=False)
        for name, value in shown_headers(response.headers).items():
            err.print(f"< {name}: {value}", highlight=False, markup=False)
    for warning in response.warnings:
        err.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False)
    body = response.pretty_body()
    if request.effective_method == "HEAD":
        body = f"HTTP {response.status}"
    if body:
        sys.stdout.write(body + "\n")
        sys.stdout.flush()
    if not response.ok:
        err.print(f"[bold red]error:[/] {escape(where)} answered HTTP {response.status}", highlight=False)
        raise typer.Exit(1)


def _slash(path: str) -> str:
    return path if path.startswith("/") else "/" + path


@app.command("cat-indices")
@handle_errors
def cat_indices(
    json_output: JsonOption = False,
    all_indices: Annotated[bool, typer.Option("--all", help="Also system and hidden indices (names with a "
                                                            "leading dot).")] = False,
    config: ConfigOption = None,
) -> None:
    """Every index with its document count on the source and on the target, side by side."""
    clusters = resolve(config, _say)
    seen: dict[str, ClusterObservation] = {}
    with warnings.catch_warnings():
        # Counting system indices (--all) makes the engines attach a deprecation warning to the answer.
        warnings.simplefilter("ignore", OpenSearchWarning)
        for role in ROLES:
            conn = clusters.connection(role)
            seen[role] = observe(clusters.client(role, max_retries=2), f"{role} cluster {conn.endpoint}",
                                 expand_wildcards="all" if all_indices else "open")
    names = sorted(set(seen["source"].indices) | set(seen["target"].indices))
    rows: list[dict[str, Any]] = []
    for name in names:
        if name.startswith(".") and not all_indices:
            continue
        src, tgt = seen["source"].indices.get(name), seen["target"].indices.get(name)
        # An index only the target has was not migrated from anywhere: neither a match nor a mismatch.
        match = None if src is None else src == tgt
        rows.append({"index": name, "source": src, "target": tgt, "match": match})
    if json_output:
        print_json({**{role: _cluster_facts(clusters.connection(role), seen[role]) for role in ROLES},
                    "indices": rows})
        return
    table = Table(title="indices: source and target")
    for col, justify in (("index", "left"), ("source docs", "right"), ("target docs", "right"), ("match", "center")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        match_text = "—" if row["match"] is None else ("[green]yes[/]" if row["match"] else "[red]no[/]")
        table.add_row(escape(row["index"]), _count(row["source"]), _count(row["target"]), match_text)
    out.print(table)
    for role in ROLES:
        obs = seen[role]
        out.print(f"{role}: {obs.engine} {obs.version} at {clusters.connection(role).endpoint} ({obs.health})",
                  highlight=False)


def _count(value: int | None) -> str:
    return "—" if value is None else str(value)


def _cluster_facts(conn: ClusterConnection, obs: ClusterObservation) -> dict[str, Any]:
    return {"endpoint": conn.endpoint, "engine": obs.engine, "version": obs.version, "health": obs.health}


@app.command("connection-check")
@handle_errors
def connection_check(json_output: JsonOption = False, config: ConfigOption = None) -> None:
    """Can the source and target be reached and logged into: engine, version, health, auth, TLS, latency."""
    clusters = resolve(config, _say)
    results = [check(role, clusters.connection(role)) for role in ROLES]
    ok = all(r.error is None for r in results)
    if json_output:
        print_json({"ok": ok, "clusters": [asdict(r) for r in results]})
    else:
        table = Table(title=f"connection check ({clusters.origin})")
        for col in ("cluster", "endpoint", "reachable", "engine", "health", "auth", "TLS verify", "latency"):
            table.add_column(col)
        for r in results:
            table.add_row(r.role, escape(r.endpoint), "[green]yes[/]" if r.reachable else "[red]no[/]",
                          f"{r.engine} {r.version}" if r.engine else "—", r.health or "—", escape(r.auth),
                          "on" if r.tls_verify else "off",
                          f"{r.latency_ms:.0f} ms" if r.latency_ms is not None else "—")
        out.print(table)
    for r in results:
        if r.error:
            err.print(f"[bold red]error:[/] {escape(r.error)}", highlight=False)
    if not ok:
        raise typer.Exit(1)


@app.command("sandbox-info")
@handle_errors
def sandbox_info(json_output: JsonOption = False) -> None:
    """Version and per-index document counts of the running sandbox's source and target."""
    state = manager.running()
    result: dict[str, dict[str, Any]] = {}
    for role, node in state.engines.items():
        obs = observe(build_client(ClusterConnection(endpoint=node.url)), node.url)
        result[role] = {"url": node.url, "engine": obs.engine, "version": obs.version, "health": obs.health,
                        "indices": obs.indices}
    if json_output:
        print_json(result)
    else:
        for role, info in result.items():
            out.print(f"[bold]{role}[/] {info['engine']} {info['version']} {info['url']} ({info['health']})")
            for index, count in info["indices"].items():
                out.print(f"  {index}: {count}")
