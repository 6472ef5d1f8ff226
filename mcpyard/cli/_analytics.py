"""``mcpyard analytics``: reports over the gateway's call records, and their export.

Reads the SQLite call log the gateway writes (``calls.db`` in its state directory; WAL, so
the gateway may keep serving) or the PostgreSQL store every replica writes into
(``--records-url``), read-only, through the queries of :mod:`mcpyard.gateway.services._calllog`.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import re
import sqlite3
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from mcpyard import errors
from mcpyard.gateway.services import _calllog, _pgrecords, _records

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_RELATIVE = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
TOP_DEFAULT = 20
"""Rows of a top-* or errors report unless --limit says otherwise."""


def default_db() -> Path:
    return Path(os.environ.get("MCPYARD_STATE_DIR") or ".mcpyard") / "calls.db"


def parse_time(text: str, *, now: float | None = None) -> float:
    """RFC 3339 (``2025-06-01T12:00:00Z``; a date alone is midnight UTC) or a duration ago
    (``90s``, ``30m``, ``24h``, ``7d``, ``2w``), as seconds since the epoch."""
    match = _RELATIVE.fullmatch(text.strip())
    if match:
        return (time.time() if now is None else now) - float(match[1]) * _UNITS[match[2]]
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid time {text!r}: use RFC 3339 (2025-06-01T12:00:00Z) or a duration "
            "ago (30m, 24h, 7d)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "analytics",
        help="reports over the gateway's per-member call records",
        description=(
            "Reports over the call records the gateway keeps: who calls what, how often, "
            "what fails. Reads the SQLite call log (--db) or the PostgreSQL store "
            "(--records-url); the gateway may keep running."
        ),
    )
    _options(parser, None)
    reports = parser.add_subparsers(dest="report", metavar="REPORT", required=True)
    for name, help_ in (
        ("top-members", "members by number of calls"),
        ("top-tools", "tools by number of calls"),
        ("member", "one member's call history"),
        ("errors", "failed requests, grouped by what failed"),
        ("calls", "every record in the range (for export)"),
        ("export", "every record of the range as JSON lines or CSV, streamed (compliance)"),
    ):
        report = reports.add_parser(name, help=help_, description=help_[:1].upper() + help_[1:])
        if name == "member":
            report.add_argument("name", metavar="NAME", help="the Member's name")
        if name == "export":
            report.add_argument("--format", choices=("jsonl", "csv"), default=None,
                                help="jsonl (default: one JSON object a line) or csv")
        # The options work after REPORT too; SUPPRESS keeps a report's parser from
        # overwriting what was given before REPORT with its defaults.
        _options(report, argparse.SUPPRESS)
    parser.set_defaults(func=run)


def _options(parser: argparse.ArgumentParser, default: str | None) -> None:
    parser.add_argument(
        "--db",
        type=Path,
        default=default,
        help="the call database (default: $MCPYARD_STATE_DIR/calls.db, else .mcpyard/calls.db)",
    )
    parser.add_argument(
        "--records-url",
        metavar="URL",
        default=default,
        help="read the PostgreSQL call records at URL (postgresql://...; "
        "MCPYARD_RECORDS_URL) instead of a SQLite file",
    )
    parser.add_argument(
        "--since",
        type=parse_time,
        metavar="T",
        default=default,
        help="from T: RFC 3339 or a duration ago (24h, 7d)",
    )
    parser.add_argument(
        "--until",
        type=parse_time,
        metavar="T",
        default=default,
        help="up to T (excluded): RFC 3339 or a duration ago",
    )
    parser.add_argument("--workspace", metavar="W", default=default, help="only workspace W")
    parser.add_argument(
        "--limit",
        type=int,
        metavar="N",
        default=default,
        help=f"at most N rows (default {TOP_DEFAULT} for top-* and errors, "
        "all for member and calls, where N keeps the newest records)",
    )
    out = parser.add_mutually_exclusive_group()
    out.add_argument(
        "-o",
        "--output",
        choices=("table", "json", "csv"),
        default=default,
        help="table (default), json or csv",
    )
    out.add_argument(
        "--json",
        dest="output",
        action="store_const",
        const="json",
        default=default,
        help="same as -o json",
    )
    out.add_argument(
        "--csv",
        dest="output",
        action="store_const",
        const="csv",
        default=default,
        help="same as -o csv",
    )


@dataclass(frozen=True)
class Report:
    columns: tuple[str, ...]
    """Fields of each row in json and csv, in order."""
    table: tuple[str, ...]
    """The fields a table shows (a terminal is narrower than an export)."""
    query: Callable[[_calllog.Reader, _calllog.Window, argparse.Namespace], list[_calllog.Row]]
    top: bool = False


def _calls(r: _calllog.Reader, w: _calllog.Window, args: argparse.Namespace
           ) -> list[_calllog.Row]:
    if args.report == "member":
        w = dataclasses.replace(w, member=args.name)
    # --limit N keeps the newest N records (a history's tail is what one looks for), shown
    # oldest first like the whole history.
    sql, params = _calllog.calls_sql(w, newest_first=True, limit=_limit(args))
    return list(reversed(r.fetch(sql, params)))


REPORTS = {
    "top-members": Report(
        (
            "workspace",
            "member",
            "user",
            "calls",
            "errors",
            "denied",
            "rate_limited",
            "avg_ms",
            "last_call",
        ),
        (
            "workspace",
            "member",
            "user",
            "calls",
            "errors",
            "denied",
            "rate_limited",
            "avg_ms",
            "last_call",
        ),
        lambda r, w, args: _calllog.top_members(r, w, _limit(args)),
        top=True,
    ),
    "top-tools": Report(
        (
            "workspace",
            "tool",
            "server",
            "calls",
            "errors",
            "denied",
            "members",
            "avg_ms",
            "last_call",
        ),
        (
            "workspace",
            "tool",
            "server",
            "calls",
            "errors",
            "denied",
            "members",
            "avg_ms",
            "last_call",
        ),
        lambda r, w, args: _calllog.top_tools(r, w, _limit(args)),
        top=True,
    ),
    "errors": Report(
        ("count", "outcome", "workspace", "server", "target", "error", "members", "last_seen"),
        ("count", "outcome", "workspace", "server", "target", "members", "last_seen", "error"),
        lambda r, w, args: _calllog.errors(r, w, _limit(args)),
        top=True,
    ),
    "member": Report(
        _records.FIELDS,
        ("time", "workspace", "method", "target", "outcome", "latency_ms", "error"),
        _calls,
    ),
    "calls": Report(
        _records.FIELDS,
        (
            "time",
            "workspace",
            "member",
            "method",
            "target",
            "outcome",
            "latency_ms",
            "source_revision",
            "error",
        ),
        _calls,
    ),
}
_TIMES = frozenset({"time", "last_call", "last_seen"})


def _limit(args: argparse.Namespace) -> int | None:
    if args.limit is not None:
        return max(0, int(args.limit))
    return TOP_DEFAULT if REPORTS[args.report].top else None


def _store(args: argparse.Namespace) -> str | Path | None:
    """The PostgreSQL URL or the SQLite file to read; None (after saying why) when the
    default file does not exist."""
    url = args.records_url or os.environ.get("MCPYARD_RECORDS_URL")
    if url and not args.db:
        return str(url)
    path: Path = args.db or default_db()
    if not path.is_file():
        print(
            f"mcpyard analytics: no call records at {path}: the gateway writes calls.db "
            "in its state directory (serve --state-dir); name the file with --db, or a "
            "PostgreSQL store with --records-url",
            file=sys.stderr,
        )
        return None
    return path


def _window(args: argparse.Namespace) -> _calllog.Window:
    return _calllog.Window(since=args.since, until=args.until,
                           workspaces=(args.workspace,) if args.workspace else None)


def run(args: argparse.Namespace) -> int:
    store = _store(args)
    if store is None:
        return 1
    if args.report == "export":
        return _export(store, args)
    report = REPORTS[args.report]
    try:
        with _calllog.open_reader(store) as reader:
            rows = report.query(reader, _window(args), args)
    except (sqlite3.Error, errors.MCPyardError) as exc:
        print(f"mcpyard analytics: {_name(store)}: {exc}", file=sys.stderr)
        return 1
    records = [
        {
            k: (_records.iso(v) if k in _TIMES and v is not None else v)
            for k, v in zip(report.columns, row, strict=True)
        }
        for row in rows
    ]
    output = args.output or "table"
    if output == "json":
        print(json.dumps(records, indent=2, ensure_ascii=False))
    elif output == "csv":
        writer = csv.DictWriter(sys.stdout, report.columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)
    elif not records:
        print("No call records found.", file=sys.stderr)
    else:
        print(table(report.table, records), end="")
    return 0


def _name(store: str | Path) -> str:
    return _pgrecords.safe_url(store) if isinstance(store, str) else str(store)


def _export(store: str | Path, args: argparse.Namespace) -> int:
    """Every record of the range, streamed: one JSON object a line, or CSV with a header."""
    fmt = args.format or "jsonl"
    try:
        with _calllog.open_reader(store) as reader:
            sql, params = _calllog.calls_sql(_window(args), limit=args.limit)
            _calllog.write_records(sys.stdout, fmt, reader.stream(sql, params))
    except (sqlite3.Error, errors.MCPyardError) as exc:
        print(f"mcpyard analytics export: {_name(store)}: {exc}", file=sys.stderr)
        return 1
    return 0


def table(columns: Sequence[str], rows: Sequence[Mapping[str, object]]) -> str:
    """Aligned columns under upper-case headers, as kubectl prints them."""
    cells = [[c.upper() for c in columns]]
    cells += [[_cell(row[c]) for c in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    return "".join(
        "   ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() + "\n"
        for line in cells
    )


def _cell(value: object) -> str:
    if value is None:
        return "<none>"
    if isinstance(value, float):
        return f"{value:.1f}"
    return " ".join(str(value).split())  # one line per row, whatever an error message holds
