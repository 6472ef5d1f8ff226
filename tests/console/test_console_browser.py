"""The console in a real headless Chromium: an admin signs in with their member token, opens
every page and sees what they came for; a member who is not an admin is refused.

Screenshots of every page land in $MCPYARD_ARTIFACTS/console (default
/tmp/mcpyard-artifacts/console), for a person to look at.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from accounting import Raw
from consoletools import chromium
from gwtools import member, run_gateway, server, workspace
from playwright.async_api import Page

from mcpyard import hub
from mcpyard.compiler.config import Source
from mcpyard.crypto import tokens
from mcpyard.gateway.services import _calllog, _records

pytestmark = pytest.mark.anyio

ADA, BOB, CAROL, DAN = tokens.new(), tokens.new(), tokens.new(), tokens.new()
COMMIT = "c0ffee1234567890abcdef1234567890abcdef12"


async def sign_in(page: Page, base: str, token: str) -> None:
    await page.goto(f"{base}/console/")
    assert page.url == f"{base}/console/login"  # not signed in: the sign-in form
    await page.fill("#token", token)
    await page.click("button[type=submit]")


async def records_written(db: Path, n: int) -> None:
    """Wait until the call log holds ``n`` records (the recorder writes in the background)."""
    with anyio.fail_after(30):
        while True:
            if db.is_file():
                with _calllog.open_reader(db) as reader:
                    if len(_calllog.calls(reader, _calllog.Window())) >= n:
                        return
            await anyio.sleep(0.05)


async def shot(page: Page, artifacts: Path, name: str) -> None:
    await page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)


async def cells(page: Page, selector: str) -> list[str]:
    return [t.strip() for t in await page.locator(selector).all_inner_texts()]


async def test_an_admin_sees_every_page_and_a_member_is_refused(
        settings_for: Any, beta: Any, artifacts: Path) -> None:
    eng = workspace("eng", [server("beta", beta.url)], [
        member("ada", ADA, role="admin"),
        member("bob", BOB, allow=("beta__echo",)),
        member("carol", CAROL, disabled=True),
        member("dan", DAN),
    ], display_name="Engineering", revision="3f9a1c2e7b4d5a60",
        source=Source(revision="main@sha1:9e8d7c6b5a43", origin="Kustomization flux/eng"))
    ops = workspace("ops", [server("beta", beta.url)], [member("bob", BOB, role="admin")],
                    display_name="Operations")
    async with run_gateway(settings_for([eng, ops])) as gw:
        # Served from a checkout of the manifests at this commit (as `serve` does).
        gw.runtime.apply({"eng": eng, "ops": ops}, commit=COMMIT)
        await gw.wait_serving("eng", "beta")
        base = gw.base_url
        async with httpx.AsyncClient(timeout=30) as http:
            raw = Raw(http, gw.url("eng"), BOB)
            await raw.initialize()
            for i in range(5):
                r = await raw.post("tools/call", {"name": "beta__echo",
                                                  "arguments": {"text": f"hi {i}"}})
                assert r.status_code == 200
            denied = await raw.post("tools/call", {"name": "beta__hello", "arguments": {}})
            assert "error" in denied.json()
            # A call the upstream rejects (no text): an error of server beta.
            failed = await raw.post("tools/call", {"name": "beta__echo", "arguments": {}})
            assert failed.json()["result"]["isError"] is True
        await records_written(gw.app.state.settings.records_path, 7)

        async with chromium() as browser:
            # An active member who is not an admin is refused.
            page = await browser.new_page(viewport={"width": 1360, "height": 900})
            await sign_in(page, base, DAN)
            assert await page.locator(".alert").inner_text() == (
                "That token does not belong to an active admin member.")
            await shot(page, artifacts, "00-refused")
            await page.close()

            context = await browser.new_context(viewport={"width": 1360, "height": 900})
            page = await context.new_page()
            await sign_in(page, base, ADA)
            assert page.url == f"{base}/console/workspaces"
            cookie = next(c for c in await context.cookies() if c["name"] == "mcpyard_console")
            assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
            assert cookie["path"] == "/console"
            assert ADA not in cookie["value"]
            # Workspaces: only ada's own, with its URL, plan, health and usage.
            titles = await cells(page, ".card.ws h2 a")
            assert titles == ["Engineering"]
            text = await page.locator(".card.ws").inner_text()
            assert "/ws/eng/mcp" in text and "pro · 1200 requests/min" in text
            assert "1 of 1 healthy" in text and "3 active of 4" in text
            await shot(page, artifacts, "01-workspaces")

            await page.click("text=Engineering")
            assert page.url == f"{base}/console/ws/eng"
            members = await cells(page, "table.data:nth-of-type(2) tbody td:first-child")
            assert members == ["ada", "bob", "carol", "dan"]
            row = await page.locator("tr", has_text="carol").inner_text()
            assert "disabled" in row
            await shot(page, artifacts, "02-workspace")

            await page.goto(f"{base}/console/ws/eng/servers/beta")
            assert "healthy" in await page.locator("main > h1").inner_text()
            assert await page.title() == "beta · mcpyard"
            assert await cells(page, "ul.tools li") == ["beta__echo", "beta__hello"]
            # Its capability manifest and generated docs, from the gateway's own builder.
            assert await page.locator("#manifest-counts").inner_text() == (
                "2 tools · 0 prompts · 0 resources")
            docs = page.locator(".card.docs")
            assert await docs.locator("h1").inner_text() == "beta (beta)"
            assert await docs.locator("h3").all_inner_texts() == ["beta__echo", "beta__hello"]
            # Its recent errors: bob's call that the server failed.
            errors = await cells(page, "#errors + table tbody tr")
            assert len(errors) == 1 and "tool_error" in errors[0] and "beta__echo" in errors[0]
            await shot(page, artifacts, "03-server")
            manifest = await page.request.get(
                f"{base}/console/ws/eng/servers/beta/manifest.json")
            assert manifest.ok and manifest.headers["content-type"] == "application/json"
            body = await manifest.json()
            assert [t["name"] for t in body["tools"]] == ["beta__echo", "beta__hello"]
            await page.goto(f"{base}/console/ws/eng/servers/beta/docs")
            assert await page.locator("h1").inner_text() == "beta (beta)"
            await shot(page, artifacts, "03b-server-docs")
            markdown = await page.request.get(f"{base}/console/ws/eng/servers/beta/docs.md")
            assert (await markdown.text()).startswith("# beta (beta)")
            for elsewhere in ("ws/eng/servers/beta/secrets", "ws/ops/servers/beta/docs"):
                refused = await page.request.get(f"{base}/console/{elsewhere}")
                assert refused.status == 404  # no other file; ops is not ada's

            await page.goto(f"{base}/console/ws/eng/members/bob")
            # Exactly the tools bob may call: his allow rule keeps one of beta's two.
            assert await cells(page, "#effective-tools li") == ["beta__echo"]
            assert "s ago" in await page.locator("dd", has_text="ago").inner_text()
            await shot(page, artifacts, "04-member")

            await page.goto(f"{base}/console/usage?period=1h")
            with anyio.fail_after(30):
                await page.wait_for_selector("body[data-charts-ready='1']")
            chart = page.locator("#chart-calls")
            # bob's 5 calls, 1 denial and 1 failure: what the records hold.
            assert await chart.get_attribute("data-total-calls") == "7"
            assert await page.locator("#chart-calls canvas").count() == 1
            assert await page.locator("#chart-latency canvas").count() == 1
            assert await page.locator("#total-calls").inner_text() == "7"
            by_member = await page.locator("section", has_text="By member").locator(
                "tbody tr").first.inner_text()
            assert by_member.split("\t")[:2] == ["bob", "7"]
            by_outcome = await page.locator("section", has_text="By outcome").inner_text()
            assert "denied" in by_outcome
            await shot(page, artifacts, "05-usage")

            await page.goto(f"{base}/console/audit?period=1h")
            rows = await cells(page, "#audit tbody tr")
            assert len(rows) == 7 and all("bob" in r for r in rows)
            await page.select_option("select[name=outcome]", "denied")
            await page.click("form.filters button")
            rows = await cells(page, "#audit tbody tr")
            assert len(rows) == 1 and "beta__hello" in rows[0] and "denied" in rows[0]
            # What allowed it: the configuration revision, the Flux revision, the commit.
            assert "3f9a1c2e7b4d" in rows[0] and "main@sha1:9e8d7c6b5a43" in rows[0]
            assert COMMIT[:10] in rows[0]
            await shot(page, artifacts, "06-audit")
            # Filter by what allowed the calls: a commit's start finds all 7, another none.
            await page.goto(f"{base}/console/audit?period=1h&revision=c0ffee12")
            assert len(await cells(page, "#audit tbody tr td:first-child")) == 7
            await page.goto(f"{base}/console/audit?period=1h&revision=main@sha1:9e8d")
            assert len(await cells(page, "#audit tbody tr td:first-child")) == 7
            await page.goto(f"{base}/console/audit?period=1h&revision=deadbeef")
            assert await cells(page, "#audit tbody tr") == ["No calls match."]
            export = await page.request.get(
                f"{base}/console/audit.csv?period=1h&outcome=ok&revision=3f9a1c")
            assert export.ok
            exported = list(csv.DictReader(io.StringIO(await export.text())))
            assert [r["target"] for r in exported] == ["beta__echo"] * 5
            assert set(exported[0]) == set(_records.FIELDS)
            assert {(r["config_revision"], r["source_revision"], r["git_commit"])
                    for r in exported} == {("3f9a1c2e7b4d5a60", "main@sha1:9e8d7c6b5a43",
                                            COMMIT)}
            export = await page.request.get(
                f"{base}/console/audit.jsonl?period=1h&outcome=denied")
            lines = [json.loads(line) for line in (await export.text()).splitlines()]
            assert [(r["target"], r["source_revision"], r["git_commit"]) for r in lines] == [
                ("beta__hello", "main@sha1:9e8d7c6b5a43", COMMIT)]
            export = await page.request.get(f"{base}/console/audit.jsonl?revision=nope")
            assert await export.text() == ""

            await page.goto(f"{base}/console/hub")
            assert await page.locator("table.data tbody tr").count() == len(hub.catalog())
            time_row = await page.locator("tr", has_text="pypi:mcp-server-time").inner_text()
            assert time_row.split()[0] == "time"
            await shot(page, artifacts, "07-hub")

            # Outside ada's scope: ops is not hers.
            await page.goto(f"{base}/console/ws/ops")
            assert "not one this console shows you" in await page.locator(".alert").inner_text()

            # Sign out (a POST with the CSRF nonce): the pages are closed again.
            await page.goto(f"{base}/console/workspaces")
            await page.click("header button")
            assert page.url == f"{base}/console/login"
            await page.goto(f"{base}/console/usage")
            assert page.url == f"{base}/console/login"
            await context.close()


def jar(cookie: str) -> dict[str, str]:
    return {"Cookie": f"mcpyard_console={cookie}"}


async def test_the_session_opens_the_console_only(settings_for: Any, beta: Any) -> None:
    eng = workspace("eng", [server("beta", beta.url)], [member("ada", ADA, role="admin")])
    async with run_gateway(settings_for([eng])) as gw, httpx.AsyncClient(
            base_url=gw.base_url, timeout=30) as http:
        await gw.wait_serving("eng", "beta")
        # A sign-in POSTed from another site is refused (login CSRF), as is a wrong token.
        evil = await http.post("/console/login", data={"token": ADA},
                               headers={"Origin": "https://evil.example"})
        assert evil.status_code == 403 and "mcpyard_console" not in evil.cookies
        wrong = await http.post("/console/login", data={"token": BOB},
                                headers={"Origin": gw.base_url})
        assert wrong.status_code == 401
        ok = await http.post("/console/login", data={"token": ADA},
                             headers={"Origin": gw.base_url})
        assert ok.status_code == 303
        set_cookie = ok.headers["set-cookie"]
        assert "HttpOnly" in set_cookie and "SameSite=strict" in set_cookie
        assert "Path=/console" in set_cookie and "Secure" not in set_cookie
        behind_tls = await http.post("/console/login", data={"token": ADA},
                                     headers={"Origin": gw.base_url,
                                              "X-Forwarded-Proto": "https"})
        assert "Secure" in behind_tls.headers["set-cookie"]
        session = ok.cookies["mcpyard_console"]
        http.cookies.clear()  # every request below names the cookie it sends
        page = await http.get("/console/workspaces", headers=jar(session))
        assert page.status_code == 200
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        # The cookie is no bearer token: the MCP endpoint still wants one.
        mcp = await http.post("/ws/eng/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                              headers={"Accept": "application/json, text/event-stream",
                                       "Cookie": f"mcpyard_console={session}"})
        assert mcp.status_code == 401
        # Sign-out without the CSRF nonce is refused; the page still opens.
        out = await http.post("/console/logout", data={},
                              headers={"Cookie": f"mcpyard_console={session}",
                                       "Origin": gw.base_url})
        assert out.status_code == 403
        # A forged or tampered cookie opens nothing.
        forged = session[:-3] + ("AAA" if not session.endswith("AAA") else "BBB")
        page = await http.get("/console/workspaces", headers=jar(forged))
        assert page.status_code == 303 and page.headers["location"] == "/console/login"
        # Revocation bites: ada no longer admin -> the same cookie is refused.
        demoted = eng.model_copy(update={"members": (member("ada", ADA),)})
        gw.runtime.apply({"eng": demoted})
        page = await http.get("/console/workspaces", headers=jar(session))
        assert page.status_code == 303
