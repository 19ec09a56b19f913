"""``console tuples``: the tuples the traffic replayer wrote (what the source and the target answered, and how the
answers compare), read back from a folder or S3."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from migration_pipeline.cli.common import handle_errors, out, print_json
from workers.common.errors import ConfigurationError
from workers.replay.compare import KINDS, MATCH
from workers.replay.summary import TupleSummary, read_tuples, summarize

app = typer.Typer(help="Tuples of the traffic replayer: source and target responses, compared.",
                  no_args_is_help=True)

LocationArg = Annotated[str, typer.Argument(help="A folder of tuple files, one Parquet file, or s3://bucket/prefix")]
EndpointOption = Annotated[str | None, typer.Option("--s3-endpoint", help="S3 endpoint URL (e.g. a MinIO/moto)")]
RegionOption = Annotated[str | None, typer.Option("--s3-region", help="S3 region")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print as JSON.")]

# The columns ``show`` reads when it prints a table without bodies: the rest of a tuple is mostly bodies.
_TABLE_COLUMNS = ("conn", "seq", "method", "path", "query", "source_status", "target_status", "kind", "detail",
                  "source_received_ns", "source_finished_ns", "target_started_ns", "target_finished_ns", "attempts",
                  "error")


@app.command("show")
@handle_errors
def show(
    location: LocationArg,
    limit: Annotated[int, typer.Option("--limit", "-n", help="At most this many tuples (0: all).", min=0)] = 20,
    kind: Annotated[list[str] | None, typer.Option(
        "--kind", help=f"Only tuples of this comparison kind (repeatable): {', '.join(KINDS)}.")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="One JSON object per line, bodies shortened.")] = False,
    bodies: Annotated[bool, typer.Option("--bodies", help="Add the responses' bodies to the table.")] = False,
    body_chars: Annotated[int, typer.Option("--body-chars", help="Keep this many characters of each body.",
                                            min=0)] = 200,
    s3_endpoint: EndpointOption = None,
    s3_region: RegionOption = None,
) -> None:
    """The tuples in time order: conn/seq, request, both statuses, the comparison's kind and detail, durations."""
    unknown = sorted(set(kind or ()) - set(KINDS))
    if unknown:
        raise ConfigurationError(f"unknown comparison kind {', '.join(unknown)}; use one of {', '.join(KINDS)}")
    columns = None if json_output or bodies else _TABLE_COLUMNS
    rows = _selected(read_tuples(location, columns=columns, s3_endpoint=s3_endpoint, s3_region=s3_region),
                     set(kind or ()), limit)
    if json_output:
        for row in rows:
            sys.stdout.write(json.dumps(_jsonable(row, body_chars)) + "\n")
        sys.stdout.flush()
        return
    table = Table(title=f"tuples in {escape(location)}")
    for col in ("conn/seq", "request", "source", "target", "kind", "detail", "source ms", "target ms"):
        table.add_column(col, justify="right" if col.endswith(("ms", "source", "target")) else "left")
    if bodies:
        table.add_column("source response")
        table.add_column("target response")
    count = 0
    for row in rows:
        count += 1
        request = f"{row['method'] or '?'} {row['path'] or ''}" + (f"?{row['query']}" if row.get("query") else "")
        detail = row["detail"] or row["error"] or ""
        cells = [escape(f"{row['conn']}#{row['seq']}"), escape(request), _status(row["source_status"]),
                 _status(row["target_status"]), _kind(row["kind"]), escape(detail),
                 _ms(row["source_received_ns"], row["source_finished_ns"]),
                 _ms(row["target_started_ns"], row["target_finished_ns"], row["attempts"])]
        if bodies:
            target = (row["target"] or [{}])[-1].get("response")
            cells += [escape(_body(row["source_response"], body_chars)), escape(_body(target, body_chars))]
        table.add_row(*cells)
    if not count:
        which = f" of kind {', '.join(kind)}" if kind else ""
        out.print(f"no tuples{which} in {location}", highlight=False)
        return
    out.print(table)


@app.command("summary")
@handle_errors
def summary(location: LocationArg, json_output: JsonOption = False, s3_endpoint: EndpointOption = None,
            s3_region: RegionOption = None) -> None:
    """Tuples per endpoint (method and path pattern) and comparison kind."""
    result = summarize(location, s3_endpoint=s3_endpoint, s3_region=s3_region)
    if json_output:
        print_json({"location": location, **result.to_dict()})
        return
    if not result.total:
        out.print(f"no tuples in {location}", highlight=False)
        return
    _print_summary(result, location)


def _print_summary(result: TupleSummary, location: str) -> None:
    present = result.kinds
    kinds = [k for k in KINDS if present[k]] + sorted(k for k in present if k not in KINDS)
    data = result.to_dict()
    table = Table(title=f"tuples in {escape(location)}")
    table.add_column("method")
    table.add_column("path pattern")
    table.add_column("total", justify="right")
    for k in kinds:
        table.add_column(k.replace("_", " "), justify="right")
    for e in data["endpoints"]:
        table.add_row(escape(e["method"]), escape(e["pattern"]), str(e["total"]),
                      *[str(e["kinds"].get(k, "")) for k in kinds])
    table.add_section()
    table.add_row("", "all", str(data["total"]), *[str(present[k]) for k in kinds])
    out.print(table)
    matched = present[MATCH]
    out.print(f"{data['total']} tuples: {matched} match ({100 * matched / data['total']:.1f}%)", highlight=False)


def _selected(rows: Iterator[dict[str, Any]], kinds: set[str], limit: int) -> Iterator[dict[str, Any]]:
    shown = 0
    for row in rows:
        if kinds and row["kind"] not in kinds:
            continue
        yield row
        shown += 1
        if limit and shown >= limit:
            return


def _shorten(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[:chars] + "…"


def _body(message: dict[str, Any] | None, chars: int) -> str:
    """A message's body as text cut to ``chars`` characters, with its whole size when anything is left out (the
    tuple itself may hold only the body's beginning)."""
    if not message or message.get("body") is None:
        return ""
    text = bytes(message["body"]).decode("utf-8", errors="replace")
    if len(text) <= chars and not message.get("body_truncated"):
        return text
    return text[:chars] + f"… ({message.get('body_size')} bytes)"


def _jsonable(value: Any, body_chars: int) -> Any:
    """``value`` with bodies decoded (as UTF-8, invalid bytes replaced) and cut to ``body_chars`` characters."""
    if isinstance(value, bytes):
        return _shorten(value.decode("utf-8", errors="replace"), body_chars)
    if isinstance(value, dict):
        if isinstance(value.get("body"), bytes):
            return {k: _body(value, body_chars) if k == "body" else _jsonable(v, body_chars)
                    for k, v in value.items()}
        return {k: _jsonable(v, body_chars) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v, body_chars) for v in value]
    return value


def _status(status: int | None) -> str:
    if status is None:
        return "—"
    colour = "green" if status < 400 else "yellow" if status < 500 else "red"
    return f"[{colour}]{status}[/]"


def _kind(kind: str | None) -> str:
    return f"[green]{kind}[/]" if kind == MATCH else f"[yellow]{escape(kind or '?')}[/]"


def _ms(start: int | None, end: int | None, attempts: int | None = None) -> str:
    if not start or not end:
        return "—"
    tries = f" ({attempts} tries)" if attempts and attempts > 1 else ""
    return f"{(end - start) / 1e6:.1f}{tries}"
