"""Conditions: building a resource's four conditions from what the compiler found, and the
conditions adapters add from what they observe (a tool refresh, a config held back), so that
every condition and reason is decided here and adapters only write them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from mcpyard.api._problem import Problem
from mcpyard.api.v1alpha1 import conditions as c
from mcpyard.jsontypes import JSONObject, JSONValue


@dataclass
class Report:
    """What the compiler learned about one resource while compiling."""

    namespace: str
    kind: str
    name: str
    generation: int | None
    workspace: str | None = None
    invalid: list[Problem] = field(default_factory=list)
    """Spec problems: Accepted=False (Invalid or Conflict)."""
    conflict: bool = False
    unresolved: list[Problem] = field(default_factory=list)
    """Reference problems: ResolvedRefs=False."""
    unresolved_reason: str = c.WORKSPACE_NOT_FOUND
    warnings: list[Problem] = field(default_factory=list)
    programmed: bool = False
    not_programmed_reason: str = c.NOT_PROGRAMMED
    not_programmed_message: str = ""
    ready: bool | None = None
    """True serving, False not, None not known yet (no observed state)."""
    ready_reason: str = c.PENDING
    ready_message: str = ""
    fields: JSONObject = field(default_factory=dict)
    """Kind-specific status fields (url, counts, slug, endpoint, ...)."""
    held: str | None = None
    """Why it has errors while its last good version stays in use (the held-resource rule)."""
    held_out: str | None = None
    """Why it has errors and stays out of its workspace (the held-resource rule)."""

    def problem(self, path: str, message: str, *, refs: bool = False,
                warning: bool = False) -> Problem:
        p = Problem(self.namespace, self.kind, self.name, path, message,
                    "warning" if warning else "error", workspace=self.workspace)
        (self.warnings if warning else self.unresolved if refs else self.invalid).append(p)
        return p

    @property
    def ok(self) -> bool:
        return not self.invalid and not self.unresolved

    @property
    def problems(self) -> list[Problem]:
        return [*self.invalid, *self.unresolved, *self.warnings]

    def status(self, now: datetime) -> JSONObject:
        def cond(type_: str, ok: bool | None, reason: str, message: str) -> JSONObject:
            return condition(type_, ok, reason, message, now, self.generation)

        def say(problems: list[Problem]) -> str:
            return "; ".join(f"{p.field}: {p.message}" if p.field else p.message
                             for p in problems)

        accepted = not self.invalid
        resolved = accepted and not self.unresolved
        programmed = resolved and self.programmed
        ready = self.ready if programmed else False
        blocked = "not accepted" if not accepted else "references unresolved"
        conds: list[JSONValue] = [
            cond(c.ACCEPTED, accepted,
                 c.VALID if accepted else c.CONFLICT if self.conflict else c.INVALID,
                 "spec is valid" if accepted else say(self.invalid)),
            cond(c.RESOLVED_REFS, resolved if accepted else False,
                 c.RESOLVED if resolved else
                 self.unresolved_reason if accepted else c.DEPENDENCIES_NOT_READY,
                 "all references resolved" if resolved else
                 say(self.unresolved) if accepted else "spec is not accepted"),
            cond(c.PROGRAMMED, programmed,
                 c.CONFIG_GENERATED if programmed else self.not_programmed_reason,
                 "gateway configuration generated" if programmed else
                 self.not_programmed_message or blocked),
            cond(c.READY, ready,
                 c.SERVING if ready else self.ready_reason if programmed else c.NOT_PROGRAMMED,
                 (self.ready_message or "not observed yet") if programmed
                 else f"not programmed: {blocked}"
                 if not resolved else self.not_programmed_message),
        ]
        if self.held is not None:
            conds[2:] = [
                cond(c.PROGRAMMED, True, c.LAST_GOOD_KEPT, "its last good version stays in use "
                     f"in workspace {self.workspace} until the errors are fixed; the rest of "
                     "the workspace applies"),
                cond(c.READY, False, c.LAST_GOOD_KEPT, "serving its last good version"),
            ]
        elif self.held_out is not None:
            conds[2] = cond(c.PROGRAMMED, False, c.HELD_OUT, f"left out of workspace "
                            f"{self.workspace} until the errors are fixed; the rest of the "
                            "workspace applies")
        return {"observedGeneration": self.generation, **self.fields, "conditions": conds}


def merge(previous: list[JSONObject] | None, current: list[JSONObject]
          ) -> list[JSONObject]:
    """Keep each condition's lastTransitionTime while its status does not change."""
    old = {cnd.get("type"): cnd for cnd in previous or []}
    out = []
    for cnd in current:
        before = old.get(cnd["type"])
        if before is not None and before.get("status") == cnd["status"]:
            cnd = {**cnd, "lastTransitionTime": before.get("lastTransitionTime",
                                                           cnd["lastTransitionTime"])}
        out.append(cnd)
    return out


