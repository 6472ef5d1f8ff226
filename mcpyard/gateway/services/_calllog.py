"""Reading the call log, SQLite or PostgreSQL, with one set of queries (analytics, console).

:func:`open_reader` opens either store read-only; every query below is written once, in the
SQL both databases speak (``count(*) FILTER (WHERE ...)``, ``"user"`` quoted, ``?``
placeholders that the PostgreSQL reader turns into ``%s``). What the two disagree on (integer
division of a time into buckets) is one entry of :data:`_DIALECTS`. Percentiles are computed
here from the latencies alone (SQLite has no percentile function).

Blocking: call it from a thread (``asyncio.to_thread``) inside the gateway.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import re
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal, TypeAlias

from mcpyard.gateway.services import _pgrecords, _records

Param: TypeAlias = str | int | float | None
"""A value bound to a ``?`` of a query."""
Value: TypeAlias = Any
"""A column's value as the drivers return it (sqlite3 and psycopg leave it untyped)."""
Row: TypeAlias = tuple[Value, ...]
"""A row as the drivers return it."""

T = _records.TABLE
ERRORS = ("tool_error", "upstream_error", "invalid_request")
"""Outcomes that count as errors (a refusal is not an error of the gateway or a server)."""
_ERRORS_SQL = "('tool_error', 'upstream_error', 'invalid_request')"
_COLUMNS = ", ".join('"user"' if f == "user" else f for f in _records.FIELDS)
_REVISIONS = ("config_revision", "source_revision", "git_commit")
_FROM = re.compile(rf"\bFROM {T}\b")
_DIALECTS = {
    "sqlite": {"bucket": "CAST(time / ? AS INTEGER)"},
    "postgres": {"bucket": "CAST(floor(time / ?) AS BIGINT)"},
}


class Reader:
    """One read-only connection to a call log; ``empty`` when it holds no call table yet."""

    # Untyped: a sqlite3 or a psycopg connection, used through the DB-API methods both have.
    def __init__(self, conn: Any, dialect: Literal["sqlite", "postgres"], name: str,
                 empty: bool) -> None:
        self.conn = conn
        self.dialect = dialect
        self.name = name
        """The store as a message may name it (a path, or a URL without its password)."""
        self.empty = empty
        self._table = T
        if dialect == "sqlite" and not empty:
            # A file of an older schema, read without upgrading it: the fields it lacks
            # read as NULL.
            fields = _records.selected(conn)
            if "NULL AS" in fields:
                self._table = f"(SELECT id, {fields} FROM {T}) AS {T}"

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.conn.close()

    def _sql(self, sql: str) -> str:
        if self.dialect == "postgres":
            return sql.replace("?", "%s")
        return _FROM.sub(f"FROM {self._table}", sql) if self._table != T else sql

    def fetch(self, sql: str, params: Sequence[Param] = ()) -> list[Row]:
        if self.empty:
            return []
        return [tuple(row) for row in self.conn.execute(self._sql(sql), params).fetchall()]

    def stream(self, sql: str, params: Sequence[Param] = ()) -> Iterator[Row]:
        """Rows one by one, never all in memory (an export of months of records)."""
        if self.empty:
            return
        if self.dialect == "postgres":
            with self.conn.transaction(), self.conn.cursor(name="mcpyard_export") as cur:
                cur.itersize = 2000
                cur.execute(self._sql(sql), params)
                yield from cur
        else:
            yield from self.conn.execute(self._sql(sql), params)

    def bucket(self) -> str:
        return _DIALECTS[self.dialect]["bucket"]


def open_reader(store: str | Path) -> Reader:
    """A reader of the SQLite file ``store`` or of the PostgreSQL database at URL ``store``.

    Raises :class:`mcpyard.errors.MCPyardError` (never showing a password) when the store is
    unreachable or holds something else."""
    if isinstance(store, str) and _pgrecords.is_postgres(store):
        pg = _pgrecords.connect(store, read_only=True)
        try:
            empty = not _pgrecords.check_schema(pg, store)
        except BaseException:
            pg.close()
            raise
        return Reader(pg, "postgres", _pgrecords.safe_url(store), empty)
    path = Path(store)
    # Read-only: a reader never creates or changes the gateway's database.
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        empty = not _records.check_schema(conn, path)
    except BaseException:
        conn.close()
        raise
    return Reader(conn, "sqlite", str(path), empty)


