"""``mcpyard analytics``: reports over the gateway's call records (the SQLite call log).

Reads the database the gateway writes (``calls.db`` in its state directory) without writing
to it; the gateway may keep serving meanwhile (WAL).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import sqlite3
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mcpyard import errors
from mcpyard.gateway import _records

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


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "analytics",
        help="reports over the gateway's per-member call records",
        description=(
            "Reports over the call records the gateway keeps: who calls what, how often, "
            "what fails. Reads the SQLite call log; the gateway may keep running."
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
    ):
        report = reports.add_parser(name, help=help_, description=help_[:1].upper() + help_[1:])
        if name == "member":
            report.add_argument("name", metavar="NAME", help="the Member's name")
        # The options work after REPORT too; SUPPRESS keeps a report's parser from
        # overwriting what was given before REPORT with its defaults.
        _options(report, argparse.SUPPRESS)
    parser.set_defaults(func=run)


def _options(parser: argparse.ArgumentParser, default: Any) -> None:
    parser.add_argument(
        "--db",
        type=Path,
        default=default,
        help="the call database (default: $MCPYARD_STATE_DIR/calls.db, else .mcpyard/calls.db)",
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
    query: Callable[[sqlite3.Connection, str, list[Any], argparse.Namespace], list[Any]]
    top: bool = False


_ERRORS = "('tool_error', 'upstream_error', 'invalid_request')"


def _top_members(
    conn: sqlite3.Connection, where: str, params: list[Any], args: argparse.Namespace
) -> list[Any]:
    return conn.execute(
        f"""
        SELECT workspace, member, max(user), count(*),
               sum(outcome IN {_ERRORS}), sum(outcome = 'denied'),
               sum(outcome = 'rate_limited'), round(avg(latency_ms), 1), max(time)
        FROM {_records.TABLE} WHERE {where} AND member IS NOT NULL
        GROUP BY workspace, member ORDER BY count(*) DESC, workspace, member LIMIT ?""",
        [*params, _limit(args)],
    ).fetchall()


def _top_tools(
    conn: sqlite3.Connection, where: str, params: list[Any], args: argparse.Namespace
) -> list[Any]:
    return conn.execute(
        f"""
        SELECT workspace, target, max(server), count(*), sum(outcome IN {_ERRORS}),
               sum(outcome = 'denied'), count(DISTINCT member), round(avg(latency_ms), 1),
               max(time)
        FROM {_records.TABLE}
        WHERE {where} AND method = 'tools/call' AND target IS NOT NULL
        GROUP BY workspace, target ORDER BY count(*) DESC, workspace, target LIMIT ?""",
        [*params, _limit(args)],
    ).fetchall()


def _errors(
    conn: sqlite3.Connection, where: str, params: list[Any], args: argparse.Namespace
) -> list[Any]:
    return conn.execute(
        f"""
        SELECT count(*), outcome, workspace, server, target, error,
               count(DISTINCT member), max(time)
        FROM {_records.TABLE} WHERE {where} AND outcome != 'ok'
        GROUP BY workspace, outcome, server, target, error
        ORDER BY count(*) DESC, max(time) DESC LIMIT ?""",
        [*params, _limit(args)],
    ).fetchall()


def _calls(
    conn: sqlite3.Connection, where: str, params: list[Any], args: argparse.Namespace
) -> list[Any]:
    if args.report == "member":
        where, params = f"{where} AND member = ?", [*params, args.name]
    # --limit N keeps the newest N records (a history's tail is what one looks for), shown
    # oldest first like the whole history.
    fields = ", ".join(_records.FIELDS)
    return conn.execute(
        f"SELECT {fields} FROM (SELECT id, {_records.selected(conn)} FROM {_records.TABLE} "
        f"WHERE {where} ORDER BY time DESC, id DESC LIMIT ?) ORDER BY time, id",
        [*params, _limit(args)],
    ).fetchall()


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
        _top_members,
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
        _top_tools,
        top=True,
    ),
    "errors": Report(
        ("count", "outcome", "workspace", "server", "target", "error", "members", "last_seen"),
        ("count", "outcome", "workspace", "server", "target", "members", "last_seen", "error"),
        _errors,
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


def _limit(args: argparse.Namespace) -> int:
    if args.limit is not None:
        return max(0, int(args.limit))
    return TOP_DEFAULT if REPORTS[args.report].top else -1  # SQLite: -1 is no limit


def run(args: argparse.Namespace) -> int:
    path: Path = args.db or default_db()
    if not path.is_file():
        print(
            f"mcpyard analytics: no call records at {path}: the gateway writes calls.db "
            "in its state directory (serve --state-dir); name the file with --db",
            file=sys.stderr,
        )
        return 1
    report = REPORTS[args.report]
    try:
        rows = _query(path, report, args)
    except (sqlite3.Error, errors.MCPyardError) as exc:
        print(f"mcpyard analytics: {path}: {exc}", file=sys.stderr)
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


def _query(path: Path, report: Report, args: argparse.Namespace) -> list[Any]:
    # Read-only: analytics never creates or changes the gateway's database.
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        if not _records.check_schema(conn, path):
            return []
        where, params = ["1"], []
        if args.since is not None:
            where.append("time >= ?")
            params.append(args.since)
        if args.until is not None:
            where.append("time < ?")
            params.append(args.until)
        if args.workspace:
            where.append("workspace = ?")
            params.append(args.workspace)
        return report.query(conn, " AND ".join(where), params, args)
    finally:
        conn.close()


def table(columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> str:
    """Aligned columns under upper-case headers, as kubectl prints them."""
    cells = [[c.upper() for c in columns]]
    cells += [[_cell(row[c]) for c in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    return "".join(
        "   ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() + "\n"
        for line in cells
    )


def _cell(value: Any) -> str:
    if value is None:
        return "<none>"
    if isinstance(value, float):
        return f"{value:.1f}"
    return " ".join(str(value).split())  # one line per row, whatever an error message holds
