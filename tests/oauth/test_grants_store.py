"""The grants store on both databases a deployment may have (SQLite, a real PostgreSQL):
rotation replaces the tokens once, a rotated-away refresh token is recognised, revocation by
member / client / grant, and the state is there for a second process (another replica)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import redis

from mcpyard.gateway.oauth._store import Grant, GrantStore, Store, digest, open_store
from mcpyard.gateway.services import _records
from tests.pgserver import pg_database, postgres
from tests.redisserver import redis_url

__all__ = ["pg_database", "postgres", "redis_url"]


def grant(gid: str, member: str = "alice", client: str = "c1") -> Grant:
    now = time.time()
    return Grant(id=gid, workspace="eng", member=member, user=f"{member}@x", client_id=client,
                 client_name="Notes", resource="http://h/ws/eng/mcp", scope="",
                 sign_in="token", token_hash="sha256:00", created=now, refreshed=now,
                 access_hash=digest(f"a-{gid}"), access_expires=now + 60,
                 refresh_hash=digest(f"r-{gid}"), refresh_expires=now + 600)


@pytest.fixture(params=["sqlite", "postgres", "redis"])
def replicas(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """How two replicas open the store, on each kind of deployment."""
    if request.param == "sqlite":
        return lambda: open_store(tmp_path / "calls.db")
    if request.param == "postgres":
        url: str = request.getfixturevalue("pg_database")
        return lambda: open_store(url, "redis://unused")  # PostgreSQL wins over Redis
    redis_url: str = request.getfixturevalue("redis_url")
    with redis.Redis.from_url(redis_url) as client:
        client.flushdb()
    return lambda: open_store(tmp_path / "calls.db", redis_url)


def test_grants_rotate_revoke_and_are_shared(replicas: Any) -> None:
    one: GrantStore = replicas()
    two: GrantStore = replicas()  # two replicas on one database
    try:
        one.call(one.create, grant("g1"))
        one.call(one.create, grant("g2", client="c2"))
        one.call(one.create, grant("g3", member="bob"))
        g1 = two.call(two.by_access, digest("a-g1"))
        assert g1 is not None and g1.member == "alice"
        assert one.call(lambda: one.rotate(g1, access_hash=digest("a2"), access_expires=1e12,
                                           refresh_hash=digest("r2"), refresh_expires=1e12))
        # The same refresh token rotated twice (two replicas racing): only one wins.
        assert not two.call(lambda: two.rotate(g1, access_hash=digest("a3"),
                                               access_expires=1e12, refresh_hash=digest("r3"),
                                               refresh_expires=1e12))
        assert two.call(two.by_access, digest("a-g1")) is None
        assert two.call(two.by_refresh, digest("r2"))[0].id == "g1"  # type: ignore[index]
        old = two.call(two.by_refresh, digest("r-g1"))
        assert old is not None and old == (old[0], False)  # rotated away, recognised
        assert [g.id for g in two.call(two.grants, "eng", "alice")] in (["g2", "g1"],
                                                                         ["g1", "g2"])
        assert two.call(lambda: two.revoke(workspace="eng", member="alice",
                                           client_id="c2")) == ["g2"]
        assert sorted(one.call(lambda: one.revoke(workspace="eng", member="alice"))) == ["g1"]
        assert [g.id for g in one.call(one.grants, "eng", None)] == ["g3"]
        assert two.call(two.get, "g1").is_revoked()  # type: ignore[union-attr]
    finally:
        one.close()
        two.close()


def test_the_grants_share_the_call_records_schema(tmp_path: Path) -> None:
    Store(tmp_path / "calls.db").close()
    conn = _records.open_sqlite(tmp_path / "calls.db")
    try:
        assert conn.execute("PRAGMA user_version").fetchone() == (_records.SCHEMA_VERSION,)
        columns = {row[1] for row in conn.execute("PRAGMA table_info(calls)")}
        assert {"oauth_client", "oauth_grant"} <= columns
    finally:
        conn.close()
