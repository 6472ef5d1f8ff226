"""The request correlator, the stdio read loop and the process supervisor, with real processes."""

from __future__ import annotations

import asyncio
import logging
import os
import sys

import anyio
import pytest

from mcpyard.mcp import correlator, process, stdio

pytestmark = pytest.mark.anyio


async def test_answers_reach_their_waiters_by_id() -> None:
    pending = correlator.Correlator()
    first, second = pending.next_id(), pending.next_id()
    a, b = pending.expect(first), pending.expect(second)
    assert pending.resolve({"id": second, "result": {"n": 2}})
    assert not pending.resolve({"id": str(first), "result": {}})  # ids are the ints we sent
    assert not pending.resolve({"id": 99, "result": {}})
    assert b.result() == {"id": second, "result": {"n": 2}} and not a.done()
    pending.fail_all(RuntimeError("closed"))
    with pytest.raises(RuntimeError, match="closed"):
        await a
    assert len(pending) == 0


async def test_the_read_loop_takes_objects_and_batches_and_skips_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    reader = asyncio.StreamReader(limit=64)
    reader.feed_data(b'{"id": 1}\nnot json\n[{"id": 2}, 3, {"id": 4}]\n' + b"x" * 100 + b"\n")
    reader.feed_data(b'{"id": 5}\n')
    reader.feed_eof()
    got: list[object] = []
    with caplog.at_level(logging.DEBUG):
        await stdio.read(reader, got.append, label="srv", log=logging.getLogger("t"))
    assert got == [{"id": 1}, {"id": 2}, {"id": 4}, {"id": 5}]
    assert "srv stdout (not JSON): not json" in caplog.text


async def test_a_process_that_exits_is_restarted_and_close_stops_its_group() -> None:
    spawned: list[int] = []
    exits: list[int] = []

    async def on_spawn(child: asyncio.subprocess.Process) -> None:
        spawned.append(child.pid)

    script = "import os, sys, time; sys.exit(3) if os.environ.get('FIRST') else time.sleep(60)"
    env = dict(os.environ, FIRST="1")

    def environment() -> dict[str, str]:
        out = dict(env)
        env.pop("FIRST", None)  # the second process stays up
        return out

    supervisor = process.Supervisor([sys.executable, "-c", script], on_spawn=on_spawn,
                                    on_exit=exits.append, env=environment, name="t", grace=1)
    supervisor.start()
    try:
        with anyio.fail_after(30):
            while len(spawned) < 2 or not supervisor.running:
                await supervisor.changed.wait()
        assert exits == [3] and supervisor.restarts == 1
        assert supervisor.state == "the server process exited with code 3"
        leader = supervisor.pid
        assert leader == spawned[1]
    finally:
        await supervisor.close()
    with pytest.raises(ProcessLookupError):
        os.killpg(spawned[1], 0)


async def test_a_command_that_cannot_start_says_why() -> None:
    errors: list[str] = []

    async def on_spawn(child: asyncio.subprocess.Process) -> None:
        raise AssertionError("never spawned")

    supervisor = process.Supervisor(["/nonexistent/server"], on_spawn=on_spawn,
                                    on_error=errors.append)
    supervisor.start()
    try:
        with anyio.fail_after(30):
            while not errors:
                await supervisor.changed.wait()
    finally:
        await supervisor.close()
    assert errors[0] == supervisor.state == "cannot start '/nonexistent/server': command not found"
