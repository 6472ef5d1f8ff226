"""A secret echoed by an upstream never reaches the member, a record, a log line or a metric.

The upstream is a real MCP server that quotes the key the gateway injected (``invalid API key
<key>``), as real APIs do: in a JSON-RPC error, in a tool error, in a result (plain, inside a
Basic credential, base64url, URL-encoded, hex) and in a progress note. Every era and transport
is driven with a real client, then the call log, ``mcpyard analytics errors``, the audit log,
``/metrics``, ``/readyz`` and the gateway's log lines are searched for every form of the key.
"""

from __future__ import annotations

import base64
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from gwtools import (
    MCP_HEADERS,
    NS,
    UpstreamProcess,
    bearer,
    mcp_client,
    member,
    run_gateway,
    server,
    text_of,
    upstream_process,
    workspace,
)
from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.shared.exceptions import MCPError

from mcpyard.crypto import tokens
from mcpyard.gateway import _redact

pytestmark = pytest.mark.anyio

KEY = "sk_live/Kx+9q=Zt!2025~ab"
"""Characters that URL-encoding and base64 change, so that every encoding differs."""
ALICE = tokens.new()


def leaked_forms(text: str) -> list[str]:
    """Every form of KEY found in ``text`` (computed here, independently of the gateway)."""
    forms = {
        "plain": KEY,
        "url": quote(KEY, safe=""),
        "hex": KEY.encode().hex(),
        "base64url": base64.urlsafe_b64encode(KEY.encode()).decode().rstrip("="),
        "basic": base64.b64encode(f"user:{KEY}".encode()).decode(),
        "json-escaped": KEY.replace("/", "\\/"),
    }
    lowered = text.lower()
    return [name for name, form in forms.items() if form.lower() in lowered]


@pytest.fixture(scope="module")
def leaky() -> Iterator[UpstreamProcess]:
    with upstream_process("leaky", KEY) as up:
        yield up


