"""Rate limits: exact per plan under concurrency, per member, shared through a real Redis."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
import redis

from mcpyard.api.v1alpha1 import PLAN_REQUESTS_PER_MINUTE
from mcpyard.compiler.config import MemberConfig, WorkspaceConfig
from mcpyard.gateway.services import _limits
from mcpyard.gateway.services._limits import RateLimiter, Refusal
from tests.proctools import free_port
from tests.redisserver import redis_url

__all__ = ["redis_url"]

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the gateway runs on asyncio


def workspace(plan: str = "free", rpm: int | None = None, name: str = "eng") -> WorkspaceConfig:
    return WorkspaceConfig(
        name=name,
        namespace="team-eng",
        display_name=name,
        plan=plan,
        requests_per_minute=rpm or PLAN_REQUESTS_PER_MINUTE[plan],
    )


def member(name: str = "alice", rpm: int | None = None) -> MemberConfig:
    return MemberConfig(
        name=name,
        user=f"{name}@example.com",
        role="member",
        token_hash="sha256:" + "0" * 64,
        requests_per_minute=rpm,
    )


async def fire(
    limiter: RateLimiter, ws: WorkspaceConfig, m: MemberConfig, n: int
) -> list[Refusal | None]:
    """``n`` hits at once."""
    results: list[Refusal | None] = [None] * n

    async def one(i: int) -> None:
        results[i] = await limiter.hit(ws, m)

    with anyio.fail_after(180):
        async with anyio.create_task_group() as tg:
            for i in range(n):
                tg.start_soon(one, i)
    return results


def passed(results: list[Refusal | None]) -> int:
    return sum(r is None for r in results)


class Clock:
    """A clock the test moves (or freezes): the limiters take it instead of real time."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- a real Redis server ----------------------------------------------------------------


@pytest.fixture
def clean_redis(redis_url: str) -> str:
    with redis.Redis.from_url(redis_url) as client:
        client.flushdb()
    return redis_url


@pytest.fixture(params=["memory", "redis"])
async def limiter(request: pytest.FixtureRequest) -> AsyncIterator[RateLimiter]:
    # A frozen clock: an exact count must not depend on how fast this machine runs (a burst
    # that outlives the window rightly lets its first admissions leave it).
    # And a generous Redis timeout: a connect slower than the default 1 s on a loaded machine
    # would be an outage, whose per-replica fallback is bounded but not exact.
    clock = Clock()
    if request.param == "redis":
        made: RateLimiter = _limits.RedisLimiter(request.getfixturevalue("clean_redis"),
                                                 clock=clock, timeout=30)
    else:
        made = _limits.MemoryLimiter(clock=clock)
    try:
        yield made
    finally:
        await made.close()


# --- exact limits -----------------------------------------------------------------------


@pytest.mark.parametrize("plan", ["free", "starter", "pro", "business"])
async def test_each_plan_admits_exactly_its_limit_under_concurrency(
    limiter: RateLimiter, plan: str
) -> None:
    limit = PLAN_REQUESTS_PER_MINUTE[plan]
    ws = workspace(plan)
    results = await fire(limiter, ws, member(), limit + 25)
    assert passed(results) == limit
    refusals = [r for r in results if r is not None]
    assert len(refusals) == 25
    assert {r.scope for r in refusals} == {"workspace"}
    assert {r.limit for r in refusals} == {limit}
    assert refusals[0].message == (
        f"rate limit of workspace eng exceeded: {limit} requests per minute (plan {plan})"
    )
    assert all(1 <= r.retry_after <= 60 for r in refusals)


async def test_a_member_limit_below_the_workspace_limit(limiter: RateLimiter) -> None:
    ws = workspace("free")  # 60 a minute for everyone together
    alice, bob = member("alice", rpm=10), member("bob")
    first = await fire(limiter, ws, alice, 30)
    assert passed(first) == 10
    refused = [r for r in first if r is not None]
    assert {r.scope for r in refused} == {"member"}
    assert refused[0].message == "rate limit of member alice exceeded: 10 requests per minute"
    assert refused[0].limit == 10
    # What alice's refused requests cost the workspace: nothing. Bob gets the other 50.
    second = await fire(limiter, ws, bob, 80)
    assert passed(second) == 50
    assert {r.scope for r in second if r is not None} == {"workspace"}


