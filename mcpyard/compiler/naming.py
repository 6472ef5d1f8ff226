"""Namespaced names: ``slug__tool``, stable, shortened with a hash suffix past 64 characters.

The one place that knows how an upstream's tool (or prompt) name becomes a workspace name. A
slug never contains ``__`` (slugs are ``[a-z0-9-]``), so the first ``__`` always splits a name.
"""

from __future__ import annotations

import hashlib

SEPARATOR = "__"
MAX_NAME = 64
_HASH_LEN = 8


def namespaced(slug: str, name: str) -> str:
    """The workspace-wide name of ``name`` on the server ``slug``.

    Names longer than clients accept keep their head and get ``-`` plus 8 hex digits of the full
    name's SHA-256, the same every time and independent of any other server or tool.
    """
    full = f"{slug}{SEPARATOR}{name}"
    if len(full) <= MAX_NAME:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:_HASH_LEN]
    return f"{full[: MAX_NAME - _HASH_LEN - 1]}-{digest}"


def split(name: str) -> tuple[str, str] | None:
    """``(slug, rest)`` of a namespaced name; None when it has no slug prefix.

    For a shortened name ``rest`` is not the upstream name: look names up in the table the
    gateway built with :func:`namespaced`, and use this only to find the server.
    """
    slug, sep, rest = name.partition(SEPARATOR)
    if not sep or not slug or not rest:
        return None
    return slug, rest