async def test_every_form_of_an_echoed_key_is_blanked_everywhere(
        settings_for: Any, leaky: UpstreamProcess, tmp_path: Path, state_dir: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    audit = tmp_path / "audit.jsonl"
    ws = workspace("eng", [server("leaky", leaky.url, secret=True)], [member("alice", ALICE)])
    seen: list[str] = []  # everything the member received
    async with run_gateway(settings_for([ws], secrets={f"{NS}/alpha/token": KEY},
                                        audit_log=str(audit))) as gw:
        await gw.wait_serving("eng", "leaky")

        # Handshake era, streamable HTTP, official SDK client.
        async with mcp_client(gw.url("eng"), ALICE) as s:
            seen += await _drive(s)

        # Legacy HTTP+SSE transport, official SDK client.
        async with sse_client(gw.url("eng", "sse"), headers=bearer(ALICE)) as (read, write), \
                ClientSession(read, write) as s:
            await s.initialize()
            seen += await _drive(s)

        # 2026-07-28 era: no handshake, plain HTTP.
        async with httpx.AsyncClient(timeout=60) as http:
            for tool in ("key_in_error", "key_in_tool_error", "key_in_result"):
                name = f"leaky__{tool}"
                r = await http.post(gw.url("eng"), headers={
                    **MCP_HEADERS, **bearer(ALICE), "MCP-Protocol-Version": "2026-07-28",
                    "Mcp-Method": "tools/call", "Mcp-Name": name}, json={
                    "jsonrpc": "2.0", "id": 1, "method": "tools/call",
                    "params": {"name": name, "arguments": {}, "_meta": {
                        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                        "io.modelcontextprotocol/clientCapabilities": {}}}})
                assert r.status_code < 500, r.text
                assert _redact.MARK in r.text, r.text
                seen.append(r.text)
            metrics = (await http.get(f"{gw.base_url}/metrics")).text
            readyz = (await http.get(f"{gw.base_url}/readyz")).text
        # The key did reach the upstream (it answered, so it was injected): only its echo
        # is blanked, and the harmless line of the result is untouched.
        assert any("fine: nothing secret here" in s for s in seen)

    for text in seen:
        assert leaked_forms(text) == [], text
    records = subprocess.run(
        [sys.executable, "-m", "mcpyard", "analytics", "--db", str(state_dir / "calls.db"),
         "--json", "errors"], capture_output=True, text=True, check=True).stdout
    assert "invalid API key [redacted]" in records
    history = subprocess.run(
        [sys.executable, "-m", "mcpyard", "analytics", "--db", str(state_dir / "calls.db"),
         "--json", "calls"], capture_output=True, text=True, check=True).stdout
    lines = audit.read_text()
    assert "invalid API key [redacted]" in lines
    logs = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    for where, text in (("analytics errors", records), ("analytics calls", history),
                        ("audit log", lines), ("/metrics", metrics), ("/readyz", readyz),
                        ("log", logs), ("calls.db", (state_dir / "calls.db").read_bytes()
                                        .decode("latin-1"))):
        assert leaked_forms(text) == [], where


async def _drive(s: ClientSession) -> list[str]:
    """Call each leaky tool; what came back, as text."""
    out = []
    with pytest.raises(MCPError) as caught:
        await s.call_tool("leaky__key_in_error", {})
    assert "invalid API key [redacted]" in caught.value.message
    out.append(f"{caught.value.message} {caught.value.data}")
    failed = await s.call_tool("leaky__key_in_tool_error", {})
    assert failed.is_error and "invalid API key [redacted]" in text_of(failed)
    out.append(text_of(failed))
    progress: list[str] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append(message or "")

    result = await s.call_tool("leaky__key_in_result", {}, progress_callback=on_progress)
    text = text_of(result)
    assert text.count(_redact.MARK) >= 5, text
    out += [text, *progress]
    assert progress and all(_redact.MARK in p for p in progress), progress
    return out


@pytest.mark.parametrize("value", [KEY, "abcdef", "ünïcode-sécret", "a\"quote\\and/slash"])
def test_every_encoding_of_a_value_is_found(value: str) -> None:
    redactor = _redact.Redactor([value])
    raw = value.encode()
    for prefix in ("", "u", "us", "use"):  # base64 inside a longer value, at each alignment
        for encoded in (base64.b64encode((prefix + ":").encode() + raw).decode(),
                        base64.urlsafe_b64encode(prefix.encode() + raw).decode().rstrip("=")):
            text = f"Authorization: Basic {encoded}"
            assert redactor.text(text).count(_redact.MARK) == 1, (prefix, encoded)
    for form in (value, quote(value, safe=""), quote(value), raw.hex(), raw.hex().upper()):
        assert redactor.text(f"x {form} y") == f"x {_redact.MARK} y"
    message = {"error": {"message": f"bad key {value}", "data": {value: [value]}}}
    cleaned = redactor.message(message)
    assert value not in str(cleaned) and cleaned["error"]["message"] == "bad key [redacted]"
    assert redactor.message({"fine": "text"}) == {"fine": "text"}
    assert _redact.Redactor(["short"]).text("short") == "short"  # under MIN_LENGTH


def test_log_lines_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("mcpyard.gateway.upstream")
    redaction = _redact.LogFilter(lambda: _redact.Redactor([KEY]))
    log.addFilter(redaction)
    try:
        with caplog.at_level(logging.INFO):
            log.warning("server leaky: %s", f"invalid API key {quote(KEY, safe='')}")
            try:
                raise RuntimeError(f"upstream answered 401: invalid API key {KEY}")
            except RuntimeError:
                log.exception("server leaky failed")
    finally:
        log.removeFilter(redaction)
    text = caplog.text
    assert "server leaky: invalid API key [redacted]" in text
    assert "RuntimeError: upstream answered 401: invalid API key [redacted]" in text
    assert leaked_forms(text) == []
