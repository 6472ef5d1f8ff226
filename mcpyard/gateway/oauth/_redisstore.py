"""The OAuth state in Redis, for deployments whose only shared store is Redis (``--redis-url``
without a PostgreSQL records database): the same operations as :class:`._store.Store`.

Keys (``mcpyard:oauth:`` prefix): ``client:<workspace>:<id>`` (a hash), ``code:<hash>``
(expires with the code), ``grant:<id>`` (a hash; kept until its refresh token expires),
``access:<hash>`` / ``refresh:<hash>`` / ``previous:<hash>`` -> grant id (each expiring with
its token), ``member:<workspace>:<member>`` (a set of grant ids). Rotation is a WATCH/MULTI
transaction, so two replicas racing with one refresh token cannot both win. Only hashes are
stored, as in SQL.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, fields
from typing import Any, TypeVar, TypeVarTuple

from mcpyard.gateway.oauth._store import Grant, digest
from mcpyard.mcp.jsonrpc import JSONObject

T = TypeVar("T")
Ts = TypeVarTuple("Ts")
P = "mcpyard:oauth:"
_FIELDS = {f.name: f.type for f in fields(Grant)}


def _ttl(until: float) -> int:
    return max(1, int(until - time.time()) + 1)


class RedisStore:
    """The OAuth state of a gateway in the Redis at ``url``."""

    def __init__(self, url: str) -> None:
        import redis

        self.url = url
        self._redis = redis.Redis.from_url(url, decode_responses=True, socket_timeout=10)
        self._watch_error = redis.WatchError
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mcpyard-oauth")
        self._thread.submit(self._redis.ping).result()

    def __repr__(self) -> str:
        return "RedisStore(...)"  # the URL may hold a password

    async def run(self, work: Callable[[*Ts], T], *args: *Ts) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, work, *args)

    def call(self, work: Callable[[*Ts], T], *args: *Ts) -> T:
        return self._thread.submit(work, *args).result()

    def close(self) -> None:
        self._thread.submit(self._redis.close).result()
        self._thread.shutdown()

    # -- clients and codes -----------------------------------------------------------------

    def save_client(self, client_id: str, workspace: str, secret_hash: str | None,
                    metadata: JSONObject) -> None:
        self._redis.hset(f"{P}client:{workspace}:{client_id}", mapping={
            "metadata": json.dumps(metadata), "secret_hash": secret_hash or ""})

    def client(self, client_id: str, workspace: str) -> tuple[JSONObject, str | None] | None:
        found: dict[str, str] = self._redis.hgetall(  # type: ignore[assignment]
            f"{P}client:{workspace}:{client_id}")
        if not found:
            return None
        return json.loads(found["metadata"]), found["secret_hash"] or None

    def save_code(self, code: str, data: JSONObject, expires: float) -> None:
        self._redis.set(f"{P}code:{digest(code)}", json.dumps(data), ex=_ttl(expires))

    def code(self, code: str) -> JSONObject | None:
        raw = self._redis.get(f"{P}code:{digest(code)}")
        if raw is None:
            return None
        data: JSONObject = json.loads(str(raw))
        return data

    def take_code(self, code_hash: str) -> bool:
        return bool(self._redis.delete(f"{P}code:{code_hash}"))

    # -- grants ----------------------------------------------------------------------------

    def get(self, grant_id: str) -> Grant | None:
        found: dict[str, str] = self._redis.hgetall(f"{P}grant:{grant_id}")  # type: ignore[assignment]
        if not found:
            return None
        values: dict[str, Any] = {}  # each value the type _FIELDS gives its Grant field
        for name, kind in _FIELDS.items():
            raw = found.get(name, "")
            if raw == "":
                values[name] = None
            elif "float" in str(kind):
                values[name] = float(raw)
            else:
                values[name] = raw
        return Grant(**values)

    def _by(self, kind: str, token_hash: str) -> Grant | None:
        grant_id = self._redis.get(f"{P}{kind}:{token_hash}")
        return None if grant_id is None else self.get(str(grant_id))

    def _save(self, pipe: Any, grant: Grant) -> None:  # redis-py's pipeline (untyped)
        key = f"{P}grant:{grant.id}"
        pipe.hset(key, mapping={k: "" if v is None else str(v)
                                for k, v in asdict(grant).items()})
        pipe.expire(key, _ttl(grant.refresh_expires))
        pipe.set(f"{P}access:{grant.access_hash}", grant.id, ex=_ttl(grant.access_expires))
        pipe.set(f"{P}refresh:{grant.refresh_hash}", grant.id, ex=_ttl(grant.refresh_expires))
        pipe.sadd(f"{P}member:{grant.workspace}:{grant.member}", grant.id)

    def create(self, grant: Grant) -> None:
        with self._redis.pipeline() as pipe:
            self._save(pipe, grant)
            pipe.execute()

    def rotate(self, grant: Grant, *, access_hash: str, access_expires: float,
               refresh_hash: str, refresh_expires: float) -> bool:
        key = f"{P}grant:{grant.id}"
        with self._redis.pipeline() as pipe:
            try:
                pipe.watch(key)  # type: ignore[no-untyped-call]
                current = pipe.hmget(key, ["refresh_hash", "revoked"])
                if current[0] != grant.refresh_hash or current[1]:
                    return False
                pipe.multi()
                pipe.delete(f"{P}access:{grant.access_hash}", f"{P}refresh:{grant.refresh_hash}")
                pipe.set(f"{P}previous:{grant.refresh_hash}", grant.id,
                         ex=_ttl(grant.refresh_expires))
                self._save(pipe, Grant(**{
                    **asdict(grant), "access_hash": access_hash,
                    "access_expires": access_expires, "refresh_hash": refresh_hash,
                    "refresh_expires": refresh_expires,
                    "previous_refresh_hash": grant.refresh_hash, "refreshed": time.time()}))
                pipe.execute()
            except self._watch_error:
                return False
        return True

    def by_access(self, access_hash: str) -> Grant | None:
        return self._by("access", access_hash)

    def by_refresh(self, refresh_hash: str) -> tuple[Grant, bool] | None:
        grant = self._by("refresh", refresh_hash)
        if grant is not None:
            return grant, True
        grant = self._by("previous", refresh_hash)
        return None if grant is None else (grant, False)

    def _ids(self, workspace: str | None, member: str | None) -> list[str]:
        if workspace is not None and member is not None:
            return sorted(self._redis.smembers(f"{P}member:{workspace}:{member}"))  # type: ignore[arg-type]
        pattern = f"{P}member:{workspace or '*'}:*"
        return sorted({str(i) for key in self._redis.scan_iter(pattern)
                       for i in self._redis.smembers(key)})

    def grants(self, workspace: str | None = None, member: str | None = None) -> list[Grant]:
        now = time.time()
        found = [g for i in self._ids(workspace, member) if (g := self.get(i)) is not None
                 and g.revoked is None and g.refresh_expires > now]
        return sorted(found, key=lambda g: g.created, reverse=True)

    def revoke(self, *, grant_id: str | None = None, workspace: str | None = None,
               member: str | None = None, client_id: str | None = None) -> list[str]:
        ids = [grant_id] if grant_id is not None else self._ids(workspace, member)
        out = []
        for i in ids:
            grant = self.get(i)
            if (grant is None or grant.revoked is not None
                    or (workspace is not None and grant.workspace != workspace)
                    or (member is not None and grant.member != member)
                    or (client_id is not None and grant.client_id != client_id)):
                continue
            with self._redis.pipeline() as pipe:
                pipe.hset(f"{P}grant:{i}", "revoked", str(time.time()))
                pipe.delete(f"{P}access:{grant.access_hash}",
                            f"{P}refresh:{grant.refresh_hash}")
                pipe.execute()
            out.append(i)
        return out
