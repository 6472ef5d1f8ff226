"""Discovery: what the tools of a workspace are, how to find them, and whether they changed.

Pure functions over what servers report (their tools/list, prompts and resources) and their
compiled configuration: tool search (:mod:`search`), pinned tool definitions (:mod:`pins`),
capability manifests (:mod:`manifest`) and the docs rendered from them (:mod:`docs`). No I/O
here (import-linter keeps it so): the gateway, the operator and the CLI fetch what servers
report and write what these functions return.
"""

from __future__ import annotations

from mcpyard.discovery import docs, manifest, pins, search

__all__ = ["docs", "manifest", "pins", "search"]
