"""Call records: one :class:`CallRecord` per request a member makes, kept off the hot path.

The router builds a record when a request ends and hands it to :meth:`Recorder.record`,
which only appends to a bounded queue (O(1), never blocks, never raises). A background task
writes batches to every :class:`RecordSink`: :class:`SQLiteSink` (the default call log, read
by ``mcpyard analytics``) and the JSON-lines audit sink of :mod:`._audit`. When the queue is
full a record is dropped and counted, never waited for: the gateway serves first. A sink
that fails (the state folder's disk full) is retried with backoff until it takes its batch,
while new records wait in the queue: nothing is lost unless the queue fills, and /readyz,
``mcpyard_records_sink_up`` and the log say so meanwhile.

A record never holds a secret: no token, no header, no argument or result. Free text (the
error, the target a client named) passes :func:`redact`, which blanks anything shaped like a
member token, a bearer credential or a URL query string.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import operator
import re
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, Protocol, get_args, runtime_checkable

from mcpyard import errors
from mcpyard.gateway.oauth import _schema as _oauth_schema

log = logging.getLogger("mcpyard.gateway")

Era = Literal["handshake", "modern", "legacy-sse"]
Outcome = Literal[
    "ok",
    "tool_error",
    "upstream_error",
    "denied",
    "rate_limited",
    "auth_failure",
    "invalid_request",
]
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)

ERROR_MAX = 300
"""Characters of an error message kept in a record."""
TARGET_MAX = 200
"""Characters of a target name kept (a client may send any name)."""

_SECRETS = re.compile(
    r"mwt_[A-Za-z0-9_-]+"  # member tokens
    r"|(?i:bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"  # credentials of an Authorization value
    r"|\?[^\s\"'<>]+"  # URL query strings (api keys live there)
)


def redact(text: str, limit: int = ERROR_MAX) -> str:
    """``text`` without token-, credential- or query-string-shaped parts, cut to ``limit``."""
    text = _SECRETS.sub("[redacted]", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One request of one member, as the router saw it end."""

    time: float
    """When the request arrived, seconds since the epoch (UTC)."""
    workspace: str
    member: str | None
    """The member's name; None when no member could be authenticated."""
    user: str | None
    """The member's user (``alice@example.com``)."""
    server: str | None
    """The slug of the server the request went to; None when it reached none."""
    method: str
    """The JSON-RPC method: tools/call, resources/read, prompts/get, tools/list, ..."""
    target: str | None
    """The tool, resource or prompt name as the client sent it."""
    era: Era
    outcome: Outcome
    error: str | None = None
    """A short message when the outcome is not ok; never a secret."""
    latency_ms: float = 0.0
    request_bytes: int = 0
    response_bytes: int = 0
    config_revision: str = ""
    """The WorkspaceConfig.revision that served the request."""
    git_commit: str | None = None
    """The commit of the manifests' git checkout, when ``serve`` runs on one."""
    source_revision: str | None = None
    """Where the configuration came from (WorkspaceConfig.source.revision): the checkout's
    commit (``<sha>-dirty`` with uncommitted changes) under ``serve``; in a cluster the
    revision the Flux Kustomization or Argo CD Application applied, or the
    ``mcpyard.io/revision`` annotation. None when unknown."""
    oauth_client: str | None = None
    """The OAuth client that made the call (its client_id), when it used an OAuth token."""
    oauth_grant: str | None = None
    """The OAuth grant whose access token made the call (``mcpyard token revoke --grant``)."""

    def __post_init__(self) -> None:
        # Free text only; the cheap `in` tests keep the common case off the regex.
        if self.error is not None:
            object.__setattr__(self, "error", redact(self.error))
        target = self.target
        if target is not None and (
            len(target) > TARGET_MAX or "mwt_" in target or "?" in target or " " in target
        ):
            object.__setattr__(self, "target", redact(target, TARGET_MAX))


FIELDS: tuple[str, ...] = tuple(f.name for f in fields(CallRecord))