def condition(type_: str, ok: bool | None, reason: str, message: str, now: datetime,
              generation: int | None) -> JSONObject:
    """One condition as the API stores it (status True, False or Unknown when ``ok`` is None)."""
    return {
        "type": type_,
        "status": "Unknown" if ok is None else "True" if ok else "False",
        "reason": reason,
        "message": message,
        "lastTransitionTime": now.isoformat().replace("+00:00", "Z"),
        "observedGeneration": generation,
    }


def invalid_status(namespace: str, kind: str, name: str, generation: int | None,
                   problems: Sequence[Problem], now: datetime,
                   workspace: str | None = None) -> JSONObject:
    """The status of a resource that cannot even be parsed: not Accepted, for ``problems``."""
    report = Report(namespace, kind, name, generation, workspace=workspace)
    report.invalid.extend(problems)
    return report.status(now)


def not_programmed(status: Mapping[str, JSONValue], reason: str, message: str) -> JSONObject:
    """``status`` with Programmed False for ``reason`` (applying what the compiler made was
    refused or held back, e.g. :data:`~mcpyard.api.v1alpha1.conditions.CONFIG_TOO_LARGE`), and
    Ready False because of it."""
    out: list[JSONValue] = []
    found = status.get("conditions") or []
    for cond in found if isinstance(found, list) else []:
        if not isinstance(cond, dict):
            out.append(cond)
        elif cond["type"] == c.PROGRAMMED:
            cond = {**cond, "status": "False", "reason": reason, "message": message}
        elif cond["type"] == c.READY:
            cond = {**cond, "status": "False", "reason": c.NOT_PROGRAMMED,
                    "message": f"not programmed: {message}"}
        out.append(cond)
    return {**status, "conditions": out}


def tools_changed_condition(refreshed: datetime, count: int, changed: str | None, first: bool,
                            generation: int | None) -> JSONObject:
    """MCPServer ``ToolsChanged``: True when the tool refresh at ``refreshed`` found another list
    than the one before it (``changed`` says how), False when it found the same ``count`` tools
    (reason ``FirstDiscovery`` the first time)."""
    stamp = refreshed.isoformat().replace("+00:00", "Z")
    if changed is not None:
        ok, reason, message = True, c.TOOLS_CHANGED, f"{changed} (at {stamp})"
    elif first:
        ok, reason, message = False, c.FIRST_DISCOVERY, f"{count} tools discovered at {stamp}"
    else:
        ok, reason, message = False, c.TOOLS_UNCHANGED, f"{count} tools, unchanged at {stamp}"
    return condition(c.TOOLS_CHANGED, ok, reason, message, refreshed, generation)


def tools_pinned_condition(pinned: int, held: Mapping[str, str], now: datetime,
                           generation: int | None) -> JSONObject:
    """MCPServer ``ToolsPinned`` of a server that pins ``pinned`` tools: False (``PinMismatch``,
    the withheld tools named with why) when ``held`` names any, else True (``PinsMatch``)."""
    if held:
        named = ", ".join(f"{name} ({why})" for name, why in sorted(held.items()))
        return condition(c.TOOLS_PINNED, False, c.PIN_MISMATCH,
                         f"withheld from members until spec.tools.pin is updated: {named}"
                         " (`mcpyard pin` writes the current hashes)", now, generation)
    return condition(c.TOOLS_PINNED, True, c.PINS_MATCH,
                     f"every exposed tool matches its pin ({pinned} pinned)", now, generation)
