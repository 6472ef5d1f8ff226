"""``mcpyard docs DIR [--out DIR]``: capability manifests and docs pages for a folder of
manifests (a docs site to publish, or to review in a pull request).

Writes, per workspace ``W``: ``W/manifest.json`` (every server's manifest), ``W/index.html``
and ``W/index.md``, and per server ``W/SLUG.html``, ``W/SLUG.md`` and ``W/SLUG.json``. The
lists come from the servers themselves (started as ``serve`` starts them) or a tools file.
``--summarizer-url`` asks an OpenAI-compatible chat-completions endpoint for each server's
summary paragraph (its key from ``MCPYARD_SUMMARIZER_API_KEY``); without it, or when it fails,
the generated summary stays: the docs never depend on it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

import httpx2

from mcpyard.cli import _discover
from mcpyard.discovery import docs, manifest
from mcpyard.gateway import _docs
from mcpyard.jsontypes import text

log = logging.getLogger("mcpyard.cli")
KEY_ENV = "MCPYARD_SUMMARIZER_API_KEY"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "docs", help="write capability manifests and docs pages of a folder's servers",
        description="Start each server of DIR as `serve` would (or read --tools FILE), then "
                    "write every workspace's manifest.json, index and per-server pages "
                    "(HTML and Markdown) under --out.")
    _discover.add_options(p)
    p.add_argument("--out", type=Path, default=Path("docs-site"), metavar="DIR",
                   help="where to write (default ./docs-site)")
    p.add_argument("--summarizer-url", metavar="URL",
                   default=os.environ.get("MCPYARD_SUMMARIZER_URL"),
                   help="an OpenAI-compatible API base (…/v1) that writes each summary "
                        f"(optional; key from {KEY_ENV})")
    p.add_argument("--summarizer-model", default="gpt-4o-mini", metavar="MODEL")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    found = _discover.run_discovery(args, "docs")
    if found is None:
        return 2
    for name, live in sorted(found.lives.items()):
        built = _docs.manifests(live)
        if args.summarizer_url:
            built = [_summarized(m, args.summarizer_url, args.summarizer_model) for m in built]
        written = write(args.out / name, live.config.display_name, built, live.config.path)
        print(f"{name}: {len(built)} servers -> {written}")
    return 0


def write(out: Path, display_name: str, built: list[manifest.Manifest], mcp_path: str) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    title = f"{display_name}: MCP servers"
    (out / "manifest.json").write_text(json.dumps(
        {"workspace": out.name, "displayName": display_name, "servers": built}, indent=2) + "\n")
    (out / "index.html").write_text(docs.index_html(title, built, link_suffix=".html",
                                                    mcp_url=mcp_path))
    (out / "index.md").write_text(docs.index_markdown(title, built, mcp_path))
    for m in built:
        slug = text(m, "server", "slug")
        (out / f"{slug}.json").write_text(json.dumps(m, indent=2) + "\n")
        (out / f"{slug}.html").write_text(docs.server_html(m))
        (out / f"{slug}.md").write_text(docs.server_markdown(m))
    return out


def _summarized(m: manifest.Manifest, url: str, model: str) -> manifest.Manifest:
    """The manifest with the summarizer's paragraph, or unchanged when it cannot give one."""
    key = os.environ.get(KEY_ENV)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    body = {"model": model, "temperature": 0, "messages": [
        {"role": "system", "content": "You describe software tools precisely and briefly."},
        {"role": "user", "content": manifest.prompt_for_summary(m)}]}
    try:
        r = httpx2.post(url.rstrip("/") + "/chat/completions", json=body, headers=headers,
                       timeout=60)
        r.raise_for_status()
        said = r.json()["choices"][0]["message"]["content"]
    except (httpx2.HTTPError, ValueError, KeyError, IndexError, TypeError) as exc:
        # The status line only: an error body might echo the request's key.
        print(f"warning: {text(m, 'server', 'slug')}: summarizer failed "
              f"({type(exc).__name__}); keeping the generated summary", file=sys.stderr)
        return m
    return manifest.enrich(m, said) if isinstance(said, str) else m
