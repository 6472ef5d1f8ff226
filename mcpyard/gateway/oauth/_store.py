"""Registered clients, authorization codes and grants, in the records database.

The call records' database (``STATE_DIR/calls.db`` or the ``--records-url`` PostgreSQL) holds
them (:mod:`._schema`), so that they survive a restart and every replica sharing the database
shares them. Every statement runs on the store's one thread (:meth:`Store.run`), which owns
the connection: Authlib's callbacks are blocking, and run there too. Secrets are stored as
SHA-256 hashes only; nothing here logs a value.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, TypeVarTuple

from mcpyard.gateway.services import _pgrecords, _records
from mcpyard.mcp.jsonrpc import JSONObject

if TYPE_CHECKING:
    from mcpyard.gateway.oauth._server import Client

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


ACCESS_PREFIX = "mat_"
"""Access tokens: ``mat_`` + 256 random bits (url-safe); refresh tokens ``mrt_``."""
REFRESH_PREFIX = "mrt_"


def digest(value: str) -> str:
    """How a code, token or client secret is stored: ``sha256:HEX``."""
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True)
class Holder:
    """The member a grant is for, as signed in."""

    workspace: str
    member: str
    user: str
    sign_in: str
    token_hash: str | None


@dataclass(frozen=True)
class Grant:
    """One consent of a member to one client for one workspace, with its current tokens.

    Refreshing rotates both tokens in place (the grant keeps its id); the refresh token it
    replaced is kept as ``previous_refresh_hash`` so that a replay of it is recognised (and
    revokes the grant, RFC 9700 4.14.2). Also what Authlib's refresh grant and revocation
    endpoint see as "the token" (its TokenMixin methods).
    """

    id: str
    workspace: str
    member: str
    user: str
    client_id: str
    client_name: str
    resource: str
    scope: str
    sign_in: str
    """How the member signed in: ``token`` (their mwt_ token) or ``oidc``."""
    token_hash: str | None
    """With token sign-in, the member's tokenHash then: a new token ends the grant."""
    created: float
    refreshed: float
    access_hash: str
    access_expires: float
    refresh_hash: str
    refresh_expires: float
    previous_refresh_hash: str | None = None
    revoked: float | None = None

    # -- Authlib's TokenMixin ------------------------------------------------------------

    def check_client(self, client: Client) -> bool:
        return bool(client.get_client_id() == self.client_id)

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return max(0, int(self.access_expires - time.time()))

    def is_expired(self) -> bool:
        return self.refresh_expires <= time.time()

    def is_revoked(self) -> bool:
        return self.revoked is not None

    def get_user(self) -> str:
        return self.member


_GRANT_FIELDS = tuple(f.name for f in fields(Grant))
_GRANT_COLUMNS = ", ".join('"user"' if f == "user" else f for f in _GRANT_FIELDS)
_SELECT = f"SELECT {_GRANT_COLUMNS} FROM oauth_grants"


class GrantStore(Protocol):
    """Where the OAuth state is: :class:`Store` (SQLite, PostgreSQL) or
    :class:`~mcpyard.gateway.oauth._redisstore.RedisStore`. Methods are blocking; ``run``
    runs one on the store's own thread."""

    async def run(self, work: Callable[[*Ts], T], *args: *Ts) -> T: ...
    def call(self, work: Callable[[*Ts], T], *args: *Ts) -> T: ...
    def close(self) -> None: ...
    def save_client(self, client_id: str, workspace: str, secret_hash: str | None,
                    metadata: JSONObject) -> None: ...
    def client(self, client_id: str,
               workspace: str) -> tuple[JSONObject, str | None] | None: ...
    def save_code(self, code: str, data: JSONObject, expires: float) -> None: ...
    def code(self, code: str) -> JSONObject | None: ...
    def take_code(self, code_hash: str) -> bool: ...
    def create(self, grant: Grant) -> None: ...
    def rotate(self, grant: Grant, *, access_hash: str, access_expires: float,
               refresh_hash: str, refresh_expires: float) -> bool: ...
    def by_access(self, access_hash: str) -> Grant | None: ...
    def by_refresh(self, refresh_hash: str) -> tuple[Grant, bool] | None: ...
    def get(self, grant_id: str) -> Grant | None: ...
    def grants(self, workspace: str | None = None,
               member: str | None = None) -> list[Grant]: ...
    def revoke(self, *, grant_id: str | None = None, workspace: str | None = None,
               member: str | None = None, client_id: str | None = None) -> list[str]: ...


