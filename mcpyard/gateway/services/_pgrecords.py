"""Call records in PostgreSQL: one database for every gateway replica (optional extra ``postgres``).

:class:`PostgresSink` is a :class:`~._records.RecordSink`: the recorder hands it
batches off the hot path, and each batch is one transaction. The table ``calls`` has the very
columns of the SQLite call log (:data:`~._records.FIELDS`, plus ``id``), so the
queries of ``mcpyard analytics`` and the console run on both.

When the database is away (a restart, a failover), a batch is retried with backoff until it is
written: the recorder's queue holds the records meanwhile (bounded; beyond it records are
dropped and counted). A batch carries a random id, inserted in the same transaction into
``call_batches``: a retry after a commit whose answer was lost finds its id there and writes
nothing, so no record is written twice.

The schema is versioned: :data:`MIGRATIONS` is a list of steps, each applied once in its own
transaction under an advisory lock (two gateways starting together migrate once), and the
version is kept in ``mcpyard_schema``. Adding a column is appending one step.
"""

from __future__ import annotations

import asyncio
import logging
import operator
import re
import uuid
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING

from mcpyard import errors
from mcpyard.gateway.oauth import _schema as _oauth_schema
from mcpyard.gateway.services import _records
from mcpyard.mcp.backoff import Backoff

if TYPE_CHECKING:  # psycopg is the postgres extra's: imported when a URL asks for it
    import psycopg
    from psycopg.rows import TupleRow

    Connection = psycopg.Connection[TupleRow]

log = logging.getLogger("mcpyard.gateway")

MIGRATIONS: tuple[str, ...] = (
    # 1: the call table of SQLite schema 1, column for column ("user" is a keyword here).
    f"""
    CREATE TABLE {_records.TABLE} (
        id BIGSERIAL PRIMARY KEY,
        time DOUBLE PRECISION NOT NULL,
        workspace TEXT NOT NULL,
        member TEXT,
        "user" TEXT,
        server TEXT,
        method TEXT NOT NULL,
        target TEXT,
        era TEXT NOT NULL,
        outcome TEXT NOT NULL,
        error TEXT,
        latency_ms DOUBLE PRECISION NOT NULL,
        request_bytes BIGINT NOT NULL,
        response_bytes BIGINT NOT NULL,
        config_revision TEXT NOT NULL,
        git_commit TEXT
    );
    CREATE INDEX {_records.TABLE}_time ON {_records.TABLE} (time);
    CREATE INDEX {_records.TABLE}_member ON {_records.TABLE} (member, time);
    CREATE INDEX {_records.TABLE}_target ON {_records.TABLE} (target, time);
    CREATE TABLE call_batches (id UUID PRIMARY KEY, time DOUBLE PRECISION NOT NULL);
    CREATE INDEX call_batches_time ON call_batches (time);
    """,
    # 2: the revision of the manifests that served the call (SQLite schema 2).
    f"ALTER TABLE {_records.TABLE} ADD COLUMN source_revision TEXT;",
    # 3: which OAuth client and grant made a call, and the OAuth grants (SQLite schema 3).
    _oauth_schema.migration("DOUBLE PRECISION"),
)
"""Schema steps in order; step ``i`` (0-based) brings the database to version ``i + 1``."""
SCHEMA_VERSION = len(MIGRATIONS)
_LOCK = 0x6D6370796172  # "mcpyar": the advisory lock key of migrations

_COLUMNS = ", ".join('"user"' if f == "user" else f for f in _records.FIELDS)
_INSERT = (f"INSERT INTO {_records.TABLE} ({_COLUMNS}) "
           f"VALUES ({', '.join('%s' for _ in _records.FIELDS)})")
_row = operator.attrgetter(*_records.FIELDS)
_PASSWORD = re.compile(r"(?<=://)([^:/@]*):[^@/]*@")


def safe_url(url: str) -> str:
    """``url`` without its password and query string: what a log or an error may show."""
    return _PASSWORD.sub(r"\1:***@", url.split("?", 1)[0])


def is_postgres(url: str | None) -> bool:
    return url is not None and url.split(":", 1)[0] in ("postgres", "postgresql")


def _psycopg() -> ModuleType:
    try:
        import psycopg
    except ImportError:  # pragma: no cover - depends on the install
        raise errors.MCPyardError(
            "a postgresql:// records URL needs the postgres extra: pip install 'mcpyard[postgres]'"
        ) from None
    return psycopg


