"""Benchmark: compile 1,000 workspaces x 20 servers x 100 members (not a test).

    python bench/compile.py [--workspaces 1000] [--servers 20] [--members 100]

Prints one JSON line: resources, seconds to validate (parse) them, seconds to compile, and
the peak resident memory of the process.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import resource
import time
from datetime import UTC, datetime

from mcpyard import compiler, hub
from mcpyard.api import v1alpha1


def documents(workspaces: int, servers: int, members: int) -> list[dict[str, object]]:
    docs: list[dict[str, object]] = []
    for w in range(workspaces):
        ns, ws = f"team-{w}", f"ws-{w}"
        docs.append({"apiVersion": "mcpyard.io/v1alpha1", "kind": "Workspace",
                     "metadata": {"name": ws, "namespace": ns}, "spec": {"plan": "pro"}})
        for s in range(servers):
            docs.append({"apiVersion": "mcpyard.io/v1alpha1", "kind": "MCPServer",
                         "metadata": {"name": f"server-{s}", "namespace": ns},
                         "spec": {"workspace": ws,
                                  "proxy": {"url": f"https://s{s}.example.com/mcp"},
                                  "tools": {"exclude": ["delete_*"]}}})
        for m in range(members):
            digest = hashlib.sha256(f"{w}/{m}".encode()).hexdigest()
            docs.append({"apiVersion": "mcpyard.io/v1alpha1", "kind": "Member",
                         "metadata": {"name": f"member-{m}", "namespace": ns},
                         "spec": {"workspace": ws, "user": f"m{m}@example.com",
                                  "tokenHash": f"sha256:{digest}",
                                  "access": {"allow": ["server-1__*", "server-2__*"]}}})
    return docs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workspaces", type=int, default=1000)
    ap.add_argument("--servers", type=int, default=20)
    ap.add_argument("--members", type=int, default=100)
    args = ap.parse_args()
    docs = documents(args.workspaces, args.servers, args.members)
    t0 = time.perf_counter()
    resources = [v1alpha1.parse(d) for d in docs]
    t1 = time.perf_counter()
    result = compiler.compile(resources, now=datetime.now(UTC), catalog=hub.catalog())
    t2 = time.perf_counter()
    assert len(result.workspaces) == args.workspaces and not result.errors
    print(json.dumps({
        "resources": len(resources),
        "parse_s": round(t1 - t0, 2),
        "compile_s": round(t2 - t1, 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores",
    }))


if __name__ == "__main__":
    main()
