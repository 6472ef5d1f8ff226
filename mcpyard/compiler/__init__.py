"""The compiler: resources -> gateway configuration, child objects and statuses.

Pure and deterministic: the same resources, observed state, catalog and ``now`` give the same
output. No I/O, no logging, no clock, no adapter imports (import-linter keeps it so). Every
problem names the resource and field at fault; one bad resource never blocks the valid ones
of other workspaces.
"""

from __future__ import annotations

from mcpyard.compiler import access, config, naming
from mcpyard.compiler._compile import Child, Compilation, Observed
from mcpyard.compiler._compile import compile_resources as compile
from mcpyard.compiler._status import merge as merge_conditions

__all__ = [
    "Child",
    "Compilation",
    "Observed",
    "access",
    "compile",
    "config",
    "merge_conditions",
    "naming",
]