def iso(epoch: float) -> str:
    """RFC 3339 in UTC with milliseconds: ``2025-06-01T12:00:00.123Z``."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


class RecordSink(Protocol):
    async def write(self, records: Sequence[CallRecord]) -> None: ...

    async def close(self) -> None: ...


@runtime_checkable
class Prunable(Protocol):
    """A sink that keeps records and can forget old ones (retention)."""

    async def prune(self, before: float) -> int: ...


# --- SQLite -------------------------------------------------------------------------------

SCHEMA_VERSION = 3
"""``PRAGMA user_version`` of a call database this code writes and reads."""
TABLE = "calls"
MIGRATIONS: dict[int, str] = {
    1: f"ALTER TABLE {TABLE} ADD COLUMN source_revision TEXT;",
    2: _oauth_schema.migration("REAL"),
}
"""The statement that takes a database from schema N to N+1 (the gateway runs them at start;
``mcpyard analytics`` reads an older schema as it is, the newer columns as NULL)."""

_SCHEMA = f"""
CREATE TABLE {TABLE} (
    id INTEGER PRIMARY KEY,
    time REAL NOT NULL,
    workspace TEXT NOT NULL,
    member TEXT,
    user TEXT,
    server TEXT,
    method TEXT NOT NULL,
    target TEXT,
    era TEXT NOT NULL,
    outcome TEXT NOT NULL,
    error TEXT,
    latency_ms REAL NOT NULL,
    request_bytes INTEGER NOT NULL,
    response_bytes INTEGER NOT NULL,
    config_revision TEXT NOT NULL,
    git_commit TEXT,
    source_revision TEXT,
    oauth_client TEXT,
    oauth_grant TEXT
);
CREATE INDEX {TABLE}_time ON {TABLE} (time);
CREATE INDEX {TABLE}_member ON {TABLE} (member, time);
CREATE INDEX {TABLE}_target ON {TABLE} (target, time);
{_oauth_schema.tables("REAL")}
PRAGMA user_version = {SCHEMA_VERSION};
"""
_row = operator.attrgetter(*FIELDS)
_INSERT = f"INSERT INTO {TABLE} ({', '.join(FIELDS)}) VALUES ({', '.join('?' for _ in FIELDS)})"


def check_schema(conn: sqlite3.Connection, path: Path) -> int:
    """The schema version of the call table (1 to SCHEMA_VERSION); 0 when the database is
    empty."""
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise errors.MCPyardError(
            f"{path}: call records of schema {version}, newer than this mcpyard reads "
            f"({SCHEMA_VERSION}); upgrade mcpyard"
        )
    if version >= 1:
        return version
    tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    if tables:
        raise errors.MCPyardError(f"{path}: not a database of mcpyard call records")
    return 0


def migrate(conn: sqlite3.Connection, version: int) -> None:
    """Bring a call database of schema ``version`` to SCHEMA_VERSION, in one transaction."""
    steps = "".join(MIGRATIONS[v] for v in range(version, SCHEMA_VERSION))
    conn.executescript(f"BEGIN; {steps} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")


def selected(conn: sqlite3.Connection) -> str:
    """The SELECT list of every record field, in FIELDS order; a field newer than the
    database's schema reads as NULL."""
    have = {row[1] for row in conn.execute(f"PRAGMA table_info({TABLE})")}
    return ", ".join(f if f in have else f"NULL AS {f}" for f in FIELDS)


def open_sqlite(path: Path, *, check_same_thread: bool = True) -> sqlite3.Connection:
    """A connection to the call database at ``path``, created or migrated to SCHEMA_VERSION
    (the OAuth grants share it: :mod:`mcpyard.gateway.oauth._store`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, check_same_thread=check_same_thread)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        # NORMAL is durable against a process crash in WAL mode (not a power cut), and
        # spares an fsync per batch.
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA busy_timeout = 5000")
        version = check_schema(conn, path)
        if not version:
            conn.executescript(f"BEGIN; {_SCHEMA} COMMIT;")
        elif version < SCHEMA_VERSION:
            migrate(conn, version)
            log.info("call records %s: schema %d -> %d", path, version, SCHEMA_VERSION)
    except BaseException:
        conn.close()
        raise
    return conn


class SQLiteSink:
    """The call log in one SQLite file (WAL, so ``mcpyard analytics`` reads while it writes).

    Every statement runs on one dedicated thread that owns the connection: the event loop
    never waits for the disk. Opening (and creating the schema) happens in the constructor,
    so a bad path fails at start-up.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mcpyard-records")
        self._conn: sqlite3.Connection | None = None
        try:
            self._thread.submit(self._open).result()
        except BaseException:
            self._thread.shutdown()
            raise

    def _open(self) -> None:
        self._conn = open_sqlite(self.path)

    def _write(self, records: Sequence[CallRecord]) -> None:
        assert self._conn is not None, "write after close"
        with self._conn:  # one transaction per batch
            self._conn.executemany(_INSERT, map(_row, records))

    async def write(self, records: Sequence[CallRecord]) -> None:
        await asyncio.get_running_loop().run_in_executor(self._thread, self._write, records)

    def _prune(self, before: float) -> int:
        assert self._conn is not None, "prune after close"
        with self._conn:
            return self._conn.execute(f"DELETE FROM {TABLE} WHERE time < ?", (before,)).rowcount

    async def prune(self, before: float) -> int:
        """Delete the records older than ``before`` (seconds since the epoch)."""
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._prune,
                                                                 before)

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._thread, self._close)
        self._thread.shutdown()


