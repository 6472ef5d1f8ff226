"""Problem: one thing wrong with one resource, named by resource and field."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import ValidationError


def resource_ref(namespace: str, kind: str, name: str) -> str:
    """``namespace/Kind/name``: how problems, statuses and logs name a resource."""
    return f"{namespace}/{kind}/{name}"


@dataclass(frozen=True, order=True)
class Problem:
    """A problem, reported as ``<namespace>/<Kind>/<name>: <field path>: <message>``.

    ``source`` (a file and line, when the resource came from a file) only helps a person find
    it; ``workspace`` lets an adapter hold back just the workspace at fault.
    """

    namespace: str
    kind: str
    name: str
    field: str
    message: str
    severity: Literal["error", "warning"] = "error"
    source: str | None = None
    workspace: str | None = None
    """The name of the workspace the resource belongs to, when known."""

    def __str__(self) -> str:
        where = resource_ref(self.namespace, self.kind, self.name)
        if not self.field:
            return f"{where}: {self.message}"
        return f"{where}: {self.field}: {self.message}"


def validation_messages(exc: ValidationError) -> list[tuple[str, str]]:
    """``(field path, message)`` for each error pydantic found, in words a user reads."""
    out = []
    for err in exc.errors(include_url=False):
        message = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown field"
        out.append((field_path(err["loc"]), message))
    return out


def field_path(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as a field path: ``spec.secrets[0].as``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif str(part).startswith(("function-after[", "function-before[")):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out