def migrate(conn: Connection, url: str) -> None:
    """Bring the database at ``conn`` (a sync psycopg connection, autocommit) to
    :data:`SCHEMA_VERSION`; refuse one newer than this code."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
        conn.execute("CREATE TABLE IF NOT EXISTS mcpyard_schema (version INTEGER NOT NULL)")
        row = conn.execute("SELECT version FROM mcpyard_schema").fetchone()
        version = row[0] if row else 0
        if row is None:
            conn.execute("INSERT INTO mcpyard_schema VALUES (0)")
        if version > SCHEMA_VERSION:
            raise errors.MCPyardError(
                f"{safe_url(url)}: call records of schema {version}, newer than this mcpyard "
                f"reads ({SCHEMA_VERSION}); upgrade mcpyard")
        for step in range(version, SCHEMA_VERSION):
            conn.execute(MIGRATIONS[step])
            conn.execute("UPDATE mcpyard_schema SET version = %s", (step + 1,))
            log.info("call records: %s migrated to schema %d", safe_url(url), step + 1)


def check_schema(conn: Connection, url: str) -> bool:
    """True when the database holds the call table of this code; False when it has none."""
    row = conn.execute("SELECT to_regclass('mcpyard_schema')").fetchone()
    assert row is not None  # a SELECT without FROM: always one row
    if row[0] is None:
        return False
    version = conn.execute("SELECT version FROM mcpyard_schema").fetchone()
    if version is None or version[0] == 0:
        return False
    if version[0] > SCHEMA_VERSION:
        raise errors.MCPyardError(
            f"{safe_url(url)}: call records of schema {version[0]}, newer than this mcpyard "
            f"reads ({SCHEMA_VERSION}); upgrade mcpyard")
    return True


def connect(url: str, *, read_only: bool = False) -> Connection:
    """A sync connection (autocommit), with errors that never show the password."""
    psycopg = _psycopg()
    try:
        conn: Connection = psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        raise errors.MCPyardError(f"{safe_url(url)}: {_clean(exc, url)}") from None
    if read_only:
        conn.read_only = True
    return conn


def _clean(exc: BaseException, url: str) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return _records.redact(text.replace(url, safe_url(url)))


class PostgresSink:
    """Writes batches of call records into PostgreSQL; retries a batch until it is written.

    The constructor (blocking) connects and migrates, so a wrong URL or an unreachable
    database fails at start-up with a clear message. Writes use one async connection,
    re-opened after any failure.
    """

    def __init__(self, url: str, *, retry_max: float = 5.0, close_timeout: float = 30.0) -> None:
        self.url = url
        self.retry_max = retry_max
        self.close_timeout = close_timeout
        self.written = 0
        self._psycopg = _psycopg()
        conn = connect(url)
        try:
            migrate(conn, url)
        except self._psycopg.Error as exc:
            raise errors.MCPyardError(f"{safe_url(url)}: {_clean(exc, url)}") from None
        finally:
            conn.close()
        self._conn: psycopg.AsyncConnection[TupleRow] | None = None
        self._closing: float | None = None

    def __repr__(self) -> str:
        return f"PostgresSink({safe_url(self.url)!r})"

    async def _connection(self) -> psycopg.AsyncConnection[TupleRow]:
        if self._conn is None or self._conn.closed:
            self._conn = await self._psycopg.AsyncConnection.connect(
                self.url, autocommit=True, connect_timeout=10)
        return self._conn

    async def write(self, records: Sequence[_records.CallRecord]) -> None:
        if not records:
            return
        batch = uuid.uuid4()
        delay = Backoff(0.05, self.retry_max)
        loop = asyncio.get_running_loop()
        while True:
            try:
                await self._write(batch, records)
                return
            except self._psycopg.Error as exc:
                await self._drop_connection()
                if self._closing is not None and loop.time() > self._closing:
                    raise errors.MCPyardError(
                        f"{safe_url(self.url)}: gave up at shutdown: {_clean(exc, self.url)}"
                    ) from None
                log.warning("call records: %s: %s; %d records wait, retrying in %.1fs",
                            safe_url(self.url), _clean(exc, self.url), len(records), delay.delay)
                await delay.sleep()

    async def _write(self, batch: uuid.UUID, records: Sequence[_records.CallRecord]) -> None:
        conn = await self._connection()
        async with conn.transaction(), conn.cursor() as cur:
            await cur.execute(
                "INSERT INTO call_batches (id, time) VALUES (%s, %s) "
                "ON CONFLICT (id) DO NOTHING RETURNING id", (batch, records[0].time))
            if await cur.fetchone() is None:
                return  # written by an attempt whose commit answer was lost
            await cur.executemany(_INSERT, [_row(r) for r in records])
        self.written += len(records)

    async def prune(self, before: float) -> int:
        """Delete the records older than ``before`` (seconds since the epoch). On a connection
        of its own: a transaction of the writer's must never hold this one, nor wait for it."""
        conn = await self._psycopg.AsyncConnection.connect(self.url, autocommit=True,
                                                           connect_timeout=10)
        async with conn, conn.transaction(), conn.cursor() as cur:
            await cur.execute(f"DELETE FROM {_records.TABLE} WHERE time < %s", (before,))
            deleted: int = cur.rowcount
            await cur.execute("DELETE FROM call_batches WHERE time < %s", (before,))
        return deleted

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.close()
            except Exception as exc:  # already broken: nothing more to lose
                log.debug("call records: closing a broken connection: %s", exc)

    def closing(self) -> None:
        """Shutdown has begun: retry for at most ``close_timeout`` more seconds."""
        self._closing = asyncio.get_running_loop().time() + self.close_timeout

    async def close(self) -> None:
        await self._drop_connection()
