"""`serve` on a folder: reloads apply per workspace, keep the last good config, revoke at once,
and tell connected clients that the tool list changed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from gwtools import (
    MCP_HEADERS,
    bearer,
    mcp_client,
    member_manifest,
    names,
    raw_initialize,
    run_gateway,
    server_manifest,
    text_of,
    ws_manifest,
)
from mcp_types import ToolListChangedNotification

from mcpyard.crypto import sops, tokens
from mcpyard.gateway import Settings

pytestmark = pytest.mark.anyio

PING = {"jsonrpc": "2.0", "id": 5, "method": "ping"}


@pytest.fixture
def folder(tmp_path: Path, beta: Any) -> Path:
    root = tmp_path / "manifests"
    (root / "eng").mkdir(parents=True)
    (root / "eng" / "workspace.yaml").write_text(ws_manifest())
    (root / "eng" / "beta.yaml").write_text(server_manifest("beta", beta.url))
    return root


@pytest.fixture
def alice() -> str:
    return tokens.new()


@pytest.fixture
def bob() -> str:
    return tokens.new()


@pytest.fixture
def people(folder: Path, alice: str, bob: str) -> None:
    (folder / "eng" / "alice.yaml").write_text(member_manifest("alice", alice))
    (folder / "eng" / "bob.yaml").write_text(member_manifest("bob", bob))


def settings(folder: Path, state_dir: Path, **kw: Any) -> Settings:
    return Settings(manifests=folder, state_dir=state_dir, reload_debounce_ms=50, **kw)


async def test_a_new_server_reaches_connected_clients(folder: Path, state_dir: Path,
                                                      people: None, alice: str,
                                                      beta: Any) -> None:
    changed = anyio.Event()

    async def on_message(message: Any) -> None:
        if isinstance(message, ToolListChangedNotification):
            changed.set()

    async with run_gateway(settings(folder, state_dir)) as gw:
        await gw.wait_serving("eng", "beta")
        async with mcp_client(gw.url("eng"), alice, on_message=on_message) as client:
            assert names(await client.list_tools()) == ["beta__echo", "beta__hello"]
            # the same upstream again under another slug: its tools join under that slug
            (folder / "eng" / "gamma.yaml").write_text(server_manifest("gamma", beta.url))
            with anyio.fail_after(30):
                await changed.wait()
            listed = names(await client.list_tools())
            called = await client.call_tool("gamma__hello", {"name": "g"})
    assert listed == ["beta__echo", "beta__hello", "gamma__echo", "gamma__hello"]
    assert text_of(called) == "hello g"


async def test_secrets_are_decrypted_and_injected(folder: Path, state_dir: Path, people: None,
                                                  alice: str, alpha: Any) -> None:
    from gwtools import ALPHA_SECRET

    identity, recipient = sops.age_keygen()
    (folder / "eng" / "secret.yaml").write_text(
        sops.encrypt_secret("alpha-key", "team", {"token": ALPHA_SECRET}, [recipient]))
    (folder / "eng" / "alpha.yaml").write_text(server_manifest("alpha", alpha.url,
                                                               secret="alpha-key"))
    async with run_gateway(settings(folder, state_dir, age_key=identity)) as gw:
        await gw.wait_serving("eng", "alpha", "beta")
        async with mcp_client(gw.url("eng"), alice) as client:
            seen = text_of(await client.call_tool("alpha__auth_header", {}))
    # The upstream admits only its secret (else 401), so it got it; echoed back to the
    # member, the secret is blanked (docs/security.md).
    assert seen == "Bearer [redacted]"
    # the master key and the call log are all that is written, and no file holds the secret
    assert sorted(p.name for p in state_dir.iterdir()) == ["calls.db", "master.key"]
    for written in state_dir.iterdir():
        assert ALPHA_SECRET.encode() not in written.read_bytes()


async def test_a_secret_that_fails_degrades_only_its_server(folder: Path, state_dir: Path,
                                                            people: None, alice: str,
                                                            alpha: Any) -> None:
    _, recipient = sops.age_keygen()  # encrypted for a key the gateway does not hold
    other_identity, _ = sops.age_keygen()
    (folder / "eng" / "secret.yaml").write_text(
        sops.encrypt_secret("alpha-key", "team", {"token": "s3cr3t-value"}, [recipient]))
    (folder / "eng" / "alpha.yaml").write_text(server_manifest("alpha", alpha.url,
                                                               secret="alpha-key"))
    async with run_gateway(settings(folder, state_dir, age_key=other_identity)) as gw, \
            httpx.AsyncClient() as http:
        await gw.wait_serving("eng", "beta")
        ready = (await http.get(f"{gw.base_url}/readyz")).json()
        async with mcp_client(gw.url("eng"), alice) as client:
            listed = names(await client.list_tools())
    alpha_status = ready["workspaces"]["eng"]["servers"]["alpha"]
    assert alpha_status["status"] == "degraded"
    assert "EncryptedSecret alpha-key" in alpha_status["reason"]
    assert "s3cr3t-value" not in str(ready)
    assert listed == ["beta__echo", "beta__hello"]


async def test_a_bad_manifest_keeps_the_last_good_config(folder: Path, state_dir: Path,
                                                         people: None, alice: str) -> None:
    async with run_gateway(settings(folder, state_dir)) as gw, httpx.AsyncClient() as http:
        await gw.wait_serving("eng", "beta")
        before = gw.runtime.generation
        # alice's member file gets an invalid role: the workspace must keep serving alice
        (folder / "eng" / "alice.yaml").write_text(
            member_manifest("alice", alice, extra="  role: superuser\n"))
        await gw.wait_for(lambda: gw.runtime.generation > before)
        async with mcp_client(gw.url("eng"), alice) as client:
            assert text_of(await client.call_tool("beta__echo", {"text": "still"})) \
                == "beta:still"
        ready = await http.get(f"{gw.base_url}/readyz")
        detail = ready.json()["workspaces"]["eng"]
        assert ready.status_code == 200
        assert detail["status"] == "degraded"
        [problem] = detail["lastReloadError"]
        assert problem.startswith(str(folder / "eng" / "alice.yaml"))
        assert "team/Member/alice: spec.role" in problem

        # a YAML syntax error in a known file also holds the workspace back
        before = gw.runtime.generation
        (folder / "eng" / "alice.yaml").write_text("kind: [unclosed\n")
        await gw.wait_for(lambda: gw.runtime.generation > before)
        ready = (await http.get(f"{gw.base_url}/readyz")).json()
        assert any("invalid YAML" in p for p in ready["workspaces"]["eng"]["lastReloadError"])
        sid = await raw_initialize(http, gw.url("eng"), alice)

        # fixing it serves the new config and clears the error
        before = gw.runtime.generation
        (folder / "eng" / "alice.yaml").write_text(member_manifest("alice", alice))
        await gw.wait_for(lambda: gw.runtime.generation > before)
        ready = (await http.get(f"{gw.base_url}/readyz")).json()
        assert "lastReloadError" not in ready["workspaces"]["eng"]
        assert ready["workspaces"]["eng"]["status"] == "serving"
        r = await http.post(gw.url("eng"), json=PING, headers={
            **MCP_HEADERS, **bearer(alice), "Mcp-Session-Id": sid})
        assert r.status_code == 200


async def test_revocation_bites_inside_an_open_session(folder: Path, state_dir: Path,
                                                       people: None, alice: str,
                                                       bob: str) -> None:
    async with run_gateway(settings(folder, state_dir)) as gw, httpx.AsyncClient() as http:
        await gw.wait_serving("eng", "beta")
        url = gw.url("eng")
        sid_bob = await raw_initialize(http, url, bob)
        sid_alice = await raw_initialize(http, url, alice)
        headers_bob = {**MCP_HEADERS, **bearer(bob), "Mcp-Session-Id": sid_bob}
        assert (await http.post(url, json=PING, headers=headers_bob)).status_code == 200

        before = gw.runtime.generation
        (folder / "eng" / "bob.yaml").write_text(
            member_manifest("bob", bob, extra="  disabled: true\n"))
        await gw.wait_for(lambda: gw.runtime.generation > before)
        refused = await http.post(url, json=PING, headers=headers_bob)
        assert refused.status_code == 401
        assert 'error="invalid_token"' in refused.headers["www-authenticate"]

        before = gw.runtime.generation
        (folder / "eng" / "alice.yaml").unlink()
        await gw.wait_for(lambda: gw.runtime.generation > before)
        gone = await http.post(url, json=PING, headers={
            **MCP_HEADERS, **bearer(alice), "Mcp-Session-Id": sid_alice})
        assert gone.status_code == 401


async def test_a_revocation_never_waits_for_an_unrelated_fix(folder: Path, state_dir: Path,
                                                             people: None, alice: str, bob: str,
                                                             beta: Any) -> None:
    """A broken server keeps its last good version; the rest of the workspace applies, so
    disabling a member bites at once (issue 13, finding 1)."""
    (folder / "eng" / "gamma.yaml").write_text(server_manifest("gamma", beta.url))
    async with run_gateway(settings(folder, state_dir)) as gw, httpx.AsyncClient() as http:
        await gw.wait_serving("eng", "beta", "gamma")
        url = gw.url("eng")
        sid_bob = await raw_initialize(http, url, bob)
        headers_bob = {**MCP_HEADERS, **bearer(bob), "Mcp-Session-Id": sid_bob}
        assert (await http.post(url, json=PING, headers=headers_bob)).status_code == 200

        # gamma now names a secret that does not exist, and a URL where nothing listens
        before = gw.runtime.generation
        (folder / "eng" / "gamma.yaml").write_text(
            server_manifest("gamma", "http://127.0.0.1:9/mcp", secret="missing"))
        await gw.wait_for(lambda: gw.runtime.generation > before)
        before = gw.runtime.generation
        (folder / "eng" / "bob.yaml").write_text(
            member_manifest("bob", bob, extra="  disabled: true\n"))
        await gw.wait_for(lambda: gw.runtime.generation > before)

        refused = await http.post(url, json=PING, headers=headers_bob)
        assert refused.status_code == 401
        async with mcp_client(url, alice) as client:
            listed = names(await client.list_tools())
            # gamma's last good version (the old URL, no secret) keeps serving
            called = text_of(await client.call_tool("gamma__echo", {"text": "held"}))
        assert listed == ["beta__echo", "beta__hello", "gamma__echo", "gamma__hello"]
        assert called == "beta:held"
        ready = (await http.get(f"{gw.base_url}/readyz")).json()["workspaces"]["eng"]
        assert ready["status"] == "degraded"
        [held] = ready["held"]
        assert held["resource"] == "team/MCPServer/gamma"
        assert (held["serving"], held["reason"]) == ("last good version", "LastGoodKept")
        assert "EncryptedSecret missing not found" in held["message"]
        assert any("team/MCPServer/gamma" in line for line in ready["lastReloadError"])

        # fixing gamma applies it and clears the hold
        before = gw.runtime.generation
        (folder / "eng" / "gamma.yaml").write_text(server_manifest("gamma", beta.url))
        await gw.wait_for(lambda: gw.runtime.generation > before)
        ready = (await http.get(f"{gw.base_url}/readyz")).json()["workspaces"]["eng"]
        assert "held" not in ready and ready["status"] == "serving"
