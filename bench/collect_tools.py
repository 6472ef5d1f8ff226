"""Collect real MCP servers' tool definitions for the tool-search benchmark.

Each server below is started over stdio (an npm package at its pinned version, installed by
this script with `npm install --ignore-scripts` into ~/.cache/mcpyard/bench-servers/; PyPI
ones from this venv), with placeholder credentials (no server here calls its API to list its
tools), and asked for tools/list through the stdio JSON-RPC. Its tools are written, as the
server sent them, to bench/data/tools/<slug>.json with the package and version they came from.
A server that fails to install or start is reported and skipped.

    .venv/bin/python bench/collect_tools.py [--only SLUG...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
CACHE = Path.home() / ".cache" / "mcpyard" / "bench-servers"
OUT = HERE / "data" / "tools"
FAKE = "placeholder-not-a-real-key-0000"
SCRATCH = tempfile.mkdtemp(prefix="mcpyard-bench-")

def _uvx(package: str, command: str) -> list[str]:
    """A PyPI server at its pinned version, run by uv (installed with the test extra)."""
    return [str(Path(sys.executable).parent / "uvx"), "--from", package, command]


# slug -> (package spec, command, extra env)
SERVERS: dict[str, tuple[str, list[str], dict[str, str]]] = {
    "github": ("npm:@modelcontextprotocol/server-github@2025.4.8",
               ["@bin/mcp-server-github"], {"GITHUB_PERSONAL_ACCESS_TOKEN": FAKE}),
    "gitlab": ("npm:@modelcontextprotocol/server-gitlab@2025.4.25",
               ["@bin/mcp-server-gitlab"], {"GITLAB_PERSONAL_ACCESS_TOKEN": FAKE}),
    "filesystem": ("npm:@modelcontextprotocol/server-filesystem@2026.8.31",
                   ["@bin/mcp-server-filesystem", SCRATCH], {}),
    "memory": ("npm:@modelcontextprotocol/server-memory@2026.8.31",
               ["@bin/mcp-server-memory"], {"MEMORY_FILE_PATH": f"{SCRATCH}/m.json"}),
    "everything": ("npm:@modelcontextprotocol/server-everything@2026.8.31",
                   ["@bin/mcp-server-everything"], {}),
    "thinking": ("npm:@modelcontextprotocol/server-sequential-thinking@2026.8.31",
                 ["@bin/mcp-server-sequential-thinking"], {}),
    "slack": ("npm:@modelcontextprotocol/server-slack@2025.4.25",
              ["@bin/mcp-server-slack"], {"SLACK_BOT_TOKEN": FAKE, "SLACK_TEAM_ID": "T0"}),
    "puppeteer": ("npm:@modelcontextprotocol/server-puppeteer@2025.5.12",
                  ["@bin/mcp-server-puppeteer"], {}),
    "maps": ("npm:@modelcontextprotocol/server-google-maps@0.6.2",
             ["@bin/mcp-server-google-maps"], {"GOOGLE_MAPS_API_KEY": FAKE}),
    "brave": ("npm:@modelcontextprotocol/server-brave-search@0.6.2",
              ["@bin/mcp-server-brave-search"], {"BRAVE_API_KEY": FAKE}),
    "postgres": ("npm:@modelcontextprotocol/server-postgres@0.6.2",
                 ["@bin/mcp-server-postgres", "postgresql://u:p@127.0.0.1:1/db"], {}),
    "redis": ("npm:@modelcontextprotocol/server-redis@2025.4.25",
              ["@bin/mcp-server-redis", "redis://127.0.0.1:1"], {}),
    "playwright": ("npm:@playwright/mcp@0.0.83", ["@bin/playwright-mcp"], {}),
    "notion": ("npm:@notionhq/notion-mcp-server@2.5.2", ["@bin/notion-mcp-server"],
               {"NOTION_TOKEN": FAKE}),
    "kubernetes": ("npm:mcp-server-kubernetes@4.1.7", ["@bin/mcp-server-kubernetes"], {}),
    "stripe": ("npm:@stripe/mcp@0.3.3", ["@bin/mcp", "--tools=all",
                                        "--api-key=sk_test_" + FAKE], {}),
    "supabase": ("npm:@supabase/mcp-server-supabase@0.13.0",
                 ["@bin/mcp-server-supabase", "--access-token", FAKE], {}),
    "mongodb": ("npm:mongodb-mcp-server@3.0.4", ["@bin/mongodb-mcp-server"], {}),
    "neon": ("npm:@neondatabase/mcp-server-neon@0.6.5",
             ["@bin/mcp-server-neon", "start", FAKE], {}),
    "launchdarkly": ("npm:@launchdarkly/mcp-server@0.6.2",
                     ["@bin/mcp", "start", "--api-key", FAKE], {}),
    "context7": ("npm:@upstash/context7-mcp@4.1.1", ["@bin/context7-mcp"], {}),
    "firecrawl": ("npm:firecrawl-mcp@3.26.0", ["@bin/firecrawl-mcp"],
                  {"FIRECRAWL_API_KEY": "fc-" + FAKE}),
    "hubspot": ("npm:@hubspot/mcp-server@0.4.0", ["@bin/mcp-hubspot"],
                {"PRIVATE_APP_ACCESS_TOKEN": FAKE}),
    "circleci": ("npm:@circleci/mcp-server-circleci@0.20.0",
                 ["@bin/mcp-server-circleci"], {"CIRCLECI_TOKEN": FAKE}),
    "elasticsearch": ("npm:@elastic/mcp-server-elasticsearch@0.3.1",
                      ["@bin/mcp-server-elasticsearch"],
                      {"ES_URL": "http://127.0.0.1:1", "ES_API_KEY": FAKE}),
    "chrome": ("npm:chrome-devtools-mcp@1.11.0", ["@bin/chrome-devtools-mcp"], {}),
    "azure-devops": ("npm:@azure-devops/mcp@2.10.0", ["@bin/mcp-server-azuredevops",
                                                      "example-org"], {}),
    "tavily": ("npm:tavily-mcp@0.2.22", ["@bin/tavily-mcp"], {"TAVILY_API_KEY": FAKE}),
    "shopify": ("npm:@shopify/dev-mcp@1.16.0", ["@bin/shopify-dev-mcp"], {}),
    "exa": ("npm:exa-mcp-server@3.4.1", ["@bin/exa-mcp-server"], {"EXA_API_KEY": FAKE}),
    "airtable": ("npm:airtable-mcp-server@1.14.0", ["@bin/airtable-mcp-server"],
                 {"AIRTABLE_API_KEY": FAKE}),
    "figma": ("npm:figma-developer-mcp@0.13.2", ["@bin/figma-developer-mcp", "--stdio",
                                                 f"--figma-api-key={FAKE}"], {}),
    "heroku": ("npm:@heroku/mcp-server@1.2.8", ["@bin/heroku-mcp-server"],
               {"HEROKU_API_KEY": FAKE}),
    "twilio": ("npm:@twilio-alpha/mcp@0.7.0",
               ["@bin/twilio-mcp-server", "AC" + "0" * 32 + "/SK" + "0" * 32 + ":" + FAKE], {}),
    "cloudflare": ("npm:@cloudflare/mcp-server-cloudflare@0.2.0",
                   ["@bin/mcp-server-cloudflare", "run", "0" * 32],
                   {"CLOUDFLARE_API_TOKEN": FAKE, "CLOUDFLARE_ACCOUNT_ID": "0" * 32}),
    "digitalocean": ("npm:@digitalocean/mcp@1.0.70", ["@bin/mcp"],
                     {"DIGITALOCEAN_API_TOKEN": FAKE}),
    "dynatrace": ("npm:@dynatrace-oss/dynatrace-mcp-server@2.1.2",
                  ["@bin/mcp-server-dynatrace"],
                  {"DT_ENVIRONMENT": "https://abc12345.apps.dynatrace.com",
                   "DT_PLATFORM_TOKEN": "dt0s16." + FAKE}),
    "mapbox": ("npm:@mapbox/mcp-server@0.14.0", ["@bin/mcp-server"],
               {"MAPBOX_ACCESS_TOKEN": "pk." + FAKE}),
    "upstash": ("npm:@upstash/mcp-server@0.3.0",
                ["@bin/mcp-server", "run", "a@example.com", FAKE], {}),
    "auth0": ("npm:@auth0/auth0-mcp-server@0.1.0-beta.19", ["@bin/auth0-mcp", "run"], {}),
    "pinecone": ("npm:@pinecone-database/mcp@0.3.0", ["@bin/pinecone-mcp"],
                 {"PINECONE_API_KEY": FAKE}),
    "railway": ("npm:@railway/mcp-server@0.1.12", ["@bin/railway-mcp-server"], {}),
    "atlassian": ("pypi:mcp-atlassian==0.23.1", _uvx("mcp-atlassian==0.23.1", "mcp-atlassian"),
                  {"JIRA_URL": "https://example.atlassian.net", "JIRA_USERNAME": "a@example.com",
                   "JIRA_API_TOKEN": FAKE, "CONFLUENCE_URL": "https://example.atlassian.net/wiki",
                   "CONFLUENCE_USERNAME": "a@example.com", "CONFLUENCE_API_TOKEN": FAKE}),
    "pagerduty": ("pypi:pagerduty-mcp==1.1.0",
                  [*_uvx("pagerduty-mcp==1.1.0", "pagerduty-mcp"), "--enable-write-tools"],
                  {"PAGERDUTY_USER_API_KEY": FAKE}),
    "gworkspace": ("pypi:workspace-mcp==2.2.1", _uvx("workspace-mcp==2.2.1", "workspace-mcp"),
                   {"GOOGLE_OAUTH_CLIENT_ID": "x.apps.googleusercontent.com",
                    "GOOGLE_OAUTH_CLIENT_SECRET": FAKE}),
    "grafana": ("pypi:mcp-grafana==2.1.1", _uvx("mcp-grafana==2.1.1", "mcp-grafana"),
                {"GRAFANA_URL": "http://127.0.0.1:1", "GRAFANA_API_KEY": FAKE}),
    "docker": ("pypi:mcp-server-docker==0.3.0",
               _uvx("mcp-server-docker==0.3.0", "mcp-server-docker"), {}),
    "sqlite": ("pypi:mcp-server-sqlite==2025.4.25",
               [*_uvx("mcp-server-sqlite==2025.4.25", "mcp-server-sqlite"), "--db-path",
                f"{SCRATCH}/db.sqlite"], {}),
    "fetch": ("pypi:mcp-server-fetch==2026.10.24",
              _uvx("mcp-server-fetch==2026.10.24", "mcp-server-fetch"), {}),
    "k8s": ("pypi:kubernetes-mcp-server==0.0.69",
            _uvx("kubernetes-mcp-server==0.0.69", "kubernetes-mcp-server"), {}),
    "opensearch": ("pypi:opensearch-mcp-server-py==0.12.0",
                   _uvx("opensearch-mcp-server-py==0.12.0", "opensearch-mcp-server-py"),
                   {"OPENSEARCH_URL": "http://127.0.0.1:1"}),
    "obsidian": ("pypi:mcp-obsidian==0.2.3", _uvx("mcp-obsidian==0.2.3", "mcp-obsidian"),
                 {"OBSIDIAN_API_KEY": FAKE}),
    "homeassistant": ("pypi:hass-mcp==0.6.1", _uvx("hass-mcp==0.6.1", "hass-mcp"),
                      {"HA_URL": "http://127.0.0.1:1", "HA_TOKEN": FAKE}),
    "dbt": ("pypi:dbt-mcp==2.8.0", _uvx("dbt-mcp==2.8.0", "dbt-mcp"), {}),
    "git": ("pypi:mcp-server-git", [sys.executable, "-c",
                                    "from mcp_server_git import main; main()"], {}),
    "time": ("pypi:mcp-server-time", [sys.executable, "-c",
                                      "from mcp_server_time import main; main()"], {}),
    "demo": ("mcpyard.demo (this repository)", [sys.executable, "-m", "mcpyard.demo"], {}),
}


def _install(package: str) -> Path:
    """The npm package (``npm:NAME@VERSION``) installed in its own folder; its .bin folder."""
    spec = package.removeprefix("npm:")
    folder = CACHE / spec.rsplit("@", 1)[0].replace("@", "_").replace("/", "_")
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "package.json").exists():
        (folder / "package.json").write_text('{"private": true}\n')
    if not (folder / "node_modules" / ".bin").is_dir():
        subprocess.run(["npm", "install", "--ignore-scripts", "--no-audit", "--no-fund", spec],
                       cwd=folder, check=True, capture_output=True,
                       env={**os.environ, "PUPPETEER_SKIP_DOWNLOAD": "1"})
    return folder / "node_modules" / ".bin"


async def _list(command: list[str], env: dict[str, str], timeout: float) -> list[dict[str, Any]]:
    """tools/list over stdio, as raw JSON-RPC, so each definition is kept exactly as sent."""
    proc = await asyncio.create_subprocess_exec(
        *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL, env={**os.environ, **env}, cwd=SCRATCH,
        limit=64 * 1024 * 1024)
    assert proc.stdin is not None and proc.stdout is not None
    stdin, stdout = proc.stdin, proc.stdout

    async def ask(id_: int, method: str, params: dict[str, Any]) -> dict[str, Any]:
        stdin.write(json.dumps({"jsonrpc": "2.0", "id": id_, "method": method,
                                "params": params}).encode() + b"\n")
        await stdin.drain()
        while True:
            line = await stdout.readline()
            if not line:
                raise RuntimeError(f"the server exited during {method}")
            try:
                msg = json.loads(line)
            except ValueError:
                continue  # a server printing something else on stdout
            if isinstance(msg, dict) and msg.get("id") == id_:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                result: dict[str, Any] = msg["result"]
                return result

    try:
        async with asyncio.timeout(timeout):
            await ask(1, "initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                        "clientInfo": {"name": "mcpyard-bench", "version": "1"}})
            stdin.write(b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n')
            tools: list[dict[str, Any]] = []
            cursor = None
            for n in range(2, 200):
                page = await ask(n, "tools/list", {"cursor": cursor} if cursor else {})
                tools += page.get("tools", [])
                cursor = page.get("nextCursor")
                if not cursor:
                    break
            return tools
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", nargs="*")
    parser.add_argument("--timeout", type=float, default=60)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    failed = []
    for slug, (package, command, env) in SERVERS.items():
        if args.only and slug not in args.only:
            continue
        try:
            if package.startswith("npm:"):
                bin_dir = _install(package)
                command = [str(bin_dir / c[5:]) if c.startswith("@bin/") else c
                           for c in command]
            tools = asyncio.run(_list(command, env, args.timeout))
        except BaseException as exc:  # report every kind of failure and go on
            if isinstance(exc, KeyboardInterrupt):
                raise
            failed.append(slug)
            print(f"{slug}: failed: {type(exc).__name__}: {str(exc)[:200]}", file=sys.stderr)
            continue
        (OUT / f"{slug}.json").write_text(json.dumps(
            {"server": slug, "source": package, "tools": tools}, indent=1, sort_keys=True) + "\n")
        print(f"{slug}: {len(tools)} tools")
    return 0


if __name__ == "__main__":
    sys.exit(main())
