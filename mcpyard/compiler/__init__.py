"""The compiler: resources -> gateway configuration, child objects and statuses.

Pure and deterministic: the same resources, observed state, catalog and ``now`` give the same
output. No I/O, no logging, no clock, no adapter imports (import-linter keeps it so). Every
problem names the resource and field at fault; one bad resource never blocks the valid ones
of its own workspace or of others: it keeps its last good version or stays out (the
held-resource rule, :mod:`mcpyard.compiler._held`). Every condition is decided here, the ones
adapters add from what they observe too (``tools_changed_condition``, ``not_programmed``, ...):
adapters only write them.
"""

from __future__ import annotations

from mcpyard.compiler import access, children, config, naming
from mcpyard.compiler._compile import Child, Compilation, Key, Observed, Target
from mcpyard.compiler._compile import compile_resources as compile
from mcpyard.compiler._held import Held
from mcpyard.compiler._status import (
    invalid_status,
    not_programmed,
    tools_changed_condition,
    tools_pinned_condition,
)
from mcpyard.compiler._status import merge as merge_conditions

__all__ = [
    "Child",
    "Compilation",
    "Held",
    "Key",
    "Observed",
    "Target",
    "access",
    "children",
    "compile",
    "config",
    "invalid_status",
    "merge_conditions",
    "naming",
    "not_programmed",
    "tools_changed_condition",
    "tools_pinned_condition",
]
