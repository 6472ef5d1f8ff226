"""Loading the catalog's entry files, and looking entries up by name or by words."""

from __future__ import annotations

import functools
import importlib.resources
from collections.abc import Iterable
from importlib.resources.abc import Traversable
from types import MappingProxyType
from typing import Any

import yaml
from pydantic import ValidationError

from mcpyard import errors
from mcpyard.api._problem import validation_messages
from mcpyard.api.hub import HubEntry

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
    """Entries matching every word of ``query``, best first.

    Case-insensitive. A word counts most in the name (an exact name first), then the title,
    the tags and the description; ties are broken by name, so the order is deterministic.
    An empty query returns every entry by name.

    A stopgap ranker: when the workspace tool search (BM25, issue 14 point 3) lands as a pure
    module, this function should rank with it over each entry's text (title, description,
    tags, settings) and its capability manifest, and ``_score`` goes.
    """
    words = query.lower().split()
    scored = []
    for entry in _entries().values():
        score = _score(entry, words)
        if score > 0 or not words:
            if query.strip().lower() == entry.name:
                score += 1000
            scored.append((-score, entry.name, entry))
    return [entry for _, _, entry in sorted(scored, key=lambda t: (t[0], t[1]))]


def _score(entry: HubEntry, words: Iterable[str]) -> int:
    name = entry.name
    title = entry.title.lower()
    tags = [t.lower() for t in entry.tags]
    description = entry.description.lower()
    total = 0
    for word in words:
        score = 0
        if word == name:
            score += 100
        elif word in name:
            score += 30
        if word in title.split():
            score += 20
        elif word in title:
            score += 10
        if word in tags:
            score += 15
        elif any(word in tag for tag in tags):
            score += 5
        if word in description:
            score += 2
        if score == 0:
            return 0  # every word must match somewhere
        total += score
    return total


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
