"""Condition types and reasons: constants, never string literals in handlers."""

from __future__ import annotations

ACCEPTED = "Accepted"
RESOLVED_REFS = "ResolvedRefs"
PROGRAMMED = "Programmed"
READY = "Ready"
TYPES = (ACCEPTED, RESOLVED_REFS, PROGRAMMED, READY)

# Reasons, CamelCase as the Kubernetes API conventions ask.
VALID = "Valid"
INVALID = "Invalid"
RESOLVED = "Resolved"
WORKSPACE_NOT_FOUND = "WorkspaceNotFound"
SECRET_NOT_FOUND = "SecretNotFound"
HUB_ENTRY_NOT_FOUND = "HubEntryNotFound"
CONFLICT = "Conflict"
DEPENDENCIES_NOT_READY = "DependenciesNotReady"
CONFIG_GENERATED = "ConfigGenerated"
NOT_PROGRAMMED = "NotProgrammed"
PENDING = "Pending"
SERVING = "Serving"
DEGRADED = "Degraded"
DISABLED = "Disabled"
EXPIRED = "Expired"
DECRYPTION_FAILED = "DecryptionFailed"
UNSUPPORTED = "Unsupported"
LAST_GOOD_KEPT = "LastGoodKept"
"""Programmed: the resource has errors and its last good version stays in use; the rest of
its workspace applies without waiting for a fix."""
HELD_OUT = "HeldOut"
"""Programmed: the resource has errors and stays out of its workspace (it is new, or a Member,
which is never held at an older version because that version could grant revoked access)."""
CONFIG_TOO_LARGE = "ConfigTooLarge"
"""Programmed (Workspace): the compiled configuration is over the size a Secret can hold; the
last applied configuration stays in use."""

# MCPServer: whether the last tool refresh (discovery) found another list than the one before.
TOOLS_CHANGED = "ToolsChanged"
"""The condition type, and its reason when True: the message says how the list changed."""
TOOLS_UNCHANGED = "ToolsUnchanged"
"""ToolsChanged False: the refresh found the same tools."""
FIRST_DISCOVERY = "FirstDiscovery"
"""ToolsChanged False: the first refresh since the operator started."""

# MCPServer: whether the tools it serves still match their pins (spec.tools.pin), set after
# each tool discovery when the server pins its tools.
TOOLS_PINNED = "ToolsPinned"
PINS_MATCH = "PinsMatch"
"""ToolsPinned True: every tool the server exposes matches its pin."""
PIN_MISMATCH = "PinMismatch"
"""ToolsPinned False: tools whose definition changed since it was pinned, or that are not
pinned, are withheld from members until the pin is updated in git (the message names them)."""
