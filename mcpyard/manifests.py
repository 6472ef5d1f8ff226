"""Reading manifests: folders of YAML files and git revisions -> validated resources.

The one place that turns files into :mod:`mcpyard.api` models for the adapters (``cli``,
``serve``). Non-mcpyard kinds are skipped; malformed YAML and invalid mcpyard resources are
reported, never fatal: the valid resources still come back.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from mcpyard import errors
from mcpyard.api import v1alpha1
from mcpyard.api._problem import Problem
from mcpyard.compiler.config import Source

Key = tuple[str, str, str]
SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class Loaded:
    resources: tuple[v1alpha1.Resource, ...] = ()
    """Valid mcpyard resources, in file order."""
    documents: dict[Key, dict[str, object]] = field(default_factory=dict)
    """Each resource's document as parsed from YAML (sops verifies the MAC over it): ``object``
    values, not JSON (YAML has timestamps)."""
    sources: dict[Key, str] = field(default_factory=dict)
    """``file:line`` each resource came from."""
    problems: tuple[Problem, ...] = ()
    """Invalid mcpyard resources (left out of ``resources``) and duplicates."""
    errors: tuple[str, ...] = ()
    """Files that could not be read: ``file:line: message``."""
    files: tuple[str, ...] = ()
    """Every manifest file read."""
    error_files: tuple[str, ...] = ()
    """The file each of ``errors`` is about, in the same order (what a reload holds back)."""


class _Loader(yaml.SafeLoader):
    """A SafeLoader that records the line each document starts on."""


def _files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    return sorted(
        p for p in root.rglob("*")
        if p.suffix in SUFFIXES and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def _documents(text: str, name: str) -> Iterator[tuple[int, object]]:
    loader = _Loader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            yield node.start_mark.line + 1, loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise errors.ManifestError(f"{name}:{line}: invalid YAML: {problem}") from None
    finally:
        loader.dispose()


def _workspace_of(doc: Mapping[str, object]) -> str | None:
    if doc.get("kind") == "Workspace":
        meta = doc.get("metadata")
        name = meta.get("name") if isinstance(meta, dict) else None
        return str(name) if name else None
    spec = doc.get("spec")
    if isinstance(spec, dict) and isinstance(spec.get("workspace"), str):
        return str(spec["workspace"])
    return None


def parse_texts(texts: Sequence[tuple[str, str]]) -> Loaded:
    """Parse ``(name, yaml text)`` pairs; the core of :func:`load` and :func:`load_revision`."""
    resources: list[v1alpha1.Resource] = []
    documents: dict[Key, dict[str, object]] = {}
    sources: dict[Key, str] = {}
    problems: list[Problem] = []
    errs: list[str] = []
    failed: list[str] = []
    for name, text in texts:
        try:
            docs = list(_documents(text, name))
        except errors.ManifestError as exc:
            errs.append(str(exc))
            failed.append(name)
            continue
        for line, doc in docs:
            where = f"{name}:{line}"
            if doc is None:
                continue
            if not isinstance(doc, dict):
                errs.append(f"{where}: a manifest must be a mapping, got {type(doc).__name__}")
                failed.append(name)
                continue
            api_version = str(doc.get("apiVersion", ""))
            if not api_version.startswith(f"{v1alpha1.GROUP}/"):
                continue  # another tool's manifest (a Kustomization, a ConfigMap): not ours
            try:
                resource = v1alpha1.parse(doc)
            except errors.InvalidResource as exc:
                ws = _workspace_of(doc)
                problems.extend(_at(p, where, ws) for p in exc.problems)
                continue
            if resource.key in sources:
                problems.append(Problem(
                    *resource.key, "metadata.name",
                    f"defined twice: {sources[resource.key]} and {where}",
                    source=where, workspace=_workspace_of(doc),
                ))
                continue
            resources.append(resource)
            documents[resource.key] = doc
            sources[resource.key] = where
    return Loaded(tuple(resources), documents, sources, tuple(problems), tuple(errs),
                  tuple(name for name, _ in texts), tuple(failed))


def _at(problem: Problem, where: str, workspace: str | None) -> Problem:
    return Problem(problem.namespace, problem.kind, problem.name, problem.field, problem.message,
                   problem.severity, where, workspace)


def load(paths: Sequence[Path]) -> Loaded:
    """Read every ``*.yaml`` / ``*.yml`` below each path (recursively, multi-document).

    Hidden files and folders (``.sops.yaml``, ``.git``) are skipped.
    """
    texts: list[tuple[str, str]] = []
    errs: list[str] = []
    failed: list[str] = []
    for root in paths:
        if not root.exists():
            errs.append(f"{root}: no such file or directory")
            failed.append(str(root))
            continue
        for path in _files(root):
            try:
                texts.append((str(path), path.read_text(encoding="utf-8")))
            except (OSError, UnicodeDecodeError) as exc:
                errs.append(f"{path}:1: cannot read: {exc.__class__.__name__}")
                failed.append(str(path))
    loaded = parse_texts(texts)
    if errs:
        return Loaded(loaded.resources, loaded.documents, loaded.sources, loaded.problems,
                      tuple(errs) + loaded.errors, loaded.files,
                      tuple(failed) + loaded.error_files)
    return loaded


def load_revision(revision: str, paths: Sequence[str] = (".",), *, repo: Path = Path()) -> Loaded:
    """Read the manifests below ``paths`` at a git revision of the repository at ``repo``."""
    try:
        listing = git(repo, "ls-tree", "-r", "-z", revision, "--", *paths)
    except errors.ManifestError as exc:
        raise errors.ManifestError(f"{revision}: {exc}") from None
    found: list[tuple[str, str]] = []  # (path, blob id)
    for line in listing.split("\0"):
        meta, _, name = line.partition("\t")  # "<mode> <type> <object>\t<path>"
        parts = meta.split()
        if len(parts) == 3 and parts[1] == "blob" and name.endswith(SUFFIXES) \
                and not any(part.startswith(".") for part in Path(name).parts):
            found.append((name, parts[2]))
    found.sort()
    blobs = _blobs(repo, [oid for _, oid in found])
    return parse_texts([(f"{revision}:{name}", text)
                        for (name, _), text in zip(found, blobs, strict=True)])


def _blobs(repo: Path, oids: Sequence[str]) -> list[str]:
    """The contents of git blobs, read by one ``git cat-file --batch``."""
    if not oids:
        return []
    done = subprocess.run(["git", "-C", str(repo), "cat-file", "--batch"], check=False,
                          input="".join(f"{o}\n" for o in oids).encode(), capture_output=True)
    if done.returncode != 0:
        raise errors.ManifestError(done.stderr.decode(errors="replace").strip() or
                                   "git cat-file failed")
    out, at = [], 0
    data = done.stdout
    for _ in oids:
        end = data.index(b"\n", at)
        size = int(data[at:end].split()[2])
        out.append(data[end + 1:end + 1 + size].decode("utf-8", errors="replace"))
        at = end + 1 + size + 1
    return out


def checkout_source(folder: Path) -> Source | None:
    """Where the manifests below ``folder`` come from: the commit HEAD of its git checkout,
    ``<sha>-dirty`` when a file below ``folder`` differs from it (changed, staged, deleted or
    untracked); None outside a checkout, before the first commit, or without git."""
    where, pathspec = (folder, ".") if folder.is_dir() else (folder.parent, folder.name)
    try:
        head = git(where, "rev-parse", "--verify", "--quiet", "HEAD^{commit}").strip()
        dirty = git(where, "status", "--porcelain", "--untracked-files=all", "--", pathspec)
    except errors.ManifestError:
        return None
    return Source(revision=f"{head}-dirty" if dirty.strip() else head, origin=f"git {folder}")


def git(repo: Path, *args: str) -> str:
    """``git -C repo ARGS``'s output; ManifestError with git's last line when it fails."""
    try:
        done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                              check=False)
    except FileNotFoundError:
        raise errors.ManifestError("git is not installed") from None
    if done.returncode != 0:
        raise errors.ManifestError(done.stderr.strip().splitlines()[-1] if done.stderr else
                                   f"git {args[0]} failed")
    return done.stdout