# --- the recorder -------------------------------------------------------------------------


class Recorder:
    """Takes records off the hot path and writes them in batches to every sink.

    ``record()`` appends to a queue of at most ``max_queue`` records; a batch is written when
    ``batch_size`` records wait or ``interval`` seconds after the first one arrived, whichever
    comes first. ``close()`` writes everything still queued, then closes the sinks.
    """

    def __init__(
        self,
        sinks: Iterable[RecordSink] | Callable[[], Iterable[RecordSink]],
        *,
        max_queue: int = 50_000,
        batch_size: int = 500,
        interval: float = 0.2,
        on_drop: Callable[[], None] | None = None,
        on_state: Callable[[bool], None] | None = None,
        retry_initial: float = 0.2,
        retry_max: float = 5.0,
    ) -> None:
        self._open_sinks = sinks if callable(sinks) else None
        """Opens the sinks (blocking) in :meth:`open`: a recorder made before the event loop
        runs, whose bad path or URL still fails at start-up."""
        self.sinks: tuple[RecordSink, ...] = () if callable(sinks) else tuple(sinks)
        self.max_queue = max_queue
        self.batch_size = batch_size
        self.interval = interval
        self.dropped = 0
        """Records dropped because the queue was full (or the recorder closed)."""
        self._on_drop = on_drop
        self._on_state = on_state
        """Told False when a sink starts failing, True when every sink writes again."""
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.failures: dict[RecordSink, str] = {}
        """Sinks failing now, with why (free of secrets: sink errors name files, not data)."""
        self._queue: deque[CallRecord] = deque()
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    async def open(self) -> None:
        """Open the sinks given as a function (in a thread: it touches files or the network)."""
        if self._open_sinks is not None:
            self.sinks = tuple(await asyncio.to_thread(self._open_sinks))
            self._open_sinks = None

    def start(self) -> None:
        """Start the writer task (on the running event loop)."""
        assert self._task is None, "started twice"
        self._task = asyncio.get_running_loop().create_task(self._run(), name="mcpyard-records")

    async def __aenter__(self) -> Recorder:
        await self.open()
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def record(self, record: CallRecord) -> None:
        """Queue one record; drop and count it when the queue is full. Never blocks."""
        queue = self._queue
        if self._closing or len(queue) >= self.max_queue:
            self.dropped += 1
            if self._on_drop is not None:
                self._on_drop()
            return
        queue.append(record)
        # Wake the writer on the first record (it then gathers a batch for `interval`) and
        # when a full batch waits.
        if len(queue) == 1 or len(queue) >= self.batch_size:
            self._wake.set()

    @property
    def queued(self) -> int:
        return len(self._queue)

    async def _run(self) -> None:
        queue = self._queue
        while True:
            if not queue:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            if len(queue) < self.batch_size and not self._closing:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.interval)
            batch = [queue.popleft() for _ in range(min(self.batch_size, len(queue)))]
            await self._write(batch)

    async def _write(self, batch: list[CallRecord]) -> None:
        """Write ``batch`` to every sink; a sink that fails (a full disk, a database gone)
        is retried with backoff until it takes the batch, so nothing is lost while new
        records wait in the bounded queue (counted as dropped only once it is full). At
        close, a sink that still fails loses what it could not write, and says how much."""
        pending = list(self.sinks)
        delay = self.retry_initial
        last_try = False
        while pending:
            results = await asyncio.gather(*(sink.write(batch) for sink in pending),
                                           return_exceptions=True)
            failed = []
            for sink, result in zip(pending, results, strict=True):
                if isinstance(result, asyncio.CancelledError):
                    raise result
                if isinstance(result, BaseException):
                    failed.append(sink)
                    self._failing(sink, result)
                else:
                    self._recovered(sink)
            pending = failed
            if not pending:
                return
            if last_try:
                for sink in pending:
                    log.error("call records: %s lost %d records at shutdown: %s",
                              type(sink).__name__, len(batch), self.failures[sink])
                self.dropped += len(batch)
                if self._on_drop is not None:
                    for _ in batch:
                        self._on_drop()
                return
            if not self._closing:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)  # close() cuts it short
                delay = min(self.retry_max, delay * 2)
            last_try = self._closing

    def _failing(self, sink: RecordSink, exc: BaseException) -> None:
        reason = f"{type(sink).__name__}: {exc.__class__.__name__}: {exc}"[:ERROR_MAX]
        if sink not in self.failures:
            log.error("call records: %s; records wait in memory (%d queued, at most %d) and "
                      "are retried", reason, len(self._queue), self.max_queue)
            if self._on_state is not None:
                self._on_state(False)
        self.failures[sink] = reason

    def _recovered(self, sink: RecordSink) -> None:
        if self.failures.pop(sink, None) is not None:
            log.warning("call records: %s writes again", type(sink).__name__)
            if self._on_state is not None and not self.failures:
                self._on_state(True)

    def status(self) -> dict[str, object]:
        """For /readyz: ok, or degraded with why and how many records wait."""
        if not self.failures:
            return {"status": "ok"}
        return {"status": "degraded", "reason": "; ".join(sorted(self.failures.values())),
                "queued": len(self._queue), "dropped": self.dropped}

    async def close(self) -> None:
        """Write every queued record, then close the sinks (graceful shutdown)."""
        self._closing = True
        self._wake.set()
        self._stop.set()
        for sink in self.sinks:  # a sink that retries (PostgreSQL) now gives up in time
            closing = getattr(sink, "closing", None)
            if closing is not None:
                closing()
        try:
            if self._task is not None:
                await self._task
            elif self._queue:  # never started: write what was queued anyway
                while self._queue:
                    n = min(self.batch_size, len(self._queue))
                    await self._write([self._queue.popleft() for _ in range(n)])
        finally:
            for sink in self.sinks:
                try:
                    await sink.close()
                except Exception as exc:
                    log.error("call records: closing %s failed: %s", type(sink).__name__, exc)


    async def prune(self, before: float) -> int:
        """Forget the records older than ``before`` in every sink that keeps them."""
        deleted = 0
        for sink in self.sinks:
            if isinstance(sink, Prunable):
                try:
                    deleted += await sink.prune(before)
                except Exception as exc:  # the next round tries again
                    log.error("call records: pruning %s failed: %s", type(sink).__name__,
                              redact(str(exc)))
        return deleted

    async def keep_for(self, days: float, *, interval: float = 3600.0,
                       clock: Callable[[], float] = time.time) -> None:
        """Prune records older than ``days`` now and every ``interval`` seconds (a task)."""
        while True:
            deleted = await self.prune(clock() - days * 86400.0)
            if deleted:
                log.info("call records: %d older than %g days deleted", deleted, days)
            await asyncio.sleep(interval)