async def test_two_members_share_the_workspace_budget(limiter: RateLimiter) -> None:
    ws = workspace("free")
    alice, bob = member("alice", rpm=100), member("bob", rpm=100)
    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            out: dict[str, list[Refusal | None]] = {}

            async def run(m: MemberConfig) -> None:
                out[m.name] = await fire(limiter, ws, m, 50)

            tg.start_soon(run, alice)
            tg.start_soon(run, bob)
    assert passed(out["alice"]) + passed(out["bob"]) == 60
    assert {r.scope for rs in out.values() for r in rs if r is not None} == {"workspace"}


async def test_an_override_says_so(limiter: RateLimiter) -> None:
    ws = workspace("pro", rpm=5)
    results = await fire(limiter, ws, member(), 6)
    (refusal,) = [r for r in results if r is not None]
    assert refusal.message == (
        "rate limit of workspace eng exceeded: 5 requests per minute (override of plan pro)"
    )


async def test_a_limit_change_takes_effect_on_the_next_request(limiter: RateLimiter) -> None:
    ws = workspace("free")
    m = member()
    assert passed(await fire(limiter, ws, m, 60)) == 60
    assert await limiter.hit(ws, m) is not None
    raised = ws.model_copy(update={"requests_per_minute": 100, "revision": "r2"})
    # The same window: 40 more this minute, not a fresh 100.
    assert passed(await fire(limiter, raised, m, 50)) == 40
    lowered = ws.model_copy(update={"requests_per_minute": 30})
    refusal = await limiter.hit(lowered, m)
    assert refusal is not None and refusal.limit == 30
    # A member limit set where there was none counts from the change (members without a
    # limit are not logged), and a change of it applies to what was already spent.
    bigger = ws.model_copy(update={"requests_per_minute": 1000})
    limited = m.model_copy(update={"requests_per_minute": 20})
    assert passed(await fire(limiter, bigger, limited, 30)) == 20
    tighter = m.model_copy(update={"requests_per_minute": 15})
    refusal = await limiter.hit(bigger, tighter)
    assert refusal is not None and refusal.scope == "member" and refusal.limit == 15
    looser = m.model_copy(update={"requests_per_minute": 25})
    assert passed(await fire(limiter, bigger, looser, 10)) == 5


async def test_workspaces_and_members_have_their_own_keys(limiter: RateLimiter) -> None:
    assert passed(await fire(limiter, workspace(name="eng"), member(), 70)) == 60
    assert passed(await fire(limiter, workspace(name="ops"), member(), 70)) == 60


# --- the moving window (memory backend, a clock the test moves) ---------------------------


async def test_the_window_moves_and_retry_after_says_when() -> None:
    clock = Clock()
    limiter = _limits.MemoryLimiter(clock=clock)
    ws, m = workspace("free"), member()
    assert passed(await fire(limiter, ws, m, 30)) == 30  # at 0 s
    clock.now += 10
    assert passed(await fire(limiter, ws, m, 30)) == 30  # at 10 s
    clock.now += 10
    refusal = await limiter.hit(ws, m)
    assert refusal is not None and refusal.retry_after == 40  # the 0 s ones leave at 60 s
    clock.now += 40
    assert passed(await fire(limiter, ws, m, 31)) == 30  # at 60 s: only those 30 left
    refusal = await limiter.hit(ws, m)
    assert refusal is not None and refusal.retry_after == 10
    await limiter.close()


async def test_no_double_budget_at_a_minute_boundary() -> None:
    # A fixed window would admit 60 at 0:59 and 60 more at 1:01.
    clock = Clock()
    clock.now = 59.0
    limiter = _limits.MemoryLimiter(clock=clock)
    ws, m = workspace("free"), member()
    assert passed(await fire(limiter, ws, m, 60)) == 60
    clock.now = 61.0
    assert passed(await fire(limiter, ws, m, 60)) == 0
    clock.now = 119.0
    assert passed(await fire(limiter, ws, m, 60)) == 60