def open_store(records: str | Path, redis_url: str | None = None) -> GrantStore:
    """The store of a deployment: its PostgreSQL records database if it has one, else its
    Redis if it has one (shared by the replicas), else the SQLite call database."""
    if isinstance(records, str) and _pgrecords.is_postgres(records):
        return Store(records)
    if redis_url:
        from mcpyard.gateway.oauth._redisstore import RedisStore

        return RedisStore(redis_url)
    return Store(records)


class Store:
    """The OAuth state of a gateway, in the SQLite file or PostgreSQL database at ``where``."""

    def __init__(self, where: str | Path) -> None:
        self.where = where
        self.postgres = isinstance(where, str) and _pgrecords.is_postgres(where)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mcpyard-oauth")
        self._conn: Any = None  # untyped: a sqlite3 or a psycopg connection
        try:
            self._thread.submit(self._open).result()
        except BaseException:
            self._thread.shutdown()
            raise

    def __repr__(self) -> str:
        where = _pgrecords.safe_url(str(self.where)) if self.postgres else str(self.where)
        return f"Store({where})"

    def _open(self) -> None:
        if self.postgres:
            conn = _pgrecords.connect(str(self.where))
            _pgrecords.migrate(conn, str(self.where))
            self._conn = conn
        else:
            self._conn = _records.open_sqlite(Path(self.where))
            self._conn.isolation_level = None  # autocommit, like the PostgreSQL connection

    async def run(self, work: Callable[[*Ts], T], *args: *Ts) -> T:
        """Run blocking ``work(*args)`` on the store's thread."""
        return await asyncio.get_running_loop().run_in_executor(self._thread, work, *args)

    def call(self, work: Callable[[*Ts], T], *args: *Ts) -> T:
        """Run blocking ``work(*args)`` on the store's thread and wait (outside a loop)."""
        return self._thread.submit(work, *args).result()

    def close(self) -> None:
        def shut() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
        self._thread.submit(shut).result()
        self._thread.shutdown()

    def _sql(self, statement: str, params: tuple[object, ...] = ()) -> Any:  # a cursor
        if self.postgres:
            statement = statement.replace("?", "%s")
        try:
            return self._conn.execute(statement, params)
        except Exception:
            if not self.postgres or not getattr(self._conn, "closed", False):
                raise
            self._open()  # the server closed the connection: once more on a new one
            return self._conn.execute(statement, params)

    # -- clients -------------------------------------------------------------------------

    def save_client(self, client_id: str, workspace: str, secret_hash: str | None,
                    metadata: JSONObject) -> None:
        self._sql("INSERT INTO oauth_clients (client_id, workspace, secret_hash, metadata, "
                  "created) VALUES (?, ?, ?, ?, ?)",
                  (client_id, workspace, secret_hash, json.dumps(metadata), time.time()))

    def client(self, client_id: str, workspace: str) -> tuple[JSONObject, str | None] | None:
        """A registered client's metadata and secret hash; None when it is not registered
        with this workspace."""
        row = self._sql("SELECT metadata, secret_hash FROM oauth_clients "
                        "WHERE client_id = ? AND workspace = ?",
                        (client_id, workspace)).fetchone()
        return None if row is None else (json.loads(row[0]), row[1])

    # -- authorization codes -------------------------------------------------------------

    def save_code(self, code: str, data: JSONObject, expires: float) -> None:
        self._sql("DELETE FROM oauth_codes WHERE expires < ?", (time.time(),))
        self._sql("INSERT INTO oauth_codes (code_hash, data, expires) VALUES (?, ?, ?)",
                  (digest(code), json.dumps(data), expires))

    def code(self, code: str) -> JSONObject | None:
        row = self._sql("SELECT data, expires FROM oauth_codes WHERE code_hash = ?",
                        (digest(code),)).fetchone()
        if row is None or row[1] <= time.time():
            return None
        data: JSONObject = json.loads(row[0])
        return data

    def take_code(self, code_hash: str) -> bool:
        """Delete a code; False when another request took it first (used once only)."""
        return bool(self._sql("DELETE FROM oauth_codes WHERE code_hash = ?",
                              (code_hash,)).rowcount)

    # -- grants --------------------------------------------------------------------------

    def _grant(self, where: str, params: tuple[str | float | None, ...]) -> Grant | None:
        row = self._sql(f"{_SELECT} WHERE {where}", params).fetchone()
        return None if row is None else Grant(*row)

    def create(self, grant: Grant) -> None:
        values = tuple(getattr(grant, f) for f in _GRANT_FIELDS)
        self._sql(f"INSERT INTO oauth_grants ({_GRANT_COLUMNS}) VALUES "
                  f"({', '.join('?' for _ in values)})", values)

    def rotate(self, grant: Grant, *, access_hash: str, access_expires: float,
               refresh_hash: str, refresh_expires: float) -> bool:
        """Replace a grant's tokens, unless another request rotated or revoked it first."""
        return bool(self._sql(
            "UPDATE oauth_grants SET access_hash = ?, access_expires = ?, refresh_hash = ?, "
            "refresh_expires = ?, previous_refresh_hash = ?, refreshed = ? "
            "WHERE id = ? AND refresh_hash = ? AND revoked IS NULL",
            (access_hash, access_expires, refresh_hash, refresh_expires, grant.refresh_hash,
             time.time(), grant.id, grant.refresh_hash)).rowcount)

    def by_access(self, access_hash: str) -> Grant | None:
        return self._grant("access_hash = ?", (access_hash,))

    def by_refresh(self, refresh_hash: str) -> tuple[Grant, bool] | None:
        """The grant of a refresh token, and whether the token is its current one (False:
        a rotated-away token presented again)."""
        grant = self._grant("refresh_hash = ?", (refresh_hash,))
        if grant is not None:
            return grant, True
        grant = self._grant("previous_refresh_hash = ?", (refresh_hash,))
        return None if grant is None else (grant, False)

    def get(self, grant_id: str) -> Grant | None:
        return self._grant("id = ?", (grant_id,))

    def grants(self, workspace: str | None = None, member: str | None = None) -> list[Grant]:
        """Grants not revoked whose refresh token is still valid, newest first."""
        where, params = ["revoked IS NULL", "refresh_expires > ?"], [time.time()]
        if workspace is not None:
            where.append("workspace = ?")
            params.append(workspace)  # type: ignore[arg-type]
        if member is not None:
            where.append("member = ?")
            params.append(member)  # type: ignore[arg-type]
        rows = self._sql(f"{_SELECT} WHERE {' AND '.join(where)} ORDER BY created DESC",
                         tuple(params)).fetchall()
        return [Grant(*row) for row in rows]

    def revoke(self, *, grant_id: str | None = None, workspace: str | None = None,
               member: str | None = None, client_id: str | None = None) -> list[str]:
        """Revoke the grants matching every given filter; their ids."""
        where, params = ["revoked IS NULL"], []
        for column, value in (("id", grant_id), ("workspace", workspace), ("member", member),
                              ("client_id", client_id)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        ids = [row[0] for row in self._sql(
            f"SELECT id FROM oauth_grants WHERE {' AND '.join(where)}", tuple(params))]
        for grant_id_ in ids:
            self._sql("UPDATE oauth_grants SET revoked = ? WHERE id = ?", (time.time(), grant_id_))
        return ids
