"""MCP authorization end to end: the official SDK's OAuth client provider against
`mcpyard serve`, a person signing in and consenting in headless Chromium, then tool calls.

Both registration paths: a Client ID Metadata Document served over HTTPS (a CA made for the
test; the gateway allows a loopback document server only because the test says so) and dynamic
client registration. Then what must hold of the token: bound to its workspace, never sent
upstream, rotated refresh tokens, and cut when the member is disabled in git or the grant is
revoked (`mcpyard token revoke`).
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from consoletools import chromium
from gwtools import MCP_HEADERS, free_port, member_manifest, server_manifest, ws_manifest
from mcp.client.auth import OAuthClientProvider
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientMetadata
from oauthtools import Person, Served, Storage, TestCA, document_server, serve

from mcpyard.crypto import tokens
from mcpyard.gateway.services import _calllog

pytestmark = pytest.mark.anyio

ALICE, ALICE_OPS, ROOT = tokens.new(), tokens.new(), tokens.new()
CLIENT = {"client_name": "Notes Desktop", "grant_types": ["authorization_code", "refresh_token"],
          "response_types": ["code"], "token_endpoint_auth_method": "none"}


def write_manifests(folder: Path, upstream: str, *, alice: str = "") -> None:
    folder.mkdir(exist_ok=True)
    (folder / "eng.yaml").write_text(ws_manifest("eng", "Engineering"))
    (folder / "ops.yaml").write_text(ws_manifest("ops", "Operations"))
    (folder / "mirror.yaml").write_text(server_manifest("mirror", upstream))
    (folder / "mirror-ops.yaml").write_text(server_manifest("mirror-ops", upstream,
                                                            workspace="ops"))
    (folder / "alice.yaml").write_text(member_manifest("alice", ALICE, extra=alice))
    (folder / "alice-ops.yaml").write_text(member_manifest("alice-ops", ALICE_OPS,
                                                           workspace="ops"))
    (folder / "root.yaml").write_text(member_manifest("root", ROOT, extra="  role: admin\n"))


@contextlib.asynccontextmanager
async def connected(url: str, person: Person, storage: Storage,
                    metadata_url: str | None = None) -> AsyncIterator[ClientSession]:
    provider = OAuthClientProvider(
        server_url=url,
        client_metadata=OAuthClientMetadata(redirect_uris=[person.callback], **CLIENT),
        storage=storage, redirect_handler=person.redirect_handler,
        callback_handler=person.callback_handler, client_metadata_url=metadata_url)
    async with contextlib.AsyncExitStack() as stack:
        http = await stack.enter_async_context(httpx2.AsyncClient(
            auth=provider, timeout=httpx2.Timeout(60, read=300)))
        streams = await stack.enter_async_context(streamable_http_client(url, http_client=http))
        session = await stack.enter_async_context(ClientSession(streams[0], streams[1]))
        with anyio.fail_after(120):
            await session.initialize()
        yield session


async def sign_in_and_call(page: Any, url: str, callback: str,
                           metadata_url: str | None = None) -> tuple[Person, Storage,
                                                                      dict[str, str]]:
    """Alice connects a client to ``url`` (signing in and consenting in ``page``), then calls
    the upstream's headers tool; the person, the client's storage and the headers seen."""
    person = Person(page, ALICE, callback)
    await person.open()
    storage = Storage()
    async with connected(url, person, storage, metadata_url) as session:
        seen = await headers_seen_upstream(session)
    return person, storage, seen


async def initialize_status(url: str, token: str | None) -> httpx.Response:
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(timeout=30) as http:
        return await http.post(url, headers={**MCP_HEADERS, **auth},
                               json={"jsonrpc": "2.0", "id": 1, "method": "initialize",
                                     "params": {"protocolVersion": "2025-06-18",
                                                "capabilities": {},
                                                "clientInfo": {"name": "raw", "version": "0"}}})


async def refused_soon(url: str, token: str) -> httpx.Response:
    """Poll until ``token`` is refused (a reload or a recheck takes a moment)."""
    with anyio.fail_after(90):
        while True:
            r = await initialize_status(url, token)
            if r.status_code == 401:
                return r
            await anyio.sleep(0.2)


async def headers_seen_upstream(session: ClientSession) -> dict[str, str]:
    result = await session.call_tool("mirror__headers", {})
    assert not result.is_error, result
    seen: dict[str, str] = json.loads("".join(getattr(c, "text", "") for c in result.content))
    return seen


async def test_metadata_document_client_signs_in_calls_a_tool_and_is_cut_by_git(
        tmp_path: Path, mirror: Any) -> None:
    folder = tmp_path / "manifests"
    write_manifests(folder, mirror.url)
    ca = TestCA(tmp_path)
    callback = f"http://127.0.0.1:{free_port()}/callback"
    with (document_server(ca, {**CLIENT, "redirect_uris": [callback],
                               "client_uri": "https://notes.example"}) as document,
          serve(folder, tmp_path / "state", "--oauth-private-metadata",
                "--oauth-metadata-ca", str(ca.ca_file)) as gw):
        # Before anything: a 401 that says where to start (RFC 9728), the old body kept.
        r = await initialize_status(gw.url("eng"), None)
        assert r.status_code == 401 and r.json() == {"error": "unauthorized"}
        assert r.headers["www-authenticate"] == (
            'Bearer realm="mcpyard", resource_metadata='
            f'"{gw.base}/.well-known/oauth-protected-resource/ws/eng/mcp"')

        async with chromium() as browser:
            person, storage, seen = await sign_in_and_call(await browser.new_page(),
                                                           gw.url("eng"), callback, document.url)
        assert document.fetches == ["/client.json"]
        assert storage.client is not None and storage.client.client_id == document.url
        # The consent page named the client (from its document), the workspace and the tools.
        assert "Allow Notes Desktop to use Engineering?" in person.consent_text
        assert "described by 127.0.0.1" in person.consent_text
        assert "mirror__headers" in person.consent_text
        assert "alice@example.com" in person.consent_text
        assert storage.tokens is not None
        access = storage.tokens.access_token
        assert access.startswith("mat_") and storage.tokens.refresh_token
        # The upstream never sees the member's token (nor any Authorization at all).
        assert access not in json.dumps(seen) and "authorization" not in seen

        # Bound to its workspace (RFC 8707): refused by another, where alice is a member too.
        other = await initialize_status(gw.url("ops"), access)
        assert other.status_code == 401
        assert 'error="invalid_token"' in other.headers["www-authenticate"]
        assert (await initialize_status(gw.url("eng"), access)).status_code == 200

        # Disabled in git: the next request is refused (the reload applies it).
        write_manifests(folder, mirror.url, alice="  disabled: true\n")
        refused = await refused_soon(gw.url("eng"), access)
        assert refused.json() == {"error": "invalid_token"}
        log = (tmp_path / f"serve-{gw.port}.log").read_text()
        assert access not in log and storage.tokens.refresh_token not in log


async def token_request(gw: Served, workspace: str, **form: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as http:
        return await http.post(f"{gw.base}/ws/{workspace}/oauth/token", data=form)


async def test_registered_client_refreshes_with_rotation_and_is_revoked_by_the_cli(
        tmp_path: Path, mirror: Any) -> None:
    folder = tmp_path / "manifests"
    write_manifests(folder, mirror.url)
    callback = f"http://127.0.0.1:{free_port()}/callback"
    with serve(folder, tmp_path / "state") as gw:
        async with chromium() as browser:
            person, storage, _ = await sign_in_and_call(await browser.new_page(),
                                                        gw.url("eng"), callback)
        assert storage.client is not None and storage.client.client_id.startswith("mcd_")
        assert "registered itself; its name is not verified" in person.consent_text
        assert storage.tokens is not None and storage.tokens.refresh_token is not None
        client_id, first = storage.client.client_id, storage.tokens

        # A refresh rotates both tokens; the old refresh token is refused afterwards.
        r = await token_request(gw, "eng", grant_type="refresh_token", client_id=client_id,
                                refresh_token=first.refresh_token)
        assert r.status_code == 200, r.text
        second = r.json()
        assert second["refresh_token"] != first.refresh_token
        assert second["access_token"] != first.access_token
        assert (await initialize_status(gw.url("eng"), second["access_token"])).status_code \
            == 200
        assert (await initialize_status(gw.url("eng"), first.access_token)).status_code == 401
        again = await token_request(gw, "eng", grant_type="refresh_token", client_id=client_id,
                                    refresh_token=first.refresh_token)
        assert again.status_code == 400 and again.json()["error"] == "invalid_grant"

        # The records say which client and which grant.
        with _calllog.open_reader(gw.state_dir / "calls.db") as reader:
            calls = [c for c in _calllog.calls(reader, _calllog.Window())
                     if c["method"] == "tools/call"]
        assert calls and calls[0]["oauth_client"] == client_id
        grant = calls[0]["oauth_grant"]
        assert grant.startswith("g_")

        # The replayed refresh token revoked the grant (RFC 9700): a fresh sign-in instead.
        await refused_soon(gw.url("eng"), second["access_token"])
        async with chromium() as browser:
            _, fresh, _ = await sign_in_and_call(await browser.new_page(), gw.url("eng"),
                                                 callback)
        assert fresh.tokens is not None
        # `mcpyard token revoke`: every grant of alice in eng, from the command line.
        done = subprocess.run(
            [sys.executable, "-m", "mcpyard", "token", "revoke", "eng", "alice",
             "--state-dir", str(gw.state_dir), "--json"],
            capture_output=True, text=True, timeout=60, check=True)
        revoked = json.loads(done.stdout)["revoked"]
        assert len(revoked) == 1 and revoked[0] != grant
        await refused_soon(gw.url("eng"), fresh.tokens.access_token)
        r = await token_request(gw, "eng", grant_type="refresh_token",
                                client_id=fresh.client.client_id,  # type: ignore[union-attr]
                                refresh_token=fresh.tokens.refresh_token or "")
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant"

        # The console lists the member's grants, and an admin revokes one there.
        async with chromium() as browser:
            page = await browser.new_page()
            _, third, _ = await sign_in_and_call(page, gw.url("eng"), callback)
            assert third.tokens is not None
            await page.goto(f"{gw.base}/console/login")
            await page.fill("#token", ROOT)
            await page.click("button[type=submit]")
            await page.goto(f"{gw.base}/console/ws/eng/members/alice")
            rows = page.locator("#grants tbody tr")
            assert await rows.count() == 1  # the revoked ones are gone
            row = await rows.first.inner_text()
            assert "Notes Desktop" in row and "token" in row
            await page.get_by_role("button", name=re.compile("^Revoke Notes Desktop")).click()
            await page.wait_for_url(re.compile(r".*/console/ws/eng/members/alice"))
            assert "No application holds an OAuth grant" in await page.inner_text("#grants")
        refused = await initialize_status(gw.url("eng"), third.tokens.access_token)
        assert refused.status_code == 401  # on the replica that revoked it: at once
