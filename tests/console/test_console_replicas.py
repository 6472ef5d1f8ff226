"""Console sessions across replicas: the cookie key is derived from the master key, so a
cookie one gateway issued opens the console of another gateway with the same master key (the
same state directory, or the cluster's master-key Secret), and no gateway with another key."""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import Any

import httpx
import pytest
from gwtools import member, run_gateway, server, workspace

from mcpyard.crypto import tokens, vault
from mcpyard.gateway.console import _session

pytestmark = pytest.mark.anyio

ADA = tokens.new()


def jar(cookie: str) -> dict[str, str]:
    return {"Cookie": f"{_session.COOKIE}={cookie}"}


async def test_a_session_opens_every_replica_with_the_same_master_key(
        settings_for: Any, beta: Any, state_dir: Path, tmp_path: Path) -> None:
    eng = workspace("eng", [server("beta", beta.url)], [member("ada", ADA, role="admin")])
    other_state = tmp_path / "elsewhere"
    async with contextlib.AsyncExitStack() as stack:
        one = await stack.enter_async_context(run_gateway(settings_for([eng])))
        two = await stack.enter_async_context(run_gateway(settings_for([eng])))
        alien = await stack.enter_async_context(run_gateway(dataclasses.replace(
            settings_for([eng]), state_dir=other_state)))
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=30))
        signed_in = await http.post(f"{one.base_url}/console/login", data={"token": ADA},
                                    headers={"Origin": one.base_url})
        assert signed_in.status_code == 303
        cookie = signed_in.cookies[_session.COOKIE]
        http.cookies.clear()

        # The key is derived, never the master key itself: it signs nothing else.
        master = vault.load_or_create_master_key(state_dir)
        assert master != vault.load_or_create_master_key(other_state)
        assert _session.derive_key(master) != master
        assert _session.Signer(_session.derive_key(master)).check(cookie) is not None
        assert _session.Signer(master).check(cookie) is None

        # The second replica (same state, same master key) opens the console with it.
        page = await http.get(f"{two.base_url}/console/workspaces", headers=jar(cookie))
        assert page.status_code == 200 and "/ws/eng/mcp" in page.text
        # A gateway with another master key refuses it: back to the sign-in form.
        page = await http.get(f"{alien.base_url}/console/workspaces", headers=jar(cookie))
        assert page.status_code == 303 and page.headers["location"] == "/console/login"


def test_a_signer_without_its_master_key_yet_issues_and_accepts_nothing() -> None:
    key: list[bytes] = []
    signer = _session.Signer(master_key=lambda: key[0] if key else None)
    assert not signer.ready
    assert signer.check("e30.AAAA") is None
    key.append(b"k" * 32)
    cookie, _ = signer.issue("h")
    assert signer.check(cookie) is not None
    key[0] = b"j" * 32  # a new master key: old cookies stop opening anything
    assert signer.check(cookie) is None
