"""Ranking tools (or any documents) by what they do: BM25 over weighted fields.

A document is a key and a few texts, each with a weight: a tool's name counts more than its
description, its argument names more than the server it belongs to. Weights repeat a field's
terms, the usual BM25F shortcut. Terms are words split at case and punctuation changes
(``create_issue`` and ``createIssue`` both give ``create`` and ``issue``), lower-cased and
lightly stemmed (``issues`` -> ``issue``), so a task written in plain words finds the tool.

A query is expanded with a few generic synonyms of the words tools are named with (``show`` ->
``list``/``get``, ``find`` -> ``search``, ``ticket`` -> ``issue``, ``email`` -> ``message``...),
at half weight, because a task is written in a person's words and a tool in its API's.

Pure and deterministic: ties break by key. The gateway's ``find_tools`` and the hub's search
both rank with :class:`Index`.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

K1 = 1.2
B = 0.75

NAME_WEIGHT = 3
ARGUMENT_WEIGHT = 2
DESCRIPTION_WEIGHT = 1
CONTEXT_WEIGHT = 1

_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
STOP_WORDS = frozenset(("a", "an", "and", "any", "are", "as", "at", "be", "by", "can", "do",
    "does", "for", "from", "i", "in", "into", "is", "it", "its", "me", "my", "of", "on", "or",
    "our", "should", "that", "the", "then", "this", "to", "use", "using", "we", "what", "when",
    "which", "will", "with", "you", "your"))


EXPANSION_WEIGHT = 0.5
SYNONYMS: dict[str, tuple[str, ...]] = {
    # verbs of tasks -> verbs of tool names (CRUD and search)
    "show": ("list", "get"), "view": ("get", "list"), "display": ("get", "list"),
    "see": ("get", "list"), "fetch": ("get",), "retrieve": ("get",), "lookup": ("search",),
    "find": ("search",), "look": ("search",), "new": ("create",), "make": ("create",),
    "open": ("create",), "start": ("create",), "file": ("create",), "write": ("create",),
    "remove": ("delete",), "erase": ("delete",), "drop": ("delete",),
    "change": ("update",), "edit": ("update",), "modify": ("update",), "set": ("update",),
    "turn": ("update",), "toggle": ("update",), "disable": ("update",), "enable": ("update",),
    "leave": ("add",), "post": ("send", "create"), "now": ("current",), "latest": ("current",),
    # nouns of tasks -> nouns of tool names
    "ticket": ("issue",), "bug": ("issue",), "email": ("message", "mail"),
    "mail": ("message",), "text": ("message",), "sms": ("message",), "chat": ("message",),
    "pr": ("pull", "request"), "folder": ("directory",), "directory": ("folder",),
    "coordinate": ("geocode",), "latitude": ("geocode",), "longitude": ("geocode",),
}


@functools.lru_cache(maxsize=65536)
def _term(word: str) -> str | None:
    """A word's term: lower-cased and stemmed; None for a stop word."""
    lower = word.lower()
    return None if lower in STOP_WORDS else _stem(lower)


def _stem(word: str) -> str:
    """A light suffix stripper: enough that plurals and -ing / -ed forms meet their stem."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 5 and word.endswith("ing"):
        return word[:-3]
    if len(word) > 4 and word.endswith("ed") and not word.endswith("eed"):
        return word[:-2]
    if len(word) > 3 and word.endswith("es") and word[-3] in "sxz":
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def terms(text: str) -> list[str]:
    """The searchable terms of a text, in order (stop words dropped)."""
    return [t for t in map(_term, _WORD.findall(text)) if t is not None]


def expand(query: str) -> dict[str, float]:
    """The query's terms (weight 1) and their synonyms not already in it (half weight)."""
    found = dict.fromkeys(terms(query), 1.0)
    for term in list(found):
        for synonym in SYNONYMS.get(term, ()):
            found.setdefault(synonym, EXPANSION_WEIGHT)
    return found


@dataclass(frozen=True, slots=True)
class Document:
    key: str
    fields: tuple[tuple[str, int], ...]
    """(text, weight) pairs."""


@dataclass(frozen=True, slots=True)
class Hit:
    key: str
    score: float


class Index:
    """A BM25 index over documents; build once, query often."""

    __slots__ = ("_avgdl", "_idf", "_lengths", "_postings", "keys")

    def __init__(self, documents: Iterable[Document]) -> None:
        self.keys: list[str] = []
        self._lengths: list[int] = []
        self._postings: dict[str, list[tuple[int, int]]] = {}
        for i, doc in enumerate(documents):
            counts: Counter[str] = Counter()
            for text, weight in doc.fields:
                for term, n in Counter(terms(text)).items():
                    counts[term] += n * weight
            self.keys.append(doc.key)
            self._lengths.append(sum(counts.values()))
            for term, tf in counts.items():
                self._postings.setdefault(term, []).append((i, tf))
        n = len(self.keys)
        self._avgdl = (sum(self._lengths) / n) if n else 0.0
        self._idf = {t: math.log(1 + (n - len(p) + 0.5) / (len(p) + 0.5))
                     for t, p in self._postings.items()}

    def __len__(self) -> int:
        return len(self.keys)

    def search(self, query: str, *, limit: int, admit: Callable[[str], bool] | None = None,
               synonyms: bool = True) -> list[Hit]:
        """The best ``limit`` documents for ``query`` among those ``admit`` lets in, best
        first; documents sharing no term with the query are never returned."""
        scores: dict[int, float] = {}
        weighted = expand(query) if synonyms else dict.fromkeys(terms(query), 1.0)
        for term, weight in weighted.items():
            postings = self._postings.get(term)
            if postings is None:
                continue
            idf = self._idf[term] * weight
            for i, tf in postings:
                norm = K1 * (1 - B + B * self._lengths[i] / self._avgdl)
                scores[i] = scores.get(i, 0.0) + idf * tf * (K1 + 1) / (tf + norm)
        ranked = sorted(scores.items(), key=lambda s: (-s[1], self.keys[s[0]]))
        hits: list[Hit] = []
        for i, score in ranked:
            if admit is None or admit(self.keys[i]):
                hits.append(Hit(self.keys[i], round(score, 4)))
                if len(hits) == limit:
                    break
        return hits


def argument_names(schema: object) -> list[str]:
    """The top-level property names of a JSON Schema."""
    props = schema.get("properties") if isinstance(schema, dict) else None
    return [str(name) for name in props] if isinstance(props, dict) else []


def tool_document(key: str, tool: Mapping[str, object], context: str = "") -> Document:
    """A tool's document: its name (and title), its arguments, its description (and its
    arguments' descriptions), and ``context`` (e.g. the server's slug and summary)."""
    schema = tool.get("inputSchema")
    props = schema.get("properties") if isinstance(schema, dict) else None
    arg_text = " ".join(argument_names(schema))
    described = " ".join(str(p.get("description", "")) for p in (props or {}).values()
                         if isinstance(p, dict))
    title = tool.get("title") or ""
    annotations = tool.get("annotations")
    if not title and isinstance(annotations, dict):
        title = annotations.get("title") or ""
    name = str(tool.get("name", key))
    return Document(key, (
        (f"{name} {title}", NAME_WEIGHT),
        (arg_text, ARGUMENT_WEIGHT),
        (f"{tool.get('description') or ''} {described}", DESCRIPTION_WEIGHT),
        (context, CONTEXT_WEIGHT),
    ))