@dataclass(frozen=True)
class Window:
    """Which records a query looks at: a time range and equality filters."""

    since: float | None = None
    until: float | None = None
    workspaces: tuple[str, ...] | None = None
    """Only these workspaces (None: all); the console passes the admin's."""
    member: str | None = None
    server: str | None = None
    target: str | None = None
    outcome: str | None = None
    revision: str | None = None
    """Records whose configuration revision, source revision or git commit starts with this
    (what allowed a call: the audit trail's question)."""

    def where(self) -> tuple[str, list[Param]]:
        clauses: list[str] = ["true"]
        params: list[Param] = []
        if self.since is not None:
            clauses.append("time >= ?")
            params.append(self.since)
        if self.until is not None:
            clauses.append("time < ?")
            params.append(self.until)
        if self.workspaces is not None:
            if not self.workspaces:
                return "false", []
            clauses.append(f"workspace IN ({', '.join('?' for _ in self.workspaces)})")
            params.extend(self.workspaces)
        for column in ("member", "server", "target", "outcome"):
            value = getattr(self, column)
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if self.revision:
            prefix = re.sub(r"([\\%_])", r"\\\1", self.revision) + "%"
            clauses.append("(" + " OR ".join(f"{c} LIKE ? ESCAPE '\\'" for c in _REVISIONS)
                           + ")")
            params.extend([prefix] * len(_REVISIONS))
        return " AND ".join(clauses), params


def _limit(limit: int | None) -> str:
    return "" if limit is None else f" LIMIT {max(0, int(limit))}"


def _round(value: float | str | None) -> float | None:
    return None if value is None else round(float(value), 1)


def top_members(r: Reader, w: Window, limit: int | None) -> list[Row]:
    where, params = w.where()
    rows = r.fetch(f"""
        SELECT workspace, member, max("user"), count(*),
               count(*) FILTER (WHERE outcome IN {_ERRORS_SQL}),
               count(*) FILTER (WHERE outcome = 'denied'),
               count(*) FILTER (WHERE outcome = 'rate_limited'), avg(latency_ms), max(time)
        FROM {T} WHERE {where} AND member IS NOT NULL
        GROUP BY workspace, member ORDER BY count(*) DESC, workspace, member{_limit(limit)}""",
                   params)
    return [(*row[:7], _round(row[7]), row[8]) for row in rows]


def top_tools(r: Reader, w: Window, limit: int | None) -> list[Row]:
    where, params = w.where()
    rows = r.fetch(f"""
        SELECT workspace, target, max(server), count(*),
               count(*) FILTER (WHERE outcome IN {_ERRORS_SQL}),
               count(*) FILTER (WHERE outcome = 'denied'), count(DISTINCT member),
               avg(latency_ms), max(time)
        FROM {T} WHERE {where} AND method = 'tools/call' AND target IS NOT NULL
        GROUP BY workspace, target ORDER BY count(*) DESC, workspace, target{_limit(limit)}""",
                   params)
    return [(*row[:7], _round(row[7]), row[8]) for row in rows]


def errors(r: Reader, w: Window, limit: int | None) -> list[Row]:
    where, params = w.where()
    return r.fetch(f"""
        SELECT count(*), outcome, workspace, server, target, error,
               count(DISTINCT member), max(time)
        FROM {T} WHERE {where} AND outcome != 'ok'
        GROUP BY workspace, outcome, server, target, error
        ORDER BY count(*) DESC, max(time) DESC{_limit(limit)}""", params)


def calls_sql(w: Window, *, newest_first: bool = False,
              limit: int | None = None) -> tuple[str, list[Param]]:
    """Every field of the records in ``w``, oldest first (or newest first)."""
    where, params = w.where()
    order = "time DESC, id DESC" if newest_first else "time, id"
    return (f"SELECT {_COLUMNS} FROM {T} WHERE {where} ORDER BY {order}{_limit(limit)}",
            params)


def calls(r: Reader, w: Window, limit: int | None = None, *,
          newest_first: bool = False) -> list[dict[str, Value]]:
    sql, params = calls_sql(w, newest_first=newest_first, limit=limit)
    return [dict(zip(_records.FIELDS, row, strict=True)) for row in r.fetch(sql, params)]


