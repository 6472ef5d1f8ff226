"""Loading the manifests folder, and reloading it when a file changes.

A load reads every manifest (:func:`mcpyard.manifests.load`), decrypts the EncryptedSecrets
into the vault, compiles (:func:`mcpyard.compiler.compile`, target ``local``) and applies the
result. Only what is broken is held back, by the compiler's held-resource rule
(:mod:`mcpyard.compiler._held`): a resource with errors keeps its last good version (or stays
out if new), and the rest of its workspace applies, so a revocation never waits for an
unrelated fix. A document that cannot be read now (invalid, or in a file that does not parse,
such as one torn mid-write) counts as present and unreadable: its last good version stays.
Problems are logged as ``file: namespace/Kind/name: field: message`` and shown in /readyz,
with each held resource.

:class:`FolderSource` is the :class:`~mcpyard.gateway.sources.Source` of ``mcpyard serve``:
it opens the vault under the master key in the state folder, loads once before the gateway
serves, then watches. What it compiled is served by
:meth:`mcpyard.gateway._runtime.Runtime.publish`, the rule every source shares.
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
from mcpyard.gateway._runtime import Runtime, SecretState
from mcpyard.gateway._secrets import Decryptor
from mcpyard.gateway.services import _records
from mcpyard.gateway.services._metrics import Metrics
from mcpyard.gateway.sources._local import LocalVault

log = logging.getLogger("mcpyard.gateway")


@dataclass(frozen=True)
class Plan:
    loaded: manifests.Loaded
    compiled: compiler.Compilation
    secrets: SecretState
    commit: str | None = None
    """The git commit of the folder's checkout, read once per load (for call records)."""


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
        self._files: dict[str, set[compiler.Key]] = {}
        """Which resources each file defined at the last load."""
        self._lock = asyncio.Lock()

    def plan(self, last_good: Mapping[str, WorkspaceConfig] | None = None) -> Plan:
        """Read, decrypt and compile against the configurations served now, ``last_good``
        (blocking: run it in a thread)."""
        loaded = manifests.load([self.folder])
        state = self.decryptor.decrypt(loaded)
        observed = compiler.Observed(
            decrypted=frozenset(k for k in {(ns, n) for (ns, kind, n) in loaded.documents
                                            if kind == "EncryptedSecret"}
                                if k not in state.failures),
            secret_failures=dict(state.failures))
        compiled = compiler.compile(loaded.resources, now=datetime.now(UTC),
                                    catalog=hub.catalog(), observed=observed, target="local",
                                    last_good=last_good, unreadable=self._unreadable(loaded),
                                    source=manifests.checkout_source(self.folder))
        return Plan(loaded, compiled, state, _records.git_commit(self.folder))

    def _unreadable(self, loaded: manifests.Loaded) -> dict[compiler.Key, str]:
        """Resources that exist but cannot be read now: invalid documents, and whatever a file
        that does not parse (one torn mid-write) defined at the last load."""
        valid = {r.key for r in loaded.resources}
        out: dict[compiler.Key, str] = {}
        for p in loaded.problems:
            key = (p.namespace, p.kind, p.name)
            if key not in valid:
                out.setdefault(key, self._line(p, loaded))
        for err, f in zip(loaded.errors, loaded.error_files, strict=True):
            for key in self._files.get(f, set()) - valid:
                out.setdefault(key, err)
        return out

    async def reload(self) -> None:
        async with self._lock:
            last_good = {name: live.config for name, live in self.runtime.live.items()}
            try:
                plan = await asyncio.to_thread(self.plan, last_good)
            except Exception as exc:  # never let a reload kill the gateway
                log.exception("reload failed")
                self.runtime.hold_all([f"{self.folder}: reload failed: {exc}"])
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
        # A file that did not parse: what it defined before is unreadable, so held (compiled).
        unparsed = [f for f in self._files if f in set(loaded.error_files)]
        for err, f in zip(loaded.errors, loaded.error_files, strict=True):
            log.error("%s", err)
            owners = self._owners(self._files[f]) if f in self._files else set()
            for ws in sorted(owners):
                problems[ws].append(err)
            if not owners:
                general.append(err)
        for h in compiled.held:
            log.warning("workspace %s: %s", h.workspace, h)

        self.runtime.publish(compiled.workspaces, problems, general, secrets=plan.secrets,
                             commit=plan.commit, held=compiled.held, hold_workspaces=False)

        files: dict[str, set[compiler.Key]] = defaultdict(set)
        for key, where in loaded.sources.items():
            files[_file(where)].add(key)
        for p in loaded.problems:  # invalid documents: still defined by their file
            if p.source:
                files[_file(p.source)].add((p.namespace, p.kind, p.name))
        for f in unparsed:  # files that failed keep what they defined before
            files[f] |= self._files[f]
        self._files = dict(files)
        self.decryptor.prune(self.runtime.secrets_in_use())
        return not problems and not general

    def _owners(self, keys: Collection[compiler.Key]) -> set[str]:
        """The workspaces the resources at ``keys`` served in."""
        out = set()
        for name, live in self.runtime.live.items():
            ns = live.config.namespace
            mine = {(ns, "Workspace", name)} | {(ns, "Member", m.name) for m in
                                                  live.config.members} | {
                (s.namespace, "MCPServer", s.name) for s in live.config.servers}
            if mine & set(keys):
                out.add(name)
        return out

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


class FolderSource(LocalVault):
    """A folder of manifests (``mcpyard serve``): loaded before the gateway serves, then
    watched (see the module docstring)."""

    def __init__(self, folder: Path, *, state_dir: Path, age_key_file: Path | None,
                 age_key: str | None, debounce_ms: int, watch: bool) -> None:
        super().__init__(state_dir)
        self.folder = folder
        self._age_key_file = age_key_file
        self._age_key = age_key
        self._debounce_ms = debounce_ms
        self._watch = watch
        self.reloader: Reloader | None = None

    def __repr__(self) -> str:
        return f"<FolderSource {self.folder}>"

    async def open(self, runtime: Runtime, metrics: Metrics) -> None:
        decryptor = Decryptor(await self.open_vault(), age_key_file=self._age_key_file,
                              age_key=self._age_key)
        self.reloader = Reloader(runtime, self.folder, decryptor,
                                 debounce_ms=self._debounce_ms, metrics=metrics)
        await self.reloader.reload()

    async def run(self, runtime: Runtime, metrics: Metrics) -> None:
        if self._watch and self.reloader is not None:
            await self.reloader.watch()