# --- git ----------------------------------------------------------------------------------


def git_commit(path: str | Path) -> str | None:
    """The HEAD commit of the git checkout holding ``path``, or None (no error).

    Reads ``.git`` directly (HEAD, loose refs, packed-refs, worktrees), so it works where no
    ``git`` binary is installed. Read it once at load, not per request.
    """
    try:
        gitdir = find_gitdir(Path(path).resolve())
        if gitdir is None:
            return None
        head = (gitdir / "HEAD").read_text().strip()
        if not head.startswith("ref:"):
            return head if _is_sha(head) else None
        ref = head.removeprefix("ref:").strip()
        common = gitdir
        if (gitdir / "commondir").is_file():  # a linked worktree shares refs with its main
            common = (gitdir / (gitdir / "commondir").read_text().strip()).resolve()
        for base in (gitdir, common):
            loose = base / ref
            if loose.is_file():
                sha = loose.read_text().strip()
                return sha if _is_sha(sha) else None
        packed = common / "packed-refs"
        if packed.is_file():
            for line in packed.read_text().splitlines():
                sha, _, name = line.partition(" ")
                if name == ref and _is_sha(sha):
                    return sha
    except (OSError, UnicodeDecodeError):
        return None
    return None  # an unborn branch (no commit yet)


def find_gitdir(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        dot_git = folder / ".git"
        if dot_git.is_dir():
            return dot_git
        if dot_git.is_file():  # a worktree or submodule: "gitdir: <path>"
            text = dot_git.read_text().strip()
            if text.startswith("gitdir:"):
                return (folder / text.removeprefix("gitdir:").strip()).resolve()
            return None
    return None


def _is_sha(text: str) -> bool:
    return len(text) in (40, 64) and all(c in "0123456789abcdef" for c in text)
