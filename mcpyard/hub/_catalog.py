"""Loading the catalog's entry files, and looking entries up by name or by words."""

from __future__ import annotations

import functools
import importlib.resources
from importlib.resources.abc import Traversable
from types import MappingProxyType
from typing import Any

import yaml
from pydantic import ValidationError

from mcpyard import errors
from mcpyard.api._problem import validation_messages
from mcpyard.api.hub import HubEntry
from mcpyard.discovery import search as search_

_SUFFIX = ".yaml"


def catalog() -> dict[str, HubEntry]:
    """Every entry of the catalog by name, sorted by name.

    The files are read once per process; a broken entry raises
    :class:`~mcpyard.errors.ManifestError` naming the file and the field at fault.
    """
    return dict(_entries())


def get(name: str) -> HubEntry | None:
    """The entry called ``name``, or None."""
    return _entries().get(name)


def search(query: str) -> list[HubEntry]:
    """Entries ranked by what they do for ``query``, best first: the BM25 ranking of the
    workspace tool search (:mod:`mcpyard.discovery.search`) over each entry's name and title,
    tags, settings and description. An exact name comes first; entries sharing no word with
    the query are left out; ties break by name. An empty query returns every entry by name.
    """
    words = query.strip().lower()
    entries = _entries()
    if not words:
        return list(entries.values())
    hits = _index().search(words, limit=len(entries))
    ranked = [entries[h.key] for h in hits]
    exact = entries.get(words)
    if exact is not None:
        ranked = [exact, *(e for e in ranked if e is not exact)]
    return ranked


@functools.cache
def _index() -> search_.Index:
    return search_.Index(_document(e) for e in _entries().values())


def _document(entry: HubEntry) -> search_.Document:
    settings = " ".join([*entry.env, *(s.name for s in entry.secrets)])
    return search_.Document(entry.name, (
        (f"{entry.name} {entry.title}", search_.NAME_WEIGHT),
        (" ".join(entry.tags), search_.ARGUMENT_WEIGHT),
        (settings, search_.CONTEXT_WEIGHT),
        (entry.description, search_.DESCRIPTION_WEIGHT),
    ))


@functools.cache
def _entries() -> MappingProxyType[str, HubEntry]:
    root = importlib.resources.files("mcpyard.hub") / "catalog"
    # by entry name (the file name less its suffix): `aws` before `aws-documentation`
    files = sorted(
        (f for f in root.iterdir() if f.is_file() and f.name.endswith(_SUFFIX)),
        key=lambda f: f.name.removesuffix(_SUFFIX),
    )
    entries = {}
    for file in files:
        entry = _load(file)
        entries[entry.name] = entry
    return MappingProxyType(entries)


def _load(file: Traversable) -> HubEntry:
    where = f"mcpyard/hub/catalog/{file.name}"
    try:
        data: Any = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise errors.ManifestError(f"{where}{line}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise errors.ManifestError(f"{where}: a hub entry must be a mapping")
    try:
        entry = HubEntry.model_validate(data)
    except ValidationError as exc:
        raise errors.ManifestError("; ".join(
            f"{where}: {path}: {message}" if path else f"{where}: {message}"
            for path, message in validation_messages(exc)
        )) from None
    if file.name != f"{entry.name}{_SUFFIX}":
        raise errors.ManifestError(
            f"{where}: name: {entry.name!r} does not match the file name "
            f"(expected {entry.name}{_SUFFIX})"
        )
    return entry
