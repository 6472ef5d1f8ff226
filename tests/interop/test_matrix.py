"""The interop matrix (see ``matrix``): real clients x real upstreams, directly and through one
gateway, in both protocol eras. Every cell that works directly must work through the gateway
with the same result. The table is printed and kept in ``docs/compatibility.md``: the test
fails when the committed file's cells differ from this run's; ``MCPYARD_UPDATE_COMPAT=1``
rewrites it (review the diff like code).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from gwtools import NS, member, run_gateway, serving, workspace
from matrix import CLIENTS, Outcome, Side, run, table
from servers import FEATURES, HERE, ROOT, Upstream, check_installed, everything_http, upstreams

from mcpyard.compiler.config import ServerConfig
from mcpyard.crypto import tokens

pytestmark = pytest.mark.anyio

TOKEN = tokens.new()
DOC = ROOT / "docs" / "compatibility.md"
KNOWN: dict[tuple[str, str], str] = {}
"""(upstream, feature) cells where the gateway does less than a direct connection, and why."""
PARALLEL = 6
"""Cells run at once (each holds a client and, for stdio servers, a server process)."""


def _config(up: Upstream, folder: Path, urls: dict[str, str]) -> ServerConfig:
    if up.command is None:
        return ServerConfig(slug=up.name, name=up.name, namespace=NS, mode="proxy",
                            transport="streamable-http", url=urls[up.name], timeout_seconds=90)
    return ServerConfig(slug=up.name, name=up.name, namespace=NS, mode="hosted",
                        transport="stdio", command=tuple(up.command(folder)),
                        env=up.env(folder), timeout_seconds=90)


def _compare(direct: dict[str, Outcome], gateway: dict[str, Outcome]) -> None:
    """A gateway cell that gave another result than the direct one fails, saying where."""
    for feature, g in gateway.items():
        d = direct.get(feature)
        if d is None or not d.ok or not g.ok:
            continue
        if feature == "tools/call" and isinstance(d.detail, dict):
            differ = sorted(k for k in d.detail if d.detail[k] != g.detail.get(k))
            if differ:
                pairs = [(d.detail[k], g.detail.get(k)) for k in differ][:2]
                gateway[feature] = Outcome(False, f"results differ: {', '.join(differ)}: {pairs}")
        elif feature == "tools/list":
            # The gateway lists what the server offers to a client that can answer its
            # requests (it relays them): a client that declares no sampling, say, may see a
            # tool more through the gateway than directly, never one less.
            missing = sorted(set(d.detail) - set(g.detail))
            if missing:
                gateway[feature] = Outcome(False, f"missing through the gateway: {missing}")
        elif feature in ("prompts", "resources") and d.detail != g.detail:
            gateway[feature] = Outcome(False, f"differs: {d.detail!r:.300} vs {g.detail!r:.300}")


def _structure(markdown: str) -> list[str]:
    """What the committed table must share with a run: every row and which cells are offered
    (a pass or fail may move with the machine; that is asserted by the rule, not here)."""
    return [re.sub(r"pass|fail", "x", line) for line in markdown.splitlines()
            if line.startswith(("|", "###"))]


@pytest.mark.filterwarnings("ignore::mcp.shared.exceptions.MCPDeprecationWarning")
async def test_interop_matrix(settings_for: Any, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    check_installed()
    ups = upstreams()
    with everything_http() as everything, serving(str(HERE / "backchannel_app.py")) as bc:
        urls = {"everything-http": everything, "backchannel": bc.url}
        folders: dict[tuple[str, str, str], Path] = {}
        for client in CLIENTS:
            for up in ups:
                for side in ("direct", "gateway"):
                    folder = tmp_path / client / side / up.name
                    folder.mkdir(parents=True)
                    up.prepare(folder)
                    folders[(client, side, up.name)] = folder
        configs = [workspace(client, [_config(up, folders[(client, "gateway", up.name)], urls)
                                      for up in ups], [member("m", TOKEN)])
                   for client in CLIENTS]
        results: dict[tuple[str, str], tuple[dict[str, Outcome], dict[str, Outcome]]] = {}
        limit = anyio.CapacityLimiter(PARALLEL)
        async with run_gateway(settings_for(configs)) as gw:
            for client in CLIENTS:
                await gw.wait_serving(client, *(u.name for u in ups))

            async def one(client: str, up: Upstream) -> None:
                direct_folder = folders[(client, "direct", up.name)]
                direct = Side(url=urls.get(up.name), folder=direct_folder,
                              command=up.command(direct_folder) if up.command else None,
                              env=up.env(direct_folder))
                via = Side(url=gw.url(client), token=TOKEN, slug=up.name,
                           folder=folders[(client, "gateway", up.name)],
                           sse_url=gw.url(client, "sse"))
                async with limit:
                    d = await run(client, up, direct)
                async with limit:
                    g = await run(client, up, via)
                _compare(d, g)
                results[(client, up.name)] = (d, g)

            with anyio.fail_after(1500):
                async with anyio.create_task_group() as tg:
                    for client in CLIENTS:
                        for up in ups:
                            tg.start_soon(one, client, up)
    markdown = table(results, [u.name for u in ups])
    broken = [f"{client} x {server}: {feature}: {g[feature].detail}"
              for (client, server), (d, g) in sorted(results.items())
              for feature in FEATURES
              if d.get(feature) is not None and d[feature].ok
              and (g.get(feature) is None or not g[feature].ok)
              and (server, feature) not in KNOWN]
    with capsys.disabled():
        print("\n\nInterop matrix (direct / gateway)\n\n" + markdown, file=sys.stderr)
        for line in broken:
            print("GATEWAY WORSE THAN DIRECT:", line, file=sys.stderr)
    document = _document(markdown, results)
    if os.environ.get("MCPYARD_UPDATE_COMPAT"):
        DOC.write_text(document)
    assert not broken, "\n".join(broken)
    assert _structure(DOC.read_text()) == _structure(document), (
        "docs/compatibility.md is stale: run the matrix with MCPYARD_UPDATE_COMPAT=1")


def _document(markdown: str, results: dict[tuple[str, str], tuple[dict[str, Outcome],
                                                                    dict[str, Outcome]]]) -> str:
    notes = sorted({f"- {client} x {server}, {feature} (direct): {_failure(d[feature].detail)}"
                    for (client, server), (d, _) in results.items()
                    for feature in FEATURES
                    if d.get(feature) is not None and d[feature].ok is False})
    head = (ROOT / "tests" / "interop" / "compatibility.head.md").read_text()
    known = "\n".join(f"- {server}, {feature}: {why}" for (server, feature), why
                      in sorted(KNOWN.items())) or "None."
    return (head + "\n" + markdown + "\n## Where the gateway does less than a direct "
            "connection\n\n" + known + "\n\n## Cells that fail directly\n\nThe servers' "
            "own answers to the matrix's generic arguments, or what the client or server "
            "does not support; the same happens through the gateway.\n\n"
            + ("\n".join(_clean(n) for n in notes) or "None.") + "\n")


def _failure(detail: Any) -> Any:
    """What failed: for tools/call, the tools that raised and why."""
    if isinstance(detail, dict):
        return "; ".join(f"{k}: {v['error']}" for k, v in sorted(detail.items())
                         if isinstance(v, dict) and "error" in v)
    return detail


def _clean(line: str) -> str:
    return re.sub(r"/tmp/\S+", "<tmp>", line)[:400]

