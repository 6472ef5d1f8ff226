"""The config Secret: how the operator hands one workspace's configuration to the gateway.

One Secret per workspace, ``mcpyard-ws-<workspace>`` in the operator's namespace, labelled
``mcpyard.io/config=true`` and ``mcpyard.io/workspace=<workspace>``, with two entries:
``config.json`` (the compiled :class:`~mcpyard.compiler.config.WorkspaceConfig`) and
``secrets.json`` (identity -> value sealed under the gateway's master key, never plaintext).
The operator writes it with :func:`config_secret`; the gateway reads it with :func:`read`.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import pydantic

from mcpyard import errors, jsontypes
from mcpyard.compiler.config import WorkspaceConfig
from mcpyard.kube._client import KubeObject

CONFIG_PREFIX = "mcpyard-ws-"
CONFIG_LABEL = "mcpyard.io/config"
WORKSPACE_LABEL = "mcpyard.io/workspace"
REVISION_ANNOTATION = "mcpyard.io/config-revision"
"""The config hash on the Secret (not the git revision that pipelines write on resources as
``mcpyard.io/revision``)."""
CONFIG_KEY = "config.json"
SECRETS_KEY = "secrets.json"
MANAGED = {"app.kubernetes.io/managed-by": "mcpyard"}


def config_secret_name(workspace: str) -> str:
    return f"{CONFIG_PREFIX}{workspace}"


def config_secret(
    namespace: str, config: WorkspaceConfig, sealed: Mapping[str, str]
) -> KubeObject:
    """The Secret that carries ``config`` and its sealed secret values."""
    config_json = config.model_dump_json().encode()
    secrets_json = json.dumps(dict(sealed), sort_keys=True).encode()
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": config_secret_name(config.name),
            "namespace": namespace,
            "labels": {**MANAGED, CONFIG_LABEL: "true", WORKSPACE_LABEL: config.name},
            "annotations": {REVISION_ANNOTATION: config.revision},
        },
        "data": {
            CONFIG_KEY: base64.b64encode(config_json).decode(),
            SECRETS_KEY: base64.b64encode(secrets_json).decode(),
        },
    }


@dataclass(frozen=True)
class ConfigSecret:
    """A config Secret as read back: the workspace's config and its sealed values."""

    workspace: str
    config: WorkspaceConfig
    sealed: Mapping[str, str] = field(default_factory=dict, repr=False)


def workspace_of(secret: KubeObject) -> str:
    """The workspace a config Secret is for: its label, else its name without the prefix."""
    label = jsontypes.text(secret, "metadata", "labels", WORKSPACE_LABEL)
    return label or jsontypes.text(secret, "metadata", "name").removeprefix(CONFIG_PREFIX)


def read(secret: KubeObject) -> ConfigSecret:
    """Parse a config Secret; :class:`~mcpyard.errors.ManifestError` (naming the Secret and
    the entry at fault, never quoting a value) when it cannot be read."""
    meta = jsontypes.obj(secret, "metadata")
    where = f"Secret {meta.get('namespace')}/{meta.get('name')}"
    workspace = workspace_of(secret)
    data = jsontypes.obj(secret, "data")
    raw: dict[str, bytes] = {}
    for key in (CONFIG_KEY, SECRETS_KEY):
        if key not in data:
            raise errors.ManifestError(f"{where}: no {key} entry")
        try:
            raw[key] = base64.b64decode(str(data[key]), validate=True)
        except (binascii.Error, ValueError):
            raise errors.ManifestError(f"{where}: {key} is not base64") from None
    try:
        config = WorkspaceConfig.model_validate_json(raw[CONFIG_KEY])
    except pydantic.ValidationError as exc:
        # Locations and messages only: pydantic's default text quotes the input.
        first = exc.errors(include_input=False, include_url=False)[0]
        loc = ".".join(str(p) for p in first["loc"]) or "(document)"
        raise errors.ManifestError(
            f"{where}: {CONFIG_KEY}: {loc}: {first['msg']} ({exc.error_count()} errors)"
        ) from None
    if config.name != workspace:
        raise errors.ManifestError(
            f"{where}: {CONFIG_KEY} is for workspace {config.name!r}, not {workspace!r}"
        )
    try:
        sealed = json.loads(raw[SECRETS_KEY])
    except ValueError:
        raise errors.ManifestError(f"{where}: {SECRETS_KEY} is not JSON") from None
    if not isinstance(sealed, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in sealed.items()
    ):
        raise errors.ManifestError(f"{where}: {SECRETS_KEY} is not a map of strings")
    return ConfigSecret(workspace, config, sealed)
