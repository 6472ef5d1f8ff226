"""Loading the manifests folder, and reloading it when a file changes.

A load reads every manifest (:func:`mcpyard.manifests.load`), decrypts the EncryptedSecrets
into the vault, compiles (:func:`mcpyard.compiler.compile`, target ``local``) and applies the
result. A workspace with an error keeps its last good configuration (one that never served
gets what compiled, minus the resources at fault); a file that cannot be parsed holds back the
workspaces it defined before (all of them when it is a new file). Problems are logged as
``file: namespace/Kind/name: field: message`` and shown in /readyz.

:func:`publish` is the last-good rule itself, shared with the cluster source
(:mod:`mcpyard.gateway._cluster`), which reads compiled configurations from Secrets instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import watchfiles

from mcpyard import compiler, hub, manifests
from mcpyard.api._problem import Problem
from mcpyard.compiler.config import WorkspaceConfig
from mcpyard.gateway import _records
from mcpyard.gateway._metrics import Metrics
from mcpyard.gateway._runtime import Runtime, SecretState
from mcpyard.gateway._secrets import Decryptor

log = logging.getLogger("mcpyard.gateway")


@dataclass(frozen=True)
class Plan:
    loaded: manifests.Loaded
    compiled: compiler.Compilation
    secrets: SecretState
    commit: str | None = None
    """The git commit of the folder's checkout, read once per load (for call records)."""


def publish(runtime: Runtime, configs: Mapping[str, WorkspaceConfig],
            problems: Mapping[str, Collection[str]], general: Collection[str], *,
            secrets: SecretState | None = None, commit: str | None = None) -> list[str]:
    """Serve ``configs`` under the last-good rule; the workspaces held back.

    A workspace named in ``problems`` that serves keeps its last good configuration (its entry
    in ``configs``, if any, is ignored); one that never served is not served. Problems show in
    /readyz: per workspace, and ``general`` for the whole load.
    """
    keep = sorted(name for name in problems if name in runtime.live)
    runtime.held = {name: list(lines) for name, lines in problems.items()}
    runtime.reload_errors = list(general)
    runtime.apply(configs, keep=keep, secrets=secrets, commit=commit)
    served = ", ".join(sorted(runtime.live)) or "nothing"
    log.info("configuration %d applied: serving %s%s", runtime.generation, served,
             f"; {len(keep)} held at their last good config" if keep else "")
    return keep


def in_use(runtime: Runtime) -> set[str]:
    """The identities of every secret value a serving workspace injects."""
    return {i.ref.identity for live in runtime.live.values()
            for s in live.config.servers for i in s.injections}


def _workspace_of(resource: object) -> str | None:
    kind = getattr(resource, "kind", None)
    if kind == "Workspace":
        return resource.metadata.name  # type: ignore[attr-defined, no-any-return]
    spec = getattr(resource, "spec", None)
    ws = getattr(spec, "workspace", None)
    return ws if isinstance(ws, str) else None


def _file(source: str) -> str:
    return source.rsplit(":", 1)[0] if source.rsplit(":", 1)[-1].isdigit() else source


def _git_dirs(folder: Path) -> list[Path]:
    """The git folders holding the HEAD and refs of ``folder``'s checkout (none outside one)."""
    gitdir = _records.find_gitdir(folder.resolve())
    if gitdir is None or not gitdir.is_dir():
        return []
    common = gitdir / "commondir"  # a linked worktree keeps its branches in the main one
    return [gitdir, *([(gitdir / common.read_text().strip()).resolve()]
                      if common.is_file() else [])]


