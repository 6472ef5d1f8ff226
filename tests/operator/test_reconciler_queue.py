"""The reconcile queue: a burst of requests for one workspace folds into one run, urgent work
(an edit or deletion, how access is removed) goes before routine work (a cold start's backlog,
resyncs), a routine key made urgent moves to the front without running twice, and statuses
go after every configuration queued."""

from __future__ import annotations

import asyncio

import anyio
import pytest

from mcpyard.operator._runtime import STATUS, Reconciler, WorkKey

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Recorder:
    """A work function that records the keys it runs and holds the first one until released."""

    def __init__(self) -> None:
        self.runs: list[WorkKey] = []
        self.release = asyncio.Event()
        self.started = asyncio.Event()

    async def __call__(self, key: WorkKey, force: bool) -> None:
        self.runs.append(key)
        self.started.set()
        if len(self.runs) == 1:
            await self.release.wait()


async def _drain(reconciler: Reconciler) -> None:
    with anyio.fail_after(30):
        await reconciler.idle.wait()


def ws(name: str) -> WorkKey:
    return ("ws", name)


async def test_urgent_work_goes_before_the_backlog() -> None:
    work = Recorder()
    reconciler = Reconciler(work, workers=1)
    try:
        reconciler.request(ws("first"))
        with anyio.fail_after(30):
            await work.started.wait()  # the one worker is busy with "first"
        for i in range(20):
            reconciler.request(ws(f"backlog{i}"))
        reconciler.request(ws("revoked"), urgent=True)
        work.release.set()
        await _drain(reconciler)
    finally:
        await reconciler.close()
    assert work.runs[:2] == [ws("first"), ws("revoked")]
    assert work.runs[2:] == [ws(f"backlog{i}") for i in range(20)]


async def test_a_burst_for_one_workspace_folds_into_one_run() -> None:
    work = Recorder()
    reconciler = Reconciler(work, workers=2)
    try:
        reconciler.request(ws("busy"))
        with anyio.fail_after(30):
            await work.started.wait()
        for _ in range(10):  # while "busy" runs: one more run of it, not ten
            reconciler.request(ws("busy"))
        for i in range(10):  # queued: ten requests, routine and urgent, one run
            reconciler.request(ws("other"), urgent=i % 2 == 0)
        work.release.set()
        await _drain(reconciler)
    finally:
        await reconciler.close()
    assert work.runs.count(ws("busy")) == 2
    assert work.runs.count(ws("other")) == 1


async def test_a_queued_routine_key_made_urgent_runs_once_in_front() -> None:
    work = Recorder()
    reconciler = Reconciler(work, workers=1)
    try:
        reconciler.request(ws("first"))
        with anyio.fail_after(30):
            await work.started.wait()
        for name in ("a", "b", "c"):
            reconciler.request(ws(name))
        reconciler.request(ws("c"), urgent=True)
        reconciler.request(ws("c"))  # routine again: stays urgent, no second run
        work.release.set()
        await _drain(reconciler)
    finally:
        await reconciler.close()
    assert work.runs == [ws("first"), ws("c"), ws("a"), ws("b")]


async def test_statuses_wait_for_every_configuration_in_the_queue() -> None:
    # A cold start: each workspace's run queues its statuses; those go after every
    # workspace's configuration, and an edit (urgent) goes before both.
    work = Recorder()
    reconciler = Reconciler(work, workers=1)
    try:
        reconciler.request(ws("first"))
        with anyio.fail_after(30):
            await work.started.wait()
        reconciler.request(("status", "first"), priority=STATUS)
        for name in ("a", "b"):
            reconciler.request(ws(name))
            reconciler.request(("status", name), priority=STATUS)
        reconciler.request(ws("revoked"), urgent=True)
        assert not reconciler.calm.is_set()
        work.release.set()
        await _drain(reconciler)
    finally:
        await reconciler.close()
    assert work.runs == [
        ws("first"),
        ws("revoked"),
        ws("a"),
        ws("b"),
        ("status", "first"),
        ("status", "a"),
        ("status", "b"),
    ]


async def test_calm_once_only_statuses_are_left() -> None:
    work = Recorder()
    reconciler = Reconciler(work, workers=1)
    try:
        assert reconciler.calm.is_set()
        reconciler.request(("status", "a"), priority=STATUS)
        with anyio.fail_after(30):
            await work.started.wait()
        assert reconciler.calm.is_set()  # a status run holds nothing back
        reconciler.request(ws("b"))
        assert not reconciler.calm.is_set()  # a configuration is waiting: discovery waits
        reconciler.request(ws("b"), urgent=True)  # promoted: still one pressing key
        work.release.set()
        with anyio.fail_after(30):
            await reconciler.calm.wait()
        await _drain(reconciler)
    finally:
        await reconciler.close()
    assert work.runs == [("status", "a"), ws("b")]


async def test_a_status_waits_for_a_configuration_still_running_on_another_worker() -> None:
    """With several workers a status run must not start beside a configuration run: started
    first is not finished first (a cold-start CI run wrote a status before a configuration)."""
    work = Recorder()
    reconciler = Reconciler(work, workers=3)
    try:
        reconciler.request(ws("config"))
        with anyio.fail_after(30):
            await work.started.wait()  # one worker holds the configuration run
        reconciler.request(("status", "a"), priority=STATUS)
        reconciler.request(("status", "b"), priority=STATUS)
        # Two workers are free; let them take what they may before the configuration ends.
        for _ in range(50):
            await asyncio.sleep(0)
        assert work.runs == [ws("config")]
        work.release.set()
        await _drain(reconciler)
    finally:
        await reconciler.close()
    assert work.runs == [ws("config"), ("status", "a"), ("status", "b")]