def write_records(out: IO[str], fmt: str, rows: Iterable[Row]) -> int:
    """Write call records (rows of every field, in :data:`_records.FIELDS` order) to ``out``
    as ``jsonl`` (one object a line) or ``csv`` (with a header); the time in RFC 3339.
    Returns how many. Both ``mcpyard analytics export`` and the console's export use it."""
    writer = None
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(_records.FIELDS)
    n = 0
    for row in rows:
        record = dict(zip(_records.FIELDS, row, strict=True))
        record["time"] = _records.iso(record["time"])
        if writer is not None:
            writer.writerow(record.values())
        else:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
        n += 1
    return n


# --- the console's views ------------------------------------------------------------------

DIMENSIONS = {"member": "member", "tool": "target", "server": "server", "outcome": "outcome",
              "workspace": "workspace"}
"""What usage can be broken down by, and the column of each."""


@dataclass(frozen=True)
class Usage:
    """Calls, errors, refusals and latency percentiles of one group of records."""

    key: Value
    """The group's value: a member, tool, server, outcome, or a time bucket's start."""
    calls: int
    errors: int
    rate_limited: int
    denied: int
    p50: float | None
    p95: float | None
    p99: float | None


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) by nearest rank; None for no values. The rank is
    ceil(q * n) in integers, exactly as :func:`_percentiles_sql` computes it."""
    if not sorted_values:
        return None
    return round(sorted_values[_rank(round(q * 100), len(sorted_values)) - 1], 1)


def _rank(pct: int, n: int) -> int:
    return max(1, (pct * n + 99) // 100)


_NO_LATENCY = "('rate_limited', 'denied', 'auth_failure')"
"""Outcomes answered by the gateway itself: their latency is not a server's."""
_PERCENTILES = (50, 95, 99)


def _counts_sql(key: str, where: str) -> str:
    """Per group, in the database: calls, errors, rate-limit refusals, denials."""
    return f"""
        SELECT k, count(*), count(*) FILTER (WHERE outcome IN {_ERRORS_SQL}),
               count(*) FILTER (WHERE outcome = 'rate_limited'),
               count(*) FILTER (WHERE outcome = 'denied')
        FROM (SELECT {key} AS k, outcome FROM {T} WHERE {where}) AS g GROUP BY k"""


def _latencies_sql(key: str, where: str) -> str:
    """The server latencies of each record with its group."""
    return f"""
        SELECT {key}, latency_ms FROM {T} WHERE {where} AND outcome NOT IN {_NO_LATENCY}"""


def _usage(r: Reader, key: str, key_params: list[Param], w: Window) -> list[Usage]:
    """Usage per value of the SQL expression ``key``: the counts are grouped in the database
    (one row per group); the percentiles are computed here from the latencies alone."""
    where, params = w.where()
    groups = r.fetch(_counts_sql(key, where), [*key_params, *params])
    latencies: dict[Value, list[float]] = {k: [] for k, *_ in groups}
    if groups:
        for k, v in r.stream(_latencies_sql(key, where), [*key_params, *params]):
            found = latencies.get(k)
            if found is not None:  # else a record newer than the counts
                found.append(v)
    out: list[Usage] = []
    for k, calls_, errors_, limited, denied in groups:
        values = sorted(latencies[k])
        out.append(Usage(k, calls_, errors_, limited, denied,
                         *(percentile(values, p / 100) for p in _PERCENTILES)))
    return out


def usage_by(r: Reader, w: Window, dimension: str, limit: int = 50) -> list[Usage]:
    """Usage per member / tool / server / outcome, busiest first."""
    out = _usage(r, DIMENSIONS[dimension], [], w)
    out.sort(key=lambda u: (-u.calls, str(u.key)))
    return out[:limit]


def usage_over_time(r: Reader, w: Window, step: float) -> list[Usage]:
    """Usage per time bucket of ``step`` seconds (key: the bucket's start), oldest first;
    buckets without records are absent."""
    out = _usage(r, r.bucket(), [step], w)
    return sorted((dataclasses.replace(u, key=int(u.key) * step) for u in out),
                  key=lambda u: u.key)


def last_activity(r: Reader, w: Window) -> dict[str, float]:
    """The time of each member's last recorded request."""
    where, params = w.where()
    return {m: t for m, t in r.fetch(
        f"SELECT member, max(time) FROM {T} WHERE {where} AND member IS NOT NULL "
        "GROUP BY member", params)}