class Reloader:
    def __init__(self, runtime: Runtime, folder: Path, decryptor: Decryptor, *,
                 debounce_ms: int = 300, metrics: Metrics | None = None) -> None:
        self.runtime = runtime
        self.metrics = metrics
        self.folder = folder
        self.decryptor = decryptor
        self.debounce_ms = debounce_ms
        self._files: dict[str, set[str]] = {}
        """Which workspaces each file defined at the last load."""
        self._lock = asyncio.Lock()

    def plan(self) -> Plan:
        """Read, decrypt and compile (blocking: run it in a thread)."""
        loaded = manifests.load([self.folder])
        state = self.decryptor.decrypt(loaded)
        observed = compiler.Observed(
            decrypted=frozenset(k for k in {(ns, n) for (ns, kind, n) in loaded.documents
                                            if kind == "EncryptedSecret"}
                                if k not in state.failures),
            secret_failures=dict(state.failures))
        compiled = compiler.compile(loaded.resources, now=datetime.now(UTC),
                                    catalog=hub.catalog(), observed=observed, target="local",
                                    source=manifests.checkout_source(self.folder))
        return Plan(loaded, compiled, state, _records.git_commit(self.folder))

    async def reload(self) -> None:
        async with self._lock:
            try:
                plan = await asyncio.to_thread(self.plan)
            except Exception as exc:  # never let a reload kill the gateway
                log.exception("reload failed")
                self.runtime.reload_errors = [f"{self.folder}: reload failed: {exc}"]
                self.runtime.apply({}, keep=list(self.runtime.live))
                if self.metrics is not None:
                    self.metrics.config_reloaded("failure")
                return
            ok = self.apply(plan)
            if self.metrics is not None:
                self.metrics.config_reloaded("success" if ok else "failure")

    def apply(self, plan: Plan) -> bool:
        """Serve what ``plan`` compiled; False when an error held anything back."""
        loaded, compiled = plan.loaded, plan.compiled
        problems: dict[str, list[str]] = defaultdict(list)
        general: list[str] = []
        for p in sorted({*loaded.problems, *compiled.problems}):
            line = self._line(p, loaded)
            if p.severity != "error":
                log.warning("%s", line)
                continue
            log.error("%s", line)
            (problems[p.workspace] if p.workspace else general).append(line)
        # A file that did not parse: hold back what it defined before; a new one, everything.
        for err in loaded.errors:
            log.error("%s", err)
            general.append(err)
            owners = [ws for f, wss in self._files.items() if err.startswith(f"{f}:")
                      for ws in wss]
            if not any(err.startswith(f"{f}:") for f in self._files):
                owners = [*self.runtime.live, *compiled.workspaces]
            for ws in owners:
                problems[ws].append(err)

        publish(self.runtime, compiled.workspaces, problems, general, secrets=plan.secrets,
                commit=plan.commit)

        files: dict[str, set[str]] = defaultdict(set)
        for resource in loaded.resources:
            owner = _workspace_of(resource)
            where = loaded.sources.get(resource.key)
            if owner and where:
                files[_file(where)].add(owner)
        for f, wss in self._files.items():  # files that failed keep their old workspaces
            if any(err.startswith(f"{f}:") for err in loaded.errors):
                files[f] |= wss
        self._files = dict(files)
        self.decryptor.prune(in_use(self.runtime))
        return not problems and not general

    @staticmethod
    def _line(p: Problem, loaded: manifests.Loaded) -> str:
        source = p.source or loaded.sources.get((p.namespace, p.kind, p.name))
        return f"{_file(source)}: {p}" if source else str(p)

    async def watch(self) -> None:
        """Reload on every (debounced) change of a manifest below the folder."""
        # A commit or checkout changes the source revision the call records carry.
        refs = _git_dirs(self.folder)

        def relevant(change: watchfiles.Change, path: str) -> bool:
            for git in refs:
                if path.startswith(str(git) + "/"):
                    inside = path[len(str(git)) + 1:]
                    return inside in ("HEAD", "packed-refs") or inside.startswith("refs/")
            name = Path(path).name
            return not name.startswith(".") and (
                path.endswith((".yaml", ".yml")) or change == watchfiles.Change.deleted
                or Path(path).is_dir())

        async for changes in watchfiles.awatch(self.folder, *refs, watch_filter=relevant,
                                               debounce=self.debounce_ms, step=50,
                                               recursive=True):
            log.info("manifests changed (%d files), reloading", len(changes))
            await self.reload()
