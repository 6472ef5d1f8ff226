"""Rate limits: requests per minute per workspace and per member, in a moving window.

A moving window (a sliding log of the last minute's admissions) never lets more than the
limit through in ANY 60-second span; a fixed window would let twice the limit through
across a minute boundary. Two backends sit behind :class:`RateLimiter`:

- :class:`MemoryLimiter` (the default; one replica): a log of timestamps per key, updated
  without an ``await`` in between, so a check and its admission are one atomic step on the
  event loop;
- :class:`RedisLimiter` (several replicas share the limits): the ``limits`` library's moving
  window (its key layout and its Lua admission, atomic on the server), run here with the
  gateway's own clock so that it can be frozen in tests: the library reads the wall clock
  itself and takes none.

Why not ``limits``' own in-memory storage too: its expiry task runs after every hit and makes
one thread hop per key, which measured here as ~90% of a core at 1,000 hits/s once 100 keys
are live (this module's log: ~2 µs per hit, no background work).

Both take a ``clock``: a check of an exact count must not depend on how fast the machine runs
(a burst that outlives the window lets its first admissions leave it, as it should).

Keys name the workspace and the member (``ws/eng``, ``member/eng/alice``), never a token,
and not the limit: a reload that changes ``requests_per_minute`` keeps the same log, so the
new limit applies to the last minute's admissions on the very next request. Only members
with a limit are logged, so a member limit set where there was none counts from the change.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

from mcpyard import errors
from mcpyard.api.v1alpha1 import PLAN_REQUESTS_PER_MINUTE
from mcpyard.compiler.config import MemberConfig, WorkspaceConfig

log = logging.getLogger("mcpyard.gateway")

WINDOW_SECONDS = 60
"""Every limit is per minute."""
REDIS_KEY_PREFIX = "mcpyard"
REDIS_BACKOFF_SECONDS = 5.0
"""After a Redis error, limits are kept in memory this long before Redis is tried again."""

Scope = errors.Scope


Refusal = errors.RateLimited
"""What the limiter answers for a request over a limit (its scope, limit and retry time)."""


class RateLimiter(Protocol):
    async def hit(self, workspace: WorkspaceConfig, member: MemberConfig) -> Refusal | None:
        """Admit one request of ``member`` in ``workspace``, or say which limit refuses it."""
        ...

    def status(self) -> dict[str, str]:
        """``backend``, ``status`` (ok or degraded) and a ``reason`` when degraded."""
        ...

    async def close(self) -> None: ...


def create_limiter(redis_url: str | None, *,
                   on_state: Callable[[bool], None] | None = None) -> RateLimiter:
    """In memory without a URL; on the Redis at ``redis_url`` (``redis://host:6379/0``).

    ``on_state`` hears whether the shared backend answers (the metrics gauge)."""
    return MemoryLimiter() if redis_url is None else RedisLimiter(redis_url, on_state=on_state)


def workspace_key(workspace: WorkspaceConfig) -> str:
    return f"ws/{workspace.name}"


def member_key(workspace: WorkspaceConfig, member: MemberConfig) -> str:
    # Member names are unique in a workspace's namespace, workspace names across namespaces.
    return f"member/{workspace.name}/{member.name}"


def refusal(
    scope: Scope, workspace: WorkspaceConfig, member: MemberConfig, retry_after: float
) -> Refusal:
    if scope == "member":
        limit = member.requests_per_minute
        assert limit is not None
        message = f"rate limit of member {member.name} exceeded: {limit} requests per minute"
    else:
        limit = workspace.requests_per_minute
        plan = workspace.plan
        source = (
            f"plan {plan}"
            if PLAN_REQUESTS_PER_MINUTE.get(plan) == limit
            else f"override of plan {plan}"
        )
        message = (
            f"rate limit of workspace {workspace.name} exceeded: "
            f"{limit} requests per minute ({source})"
        )
    return Refusal(scope, limit, max(1, math.ceil(retry_after)), message)


# Order: the member's limit first, the workspace's second. A member over its own limit is
# refused before it touches the shared budget, so one member cannot spend the workspace's
# minute on requests that were refused anyway. What a refused request consumes: refused by
# its member limit, nothing; refused by the workspace limit, one slot of its member's limit
# (a moving-window admission cannot be taken back atomically). So the member limit can
# refuse a little early while the workspace is saturated; neither limit is ever exceeded.


class MemoryLimiter:
    """Limits of one process: a deque of admission times per key."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._logs: dict[str, deque[float]] = {}
        self._next_sweep = clock() + WINDOW_SECONDS

    async def hit(self, workspace: WorkspaceConfig, member: MemberConfig) -> Refusal | None:
        # No await below: the checks and admissions are one step of the event loop.
        now = self._clock()
        if now >= self._next_sweep:
            self._sweep(now)
        if member.requests_per_minute is not None:
            wait = self._admit(member_key(workspace, member), member.requests_per_minute, now)
            if wait is not None:
                return refusal("member", workspace, member, wait)
        wait = self._admit(workspace_key(workspace), workspace.requests_per_minute, now)
        if wait is not None:
            return refusal("workspace", workspace, member, wait)
        return None

    def _admit(self, key: str, limit: int, now: float) -> float | None:
        """Admit at ``now`` and return None, or the seconds until the log has room."""
        entries = self._logs.get(key)
        if entries is None:
            entries = self._logs[key] = deque()
        cutoff = now - WINDOW_SECONDS
        while entries and entries[0] <= cutoff:
            entries.popleft()
        if len(entries) >= limit:
            # Room comes when the limit-th newest admission leaves the window (after a
            # lowered limit the log may hold more than `limit` entries).
            return (
                entries[len(entries) - limit] + WINDOW_SECONDS - now
                if limit > 0
                else WINDOW_SECONDS
            )
        entries.append(now)
        return None

    def _sweep(self, now: float) -> None:
        """Forget keys idle for a whole window: memory stays bounded by the active keys."""
        cutoff = now - WINDOW_SECONDS
        for key in [k for k, entries in self._logs.items() if not entries or entries[-1] <= cutoff]:
            del self._logs[key]
        self._next_sweep = now + WINDOW_SECONDS

    def status(self) -> dict[str, str]:
        return {"backend": "memory", "status": "ok"}

    async def close(self) -> None:
        self._logs.clear()


# The moving-window admission, atomic on the Redis server: the log is a list of admission
# times, newest first, trimmed to the limit. Refused: the limit-th newest entry is still in the
# window (returned, so that retry-after costs no second round trip). The layout is the one
# the `limits` library's moving window uses, so keys written by earlier versions stay valid.
# The time comes from the caller (the gateway's clock), so tests can freeze it.
_ACQUIRE = """
local now, limit, window = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local entry = redis.call('lindex', KEYS[1], limit - 1)
if entry and tonumber(entry) > now - window then
    return entry
end
redis.call('lpush', KEYS[1], ARGV[1])
redis.call('ltrim', KEYS[1], 0, limit - 1)
redis.call('expire', KEYS[1], window)
return false
"""


class RedisLimiter:
    """Limits shared by every replica that uses the same Redis.

    One Lua script per limit and request (:data:`_ACQUIRE`) on a bounded pool of redis-py
    connections: read the limit-th newest entry, push the new one, trim the list to the limit,
    so a key holds at most ``limit`` timestamps. Timestamps come from each replica's clock
    (``clock``, wall time by default): replicas need synchronised clocks (NTP), as every Redis
    limiter does.

    When Redis fails (down, unreachable, slower than ``timeout``), the limits stay on: each
    replica enforces them in its own memory (:class:`MemoryLimiter`), so the total admitted is
    at most the limit times the number of replicas, never unbounded, and no request waits
    for an outage longer than ``timeout``. A warning is logged once per outage and
    :meth:`status` says so (/readyz, and ``mcpyard_rate_limit_backend_up`` in /metrics).
    Redis is tried again every ``REDIS_BACKOFF_SECONDS``; from then on it counts again.
    """

    def __init__(self, url: str, *, max_connections: int = 64, timeout: float = 1.0,
                 clock: Callable[[], float] = time.time,
                 on_state: Callable[[bool], None] | None = None) -> None:
        try:
            import redis.asyncio
        except ImportError:
            raise errors.MCPyardError(
                "a Redis URL for rate limits needs the redis extra: pip install 'mcpyard[redis]'"
            ) from None

        # Our own bounded pool: a burst of concurrent requests waits for one of
        # `max_connections` connections instead of opening a socket each; close() owns it.
        self._pool = redis.asyncio.BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=timeout,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
        )
        self._client = redis.asyncio.Redis(connection_pool=self._pool)
        # Requests queue here, never in the pool: waiting for a free connection on a busy
        # machine is not a Redis failure (the pool's own wait would time out and say so),
        # and a request that waited through the start of an outage goes local at once.
        self._slots = asyncio.Semaphore(max_connections)
        self._script = self._client.register_script(_ACQUIRE)
        self._errors: tuple[type[Exception], ...] = (redis.RedisError, OSError,
                                                     errors.BackendUnavailable)
        self._clock = clock
        self._on_state = on_state
        self._local = MemoryLimiter()
        self._failing_until = 0.0
        self.failure: str | None = None
        """Why Redis is not used now; None while it is."""

    async def hit(self, workspace: WorkspaceConfig, member: MemberConfig) -> Refusal | None:
        if self.failure is not None and time.monotonic() < self._failing_until:
            return await self._local.hit(workspace, member)
        try:
            if member.requests_per_minute is not None:
                key = member_key(workspace, member)
                wait = await self._admit(key, member.requests_per_minute)
                if wait is not None:
                    return refusal("member", workspace, member, wait)
            wait = await self._admit(workspace_key(workspace), workspace.requests_per_minute)
            if wait is not None:
                return refusal("workspace", workspace, member, wait)
        except self._errors as exc:
            self._failed(exc)
            return await self._local.hit(workspace, member)
        if self.failure is not None:
            log.warning("rate limits: redis is back; limits are shared again")
            self.failure = None
            if self._on_state is not None:
                self._on_state(True)
        return None

    def _failed(self, exc: Exception) -> None:
        if isinstance(exc, errors.BackendUnavailable):
            return  # known already
        self._failing_until = time.monotonic() + REDIS_BACKOFF_SECONDS
        if self.failure is None:
            # The message of a redis error names host and port, never the URL's password.
            self.failure = f"redis failed: {exc.__class__.__name__}: {exc}"[:300]
            log.warning("rate limits: %s; each replica enforces them in its own memory "
                        "until redis answers again", self.failure)
            if self._on_state is not None:
                self._on_state(False)

    async def _admit(self, key: str, limit: int) -> float | None:
        async with self._slots:
            if self.failure is not None and time.monotonic() < self._failing_until:
                raise errors.BackendUnavailable(self.failure)
            now = self._clock()
            oldest = await self._script(keys=[f"{REDIS_KEY_PREFIX}:{key}"],
                                        args=[repr(now), limit, WINDOW_SECONDS])
        if oldest is None:
            return None
        return float(oldest) + WINDOW_SECONDS - now

    def status(self) -> dict[str, str]:
        if self.failure is None:
            return {"backend": "redis", "status": "ok"}
        return {"backend": "redis", "status": "degraded",
                "reason": f"{self.failure}; limits are enforced per replica meanwhile"}

    async def close(self) -> None:
        await self._local.close()
        await self._client.aclose()
        await self._pool.aclose()