async def test_idle_keys_are_forgotten() -> None:
    clock = Clock()
    limiter = _limits.MemoryLimiter(clock=clock)
    await limiter.hit(workspace(name="eng"), member("alice", rpm=5))
    assert len(limiter._logs) == 2
    clock.now += 121
    await limiter.hit(workspace(name="ops"), member("bob"))
    assert set(limiter._logs) == {"ws/ops"}


# --- Redis: shared across processes, keys, outages ---------------------------------------

CHILD = textwrap.dedent("""
    import asyncio, sys
    from mcpyard.compiler.config import MemberConfig, WorkspaceConfig
    from mcpyard.gateway.services import _limits

    async def main(url, n):
        ws = WorkspaceConfig(name="eng", namespace="team-eng", display_name="eng",
                             plan="starter", requests_per_minute=300)
        m = MemberConfig(name="bob", user="bob@example.com", role="member", token_hash=None,
                         requests_per_minute=None)
        limiter = _limits.create_limiter(url)
        try:
            await limiter.hit(ws.model_copy(update={"name": "warm-up"}), m)
            print("ready", flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
            results = await asyncio.gather(*(limiter.hit(ws, m) for _ in range(n)))
            print(sum(r is None for r in results), flush=True)
        finally:
            await limiter.close()

    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
""")


async def test_two_processes_share_the_limits_through_redis(clean_redis: str) -> None:
    ws = workspace("starter")  # 300 a minute
    limiter = _limits.create_limiter(clean_redis)
    try:
        with anyio.fail_after(60):
            async with await anyio.open_process(
                [sys.executable, "-c", CHILD, clean_redis, "300"], cwd=ROOT
            ) as child:
                assert child.stdout is not None and child.stdin is not None
                out = b""
                while b"ready\n" not in out:
                    out += await child.stdout.receive()
                await child.stdin.send(b"go\n")
                mine = await fire(limiter, ws, member("alice"), 300)
                while not out.endswith(b"\n") or out.count(b"\n") < 2:
                    out += await child.stdout.receive()
                assert await child.wait() == 0
        theirs = int(out.split()[-1])
        # Each process alone would admit 300: together they admit 300, not 600.
        assert passed(mine) + theirs == 300
    finally:
        await limiter.close()


async def test_redis_keys_name_workspace_and_member_never_a_token(clean_redis: str) -> None:
    limiter = _limits.create_limiter(clean_redis)
    try:
        await limiter.hit(workspace(), member("alice", rpm=10))
    finally:
        await limiter.close()
    with redis.Redis.from_url(clean_redis) as client:
        assert sorted(client.keys("*")) == [b"mcpyard:member/eng/alice", b"mcpyard:ws/eng"]


async def test_a_busy_pool_is_not_an_outage(clean_redis: str) -> None:
    """The flaky `[redis-business]` case (issue 13, finding 8): on a loaded machine a request
    waited for a pooled connection longer than the pool's timeout (1 s), the limiter took that
    for a Redis outage and let every later request through (6,025 of 6,000). Requests now
    queue before the pool: with one connection for a thousand requests the count is exact."""
    limiter = _limits.RedisLimiter(clean_redis, max_connections=1, clock=Clock(), timeout=30)
    try:
        results = await fire(limiter, workspace("pro", rpm=1000), member(), 1025)
    finally:
        await limiter.close()
    assert passed(results) == 1000
    assert limiter.status() == {"backend": "redis", "status": "ok"}


async def test_redis_down_keeps_limits_per_replica_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    states: list[bool] = []
    limiter = _limits.RedisLimiter(f"redis://127.0.0.1:{free_port()}/0", on_state=states.append)
    try:
        with anyio.fail_after(30):
            results = await fire(limiter, workspace("free"), member(), 70)
    finally:
        await limiter.close()
    # never unbounded: the replica enforces the limit in its own memory meanwhile
    assert passed(results) == 60
    assert states == [False]
    status = limiter.status()
    assert status["status"] == "degraded" and "per replica" in status["reason"]
    warnings = [r.getMessage() for r in caplog.records if "rate limits: redis failed" in
                r.getMessage()]
    assert len(warnings) == 1  # once per outage, not once per request
