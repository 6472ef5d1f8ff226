"""What flows back during a call, across the fan-out: progress (with the client's own token),
log messages (filtered per client session), cancellation, and the upstream's own requests
(sampling, elicitation, roots) reaching the member whose call caused them, and only them."""

from __future__ import annotations

from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import ClientSession
from mcp.client.sse import sse_client
from prototools import ALICE, BOB, CAROL, client, protocol_gateway, quiet_deprecated, upstreams

__all__ = ["upstreams"]

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_progress_comes_back_with_the_clients_token(
        settings_for: Any, upstreams: dict[str, str], mode: str) -> None:
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    async with protocol_gateway(settings_for, upstreams) as gw, \
            client(gw.url("p"), ALICE, mode) as c:
        # Two clients' progress at once on the same upstream: each sees only its own.
        other: list[Any] = []

        async def on_other(progress: float, total: float | None, message: str | None) -> None:
            other.append(progress)

        async with client(gw.url("p"), BOB, mode) as b, anyio.create_task_group() as tg:
            tg.start_soon(lambda: b.call_tool("one__progress", {}, progress_callback=on_other))
            result = await c.call_tool("one__progress", {}, progress_callback=on_progress)
        assert result.content[0].text == "one:done"  # type: ignore[union-attr]
        assert seen == [(1, 3, "step 1"), (2, 3, "step 2"), (3, 3, "step 3")]
        assert other == [1, 2, 3]


async def test_log_level_is_per_client_session(settings_for: Any,
                                               upstreams: dict[str, str]) -> None:
    logs: dict[str, list[str]] = {"a": [], "b": []}

    def collect(who: str) -> Any:
        async def on_log(params: types.LoggingMessageNotificationParams) -> None:
            logs[who].append(params.level)
        return on_log

    async with protocol_gateway(settings_for, upstreams) as gw, \
            client(gw.url("p"), ALICE, "legacy", logging_callback=collect("a")) as a, \
            client(gw.url("p"), ALICE, "legacy", logging_callback=collect("b")) as b:
        with quiet_deprecated():
            await a.set_logging_level("error")
        await a.call_tool("one__chatty", {})
        await b.call_tool("one__chatty", {})
        assert logs["a"] == ["error", "critical", "alert", "emergency"]
        # The other session (same member, same upstream) still sees everything.
        assert logs["b"] == ["debug", "info", "notice", "warning", "error", "critical", "alert",
                             "emergency"]


async def test_modern_logs_only_at_the_requested_level(settings_for: Any,
                                                       upstreams: dict[str, str]) -> None:
    levels: list[str] = []

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        levels.append(params.level)

    async with protocol_gateway(settings_for, upstreams) as gw:
        async with client(gw.url("p"), ALICE, "2026-07-28", logging_callback=on_log) as c:
            await c.call_tool("one__chatty", {})
        assert levels == []  # no logLevel in _meta: no log messages
        async with client(gw.url("p"), ALICE, "2026-07-28", logging_callback=on_log,
                          log_level="alert") as c:
            await c.call_tool("two__chatty", {})
        assert levels == ["alert", "emergency"]


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_cancellation_reaches_the_upstream(settings_for: Any,
                                                 upstreams: dict[str, str], mode: str) -> None:
    async with protocol_gateway(settings_for, upstreams) as gw, \
            client(gw.url("p"), CAROL, mode) as c:
        before = (await c.call_tool("two__cancelled", {})).structured_content
        started = anyio.Event()

        async def on_progress(progress: float, total: float | None, message: str | None
                              ) -> None:
            started.set()

        with anyio.fail_after(20):
            async with anyio.create_task_group() as tg:
                async def slow() -> None:
                    await c.call_tool("two__slow", {}, progress_callback=on_progress)

                tg.start_soon(slow)
                await started.wait()
                tg.cancel_scope.cancel()
            assert before is not None
            while True:  # the upstream learns of it asynchronously
                after = (await c.call_tool("two__cancelled", {})).structured_content
                assert after is not None
                if after["result"] == before["result"] + 1:
                    break
                await anyio.sleep(0.05)


def _sampler(calls: list[str]) -> Any:
    async def sample(context: Any, params: types.CreateMessageRequestParams
                     ) -> types.CreateMessageResult:
        calls.append(params.messages[0].content.text)  # type: ignore[union-attr]
        return types.CreateMessageResult(role="assistant", model="test",
                                         content=types.TextContent(text="forty-two"))
    return sample


