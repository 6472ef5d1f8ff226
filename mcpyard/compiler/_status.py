"""Conditions: building a resource's four conditions from what the compiler found."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mcpyard.api._problem import Problem
from mcpyard.api.v1alpha1 import conditions as c


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
    fields: dict[str, Any] = field(default_factory=dict)
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

    def status(self, now: datetime) -> dict[str, Any]:
        def cond(type_: str, ok: bool | None, reason: str, message: str) -> dict[str, Any]:
            return {
                "type": type_,
                "status": "Unknown" if ok is None else "True" if ok else "False",
                "reason": reason,
                "message": message,
                "lastTransitionTime": now.isoformat().replace("+00:00", "Z"),
                "observedGeneration": self.generation,
            }

        def say(problems: list[Problem]) -> str:
            return "; ".join(f"{p.field}: {p.message}" if p.field else p.message
                             for p in problems)

        accepted = not self.invalid
        resolved = accepted and not self.unresolved
        programmed = resolved and self.programmed
        ready = self.ready if programmed else False
        blocked = "not accepted" if not accepted else "references unresolved"
        conds = [
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


def merge(previous: list[dict[str, Any]] | None, current: list[dict[str, Any]]
          ) -> list[dict[str, Any]]:
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
