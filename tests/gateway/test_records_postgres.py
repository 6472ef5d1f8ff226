"""Call records in a real PostgreSQL server: schema and migrations, the analytics queries on
both stores, two gateways writing into one database, and a database restart under load
(records wait in the recorder's queue; none is lost or written twice)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import astuple, replace
from pathlib import Path
from typing import Any

import anyio
import httpx
import psycopg
import pytest
from accounting import Raw
from gwtools import (
    member,
    member_manifest,
    run_gateway,
    server,
    server_manifest,
    wait_port,
    workspace,
    ws_manifest,
)

from mcpyard import errors
from mcpyard.crypto import tokens
from mcpyard.gateway.services import _calllog, _pgrecords, _records
from mcpyard.gateway.services._records import CallRecord, Recorder, SQLiteSink
from tests.pgserver import PostgresServer, pg_database, postgres
from tests.proctools import free_port

__all__ = ["pg_database", "postgres"]
pytestmark = pytest.mark.anyio


def record(i: int, **changes: Any) -> CallRecord:
    r = CallRecord(time=1_750_000_000.0 + i, workspace="eng", member=f"m{i % 3}",
                   user=f"m{i % 3}@example.com", server="beta", method="tools/call",
                   target="beta__echo", era="handshake",
                   outcome="ok" if i % 5 else "tool_error", latency_ms=float(i % 50),
                   request_bytes=10, response_bytes=20, config_revision="rev-1",
                   git_commit=None)
    return replace(r, **changes) if changes else r


def pg_rows(url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        cols = ", ".join('"user"' if f == "user" else f for f in _records.FIELDS)
        return [tuple(r) for r in conn.execute(f"SELECT {cols} FROM calls ORDER BY time, id")]


def test_the_postgres_table_has_every_field_of_a_record_and_a_versioned_schema(
        pg_database: str) -> None:
    _pgrecords.PostgresSink(pg_database)  # creates the schema
    _pgrecords.PostgresSink(pg_database)  # a second gateway: nothing to migrate
    with psycopg.connect(pg_database) as conn:
        columns = [r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'calls' "
            "ORDER BY ordinal_position")]
        version = conn.execute("SELECT version FROM mcpyard_schema").fetchall()
    assert columns == ["id", *_records.FIELDS]
    assert version == [(_pgrecords.SCHEMA_VERSION,)]
    # One schema, two databases: a step added to one is added to the other.
    assert _pgrecords.SCHEMA_VERSION == _records.SCHEMA_VERSION


def test_a_newer_schema_is_refused_without_showing_the_password(pg_database: str) -> None:
    _pgrecords.PostgresSink(pg_database)
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute("UPDATE mcpyard_schema SET version = 99")
    url = pg_database.replace("mcpyard@", "mcpyard:hunter2@")
    with pytest.raises(errors.MCPyardError, match="schema 99, newer") as info:
        _pgrecords.PostgresSink(url)
    assert "hunter2" not in str(info.value)


def test_an_unreachable_database_fails_at_start_with_a_clear_message(
        postgres: PostgresServer) -> None:
    url = f"postgresql://mcpyard:s3cret-pw@127.0.0.1:{postgres.port}/no_such_db"
    with pytest.raises(errors.MCPyardError, match="no_such_db") as info:
        _pgrecords.PostgresSink(url)
    assert "s3cret-pw" not in str(info.value)


async def test_analytics_queries_answer_the_same_on_sqlite_and_postgres(
        pg_database: str, tmp_path: Path) -> None:
    batch = [record(i) for i in range(40)] + [
        record(40, outcome="rate_limited", member="m1"), record(41, outcome="denied")]
    sqlite_path = tmp_path / "calls.db"
    for sink in (SQLiteSink(sqlite_path), _pgrecords.PostgresSink(pg_database)):
        async with Recorder([sink]) as recorder:
            for r in batch:
                recorder.record(r)
    window = _calllog.Window(since=batch[1].time, workspaces=("eng",))
    answers = []
    for store in (sqlite_path, pg_database):
        with _calllog.open_reader(store) as reader:
            answers.append((
                _calllog.top_members(reader, window, 10),
                _calllog.top_tools(reader, window, 10),
                _calllog.errors(reader, window, 10),
                _calllog.calls(reader, window),
                _calllog.usage_by(reader, window, "member"),
                _calllog.usage_over_time(reader, window, 10.0),
                _calllog.last_activity(reader, window),
            ))
    assert answers[0] == answers[1]
    top = answers[1][0]
    assert [(r[1], r[3]) for r in top] == [("m1", 14), ("m2", 14), ("m0", 13)]
    assert sum(u.rate_limited for u in answers[1][4]) == 1
    assert [astuple(r)[:3] for r in batch[1:]] == [
        (c["time"], c["workspace"], c["member"]) for c in answers[1][3]]


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
async def test_retention_deletes_the_records_older_than_the_days_kept(
        store: str, pg_database: str, tmp_path: Path) -> None:
    def sink() -> Any:
        if store == "sqlite":
            return SQLiteSink(tmp_path / "calls.db")
        return _pgrecords.PostgresSink(pg_database)

    async with Recorder([sink()]) as recorder:
        for i in range(10):
            recorder.record(record(i))
    recorder = Recorder([sink()])
    # "Now" is one day after record 5: records 0..4 are older than the day kept.
    keeping = asyncio.create_task(recorder.keep_for(1.0, clock=lambda: record(5).time + 86400))
    location = tmp_path / "calls.db" if store == "sqlite" else pg_database
    with anyio.fail_after(60):
        while True:
            with _calllog.open_reader(location) as reader:
                left = [c["time"] for c in _calllog.calls(reader, _calllog.Window())]
            if len(left) < 10:
                break
            await asyncio.sleep(0.05)
    keeping.cancel()
    await recorder.close()
    assert left == [record(i).time for i in range(5, 10)]


async def test_two_gateways_write_into_one_database(
        pg_database: str, settings_for: Any, beta: Any) -> None:
    token = tokens.new()
    ws = workspace("eng", [server("beta", beta.url)], [member("alice", token)])
    per_gateway = 30
    async with (run_gateway(settings_for([ws], records_url=pg_database)) as one,
                run_gateway(settings_for([ws], records_url=pg_database)) as two):
        for gw in (one, two):
            await gw.wait_serving("eng", "beta")
        async with httpx.AsyncClient(timeout=30) as http:

            async def calls(gw: Any, tag: str) -> None:
                raw = Raw(http, gw.url("eng"), token)
                await raw.initialize()
                for i in range(per_gateway):
                    r = await raw.post("tools/call", {"name": "beta__echo",
                                                      "arguments": {"text": f"{tag}{i}"}})
                    assert r.status_code == 200, r.text

            await asyncio.gather(calls(one, "a"), calls(two, "b"))
    rows = [dict(zip(_records.FIELDS, r, strict=True)) for r in pg_rows(pg_database)]
    tool_calls = [r for r in rows if r["method"] == "tools/call"]
    assert len(tool_calls) == 2 * per_gateway
    assert {r["outcome"] for r in tool_calls} == {"ok"}
    assert {r["member"] for r in rows} == {"alice"}
    assert sum(r["method"] == "initialize" for r in rows) == 0  # not a recorded method


async def test_a_database_restart_under_load_loses_and_duplicates_nothing(
        postgres: PostgresServer, pg_database: str) -> None:
    sink = _pgrecords.PostgresSink(pg_database, retry_max=0.5)
    recorder = Recorder([sink], batch_size=50, interval=0.01)
    recorder.start()
    total = 3000
    sent = 0

    async def load(until: int) -> None:
        nonlocal sent
        while sent < until:
            recorder.record(record(sent))
            sent += 1
            if sent % 25 == 0:
                await asyncio.sleep(0)  # yield like a serving gateway does

    await load(1000)
    with anyio.fail_after(60):
        while sink.written < 500:
            await asyncio.sleep(0.01)
    await asyncio.to_thread(postgres.stop, "fast")
    await load(2000)  # the database is down: these wait in the queue
    assert recorder.queued > 0
    await asyncio.to_thread(postgres.start)
    await load(total)
    with anyio.fail_after(120):
        while sink.written < total:
            await asyncio.sleep(0.05)
    await recorder.close()
    rows = pg_rows(pg_database)
    assert recorder.dropped == 0
    assert len(rows) == total
    assert sorted(r[0] for r in rows) == [record(i).time for i in range(total)]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mcpyard", "analytics", *args],
                          capture_output=True, text=True, timeout=60)


async def test_analytics_and_export_read_postgres(pg_database: str) -> None:
    async with Recorder([_pgrecords.PostgresSink(pg_database)]) as recorder:
        for i in range(12):
            recorder.record(record(i, target=f"beta__t{i % 2}"))
    top = await asyncio.to_thread(cli, "--records-url", pg_database, "top-tools", "--json")
    assert top.returncode == 0, top.stderr
    assert [(r["tool"], r["calls"]) for r in json.loads(top.stdout)] == [
        ("beta__t0", 6), ("beta__t1", 6)]
    since = _records.iso(record(4).time)
    jsonl = await asyncio.to_thread(cli, "--records-url", pg_database, "export", "--since",
                                    since, "--format", "jsonl")
    assert jsonl.returncode == 0, jsonl.stderr
    lines = [json.loads(line) for line in jsonl.stdout.splitlines()]
    assert [line["time"] for line in lines] == [_records.iso(record(i).time)
                                                for i in range(4, 12)]
    assert set(lines[0]) == set(_records.FIELDS)
    csv_out = await asyncio.to_thread(cli, "export", "--records-url", pg_database,
                                      "--since", since, "--format", "csv")
    assert csv_out.returncode == 0, csv_out.stderr
    assert csv_out.stdout.splitlines()[0] == ",".join(_records.FIELDS)
    assert len(csv_out.stdout.splitlines()) == 1 + 8


async def test_export_reads_sqlite_too(tmp_path: Path) -> None:
    db = tmp_path / "calls.db"
    async with Recorder([SQLiteSink(db)]) as recorder:
        for i in range(5):
            recorder.record(record(i))
    out = await asyncio.to_thread(cli, "--db", str(db), "export", "--format", "jsonl")
    assert out.returncode == 0, out.stderr
    assert [json.loads(line)["member"] for line in out.stdout.splitlines()] == [
        "m0", "m1", "m2", "m0", "m1"]


def test_serve_refuses_a_records_url_that_is_not_postgres(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "mcpyard", "serve", str(tmp_path),
                          "--records-url", "mysql://u:topsecret@h/db"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "--records-url: not a PostgreSQL URL" in out.stderr
    assert "topsecret" not in out.stderr


async def test_records_wait_for_the_database_and_the_recorder_gives_up_at_shutdown(
        postgres: PostgresServer, pg_database: str) -> None:
    sink = _pgrecords.PostgresSink(pg_database, retry_max=0.2, close_timeout=0.5)
    recorder = Recorder([sink], interval=0.01)
    recorder.start()
    await asyncio.to_thread(postgres.stop, "fast")
    try:
        recorder.record(record(1))
        with anyio.fail_after(60):
            await recorder.close()  # gives up after close_timeout, logging the loss
        assert sink.written == 0
    finally:
        await asyncio.to_thread(postgres.start)


def test_serve_writes_into_the_database_named_by_the_environment(
        pg_database: str, beta: Any, tmp_path: Path) -> None:
    token = tokens.new()
    folder = tmp_path / "manifests"
    folder.mkdir()
    (folder / "ws.yaml").write_text(ws_manifest())
    (folder / "beta.yaml").write_text(server_manifest("beta", beta.url))
    (folder / "alice.yaml").write_text(member_manifest("alice", token))
    port = free_port()
    env = {**os.environ, "MCPYARD_RECORDS_URL": pg_database, "MCPYARD_RETENTION_DAYS": "30"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mcpyard", "serve", str(folder), "--port", str(port),
         "--state-dir", str(tmp_path / "state"), "--log-level", "warning"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tmp_path)
    try:
        wait_port(port, proc, deadline=120)
        url = f"http://127.0.0.1:{port}/ws/eng/mcp"
        with httpx.Client(timeout=30) as http:
            headers = {"Authorization": f"Bearer {token}",
                       "Accept": "application/json, text/event-stream"}
            for _ in range(600):  # the upstream is discovered in the background
                ready = http.get(f"http://127.0.0.1:{port}/readyz").json()
                if ready["workspaces"].get("eng", {}).get("tools"):
                    break
                time.sleep(0.1)
            init = http.post(url, headers=headers, json={
                "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                    "protocolVersion": "2025-06-18", "capabilities": {},
                    "clientInfo": {"name": "t", "version": "0"}}})
            sid = init.headers["mcp-session-id"]
            r = http.post(url, headers={**headers, "Mcp-Session-Id": sid,
                                        "MCP-Protocol-Version": "2025-06-18"},
                          json={"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                                "params": {"name": "beta__echo", "arguments": {"text": "x"}}})
            assert r.status_code == 200, r.text
        proc.send_signal(signal.SIGTERM)  # a graceful stop writes what is queued
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert "postgresql://mcpyard@127.0.0.1" in out.decode()  # the banner names the store
    assert not (tmp_path / "state" / "calls.db").exists()
    rows = [dict(zip(_records.FIELDS, r, strict=True)) for r in pg_rows(pg_database)]
    assert [(r["member"], r["target"], r["outcome"]) for r in rows
            if r["method"] == "tools/call"] == [("alice", "beta__echo", "ok")]
