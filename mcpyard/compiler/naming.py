"""Namespaced names and resource URIs: the one place that knows how an upstream's tool,
prompt or resource becomes a workspace's.

Tools and prompts: ``slug__name``, stable, shortened with a hash suffix past 64 characters. A
slug never contains ``__`` (slugs are ``[a-z0-9-]``), so the first ``__`` always splits a name.

Resources: ``mcpyard://<slug>/<original URI, verbatim>``. The slug is the authority (a valid
host name: lowercase letters, digits, ``-``) and the upstream's URI follows the first ``/``
unchanged, so the mapping is reversible by stripping the prefix, the result is a URI whenever
the original is one (``test://a/b`` -> ``mcpyard://fixture/test://a/b``: a path of ``test:``,
an empty segment and ``a/b``), and a resource template maps by the same prefix: a client that
expands ``mcpyard://fixture/test://item/{id}`` gets exactly the mapped form of the URI the
upstream's own template expands to. Nothing is percent-encoded, so nothing has to be decoded.
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


URI_SCHEME = "mcpyard"
_URI_PREFIX = f"{URI_SCHEME}://"


def resource_uri(slug: str, uri: str) -> str:
    """The workspace URI of the resource (or resource template) ``uri`` of server ``slug``."""
    return f"{_URI_PREFIX}{slug}/{uri}"


def split_uri(uri: str) -> tuple[str, str] | None:
    """``(slug, original URI)`` of a workspace resource URI; None when it is not one."""
    if not uri.startswith(_URI_PREFIX):
        return None
    slug, sep, original = uri[len(_URI_PREFIX):].partition("/")
    if not sep or not slug:
        return None
    return slug, original