def _eliciter(calls: list[str]) -> Any:
    async def elicit(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        calls.append(params.message)
        return types.ElicitResult(action="accept", content={"answer": "yes"})
    return elicit


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_sampling_and_elicitation_round_trip_to_the_caller_only(
        settings_for: Any, upstreams: dict[str, str], mode: str) -> None:
    """Every combination of eras: a handshake upstream asks mid-call (relayed as a request to
    a handshake client, carried as an input-required result to a modern one); a modern
    upstream answers input-required (passed through to a modern client, turned into requests
    for a handshake client). Either way the answer comes back, and only the caller is asked."""
    mine: list[str] = []
    theirs: list[str] = []

    async def roots(context: Any) -> types.ListRootsResult:
        return types.ListRootsResult(roots=[types.Root(uri="file:///work", name="work")])

    async with protocol_gateway(settings_for, upstreams) as gw, \
            client(gw.url("p"), ALICE, mode, sampling_callback=_sampler(mine),
                   elicitation_callback=_eliciter(mine), list_roots_callback=roots) as a, \
            client(gw.url("p"), BOB, mode, sampling_callback=_sampler(theirs),
                   elicitation_callback=_eliciter(theirs), list_roots_callback=roots) as b:
        await b.call_tool("one__progress", {})  # bob is connected to the same upstream
        result = await a.call_tool("one__sample", {"prompt": "meaning of life?"})
        assert result.content[0].text == "one:sampled:forty-two"  # type: ignore[union-attr]
        result = await a.call_tool("two__elicit", {"question": "proceed?"})
        assert result.content[0].text == "two:elicited:accept:yes"  # type: ignore[union-attr]
        result = await a.call_tool("one__roots", {})
        assert result.content[0].text == "one:roots:file:///work"  # type: ignore[union-attr]
        assert mine == ["meaning of life?", "proceed?"]
        assert theirs == []  # the second member never saw the first member's requests
        # And the other way round, at the same time.
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: a.call_tool("one__sample", {"prompt": "alice again"}))
            result = await b.call_tool("one__sample", {"prompt": "bob asks"})
        assert result.content[0].text == "one:sampled:forty-two"  # type: ignore[union-attr]
        assert theirs == ["bob asks"]
        assert mine == ["meaning of life?", "proceed?", "alice again"]


async def test_roots_list_changed_reaches_the_callers_upstream_sessions(
        settings_for: Any, upstreams: dict[str, str]) -> None:
    async def roots(context: Any) -> types.ListRootsResult:
        return types.ListRootsResult(roots=[])

    async with protocol_gateway(settings_for, upstreams) as gw, \
            client(gw.url("p"), ALICE, "legacy", list_roots_callback=roots) as c:
        before = (await c.call_tool("one__roots_changed", {})).structured_content
        assert before is not None
        with quiet_deprecated():
            await c.send_roots_list_changed()
        if upstreams["era"] == "both":
            return  # 2026-07-28 has no such notification: roots come with each request
        with anyio.fail_after(10):
            while True:  # a notification: nothing says when it has arrived
                after = (await c.call_tool("one__roots_changed", {})).structured_content
                assert after is not None
                if after["result"] == before["result"] + 1:
                    break
                await anyio.sleep(0.05)


async def test_the_legacy_sse_transport_relays_too(settings_for: Any,
                                                   upstreams: dict[str, str]) -> None:
    """On /sse everything travels on the session's one event stream: progress, the upstream's
    sampling request (answered by a POST to /messages) and the answer."""
    mine: list[str] = []
    seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    async with protocol_gateway(settings_for, upstreams) as gw, \
            sse_client(gw.url("p", "sse"), headers={"Authorization": f"Bearer {ALICE}"}
                       ) as streams, \
            ClientSession(streams[0], streams[1], sampling_callback=_sampler(mine)) as c:
        await c.initialize()
        result = await c.call_tool("two__sample", {"prompt": "over sse"})
        assert result.content[0].text == "two:sampled:forty-two"  # type: ignore[union-attr]
        assert mine == ["over sse"]
        result = await c.call_tool("one__progress", {}, progress_callback=on_progress)
        assert result.content[0].text == "one:done"  # type: ignore[union-attr]
        assert seen == [1, 2, 3]
        prompts = await c.list_prompts()
        assert [p.name for p in prompts.prompts][:2] == ["one__embedded", "one__greet"]
