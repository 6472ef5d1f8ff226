"""The operator's settings (command line or test) and the kopf settings derived from them."""

from __future__ import annotations

import logging
import os
import random
from dataclasses import dataclass, field

import kopf

from mcpyard.compiler import children

FINALIZER = "mcpyard.io/finalizer"
ANNOTATION_PREFIX = "operator.mcpyard.io"


@dataclass(frozen=True)
class Settings:
    namespaces: tuple[str, ...] = ()
    """Namespaces to watch; empty: all namespaces."""
    operator_namespace: str = field(
        default_factory=lambda: os.environ.get("MCPYARD_NAMESPACE") or "mcpyard"
    )
    """Where the config Secrets, the age identities and the master key live."""
    gateway_url: str = ""
    """The gateway's public base URL; a Workspace's status.url is this + /ws/NAME/mcp."""
    runner_image: str = children.RUNNER_IMAGE
    """The image hosted stdio servers run in (it has `mcpyard bridge`)."""
    discovery_interval: float = 3600
    """Seconds between two tool discoveries of a serving server."""
    resync_interval: float = 300
    """Seconds between two full reconciles of a workspace (drift), and sweeps of config Secrets."""
    age_secret: str = "mcpyard-age"
    """The Secret (operator namespace) whose `*.agekey` entries are the age identities."""
    master_key_secret: str = "mcpyard-master-key"
    """The Secret (operator namespace, key `master.key`) with the gateway's master key."""
    peering: str | None = "mcpyard"
    """The kopf peering object shared by the replicas; None: standalone (one replica only)."""
    priority: int | None = None
    """This replica's peering priority; default a random one, so that exactly one writes."""
    post_events: bool = True
    """Post Kubernetes events for what the handlers log (off in tests)."""
    cancellation_polling: float = 60
    """How often kopf re-checks a stopping daemon (lowered in tests)."""
    discovery_timeout: float = 15
    """Seconds one tool discovery may take."""
    workers: int = 4
    """Workspaces reconciled at the same time."""
    argocd_namespace: str = "argocd"
    """Where Argo CD's Applications live (those tracked without a namespace of their own)."""
    max_config_bytes: int = 900 * 1024
    """A workspace's config Secret data past this is refused (Kubernetes stops at 1 MiB)."""


def configure(kopf_settings: kopf.OperatorSettings, settings: Settings) -> None:
    """Tune kopf for mcpyard: own annotation prefix and finalizer, events, peering."""
    kopf_settings.persistence.finalizer = FINALIZER
    kopf_settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix=ANNOTATION_PREFIX
    )
    kopf_settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=ANNOTATION_PREFIX, key="last-handled-configuration"
    )
    kopf_settings.posting.enabled = settings.post_events
    # kopf logs every handler's success at INFO, and posts what it logs on an object as an
    # Event: at a cold start of 16,000 resources, 16,000 Events POSTed to say "succeeded".
    kopf_settings.posting.level = logging.WARNING
    kopf_settings.background.cancellation_polling = settings.cancellation_polling
    # Handlers here are short and retried by the reconciler itself.
    kopf_settings.execution.max_workers = 4
    if settings.peering is None:
        kopf_settings.peering.standalone = True
    else:
        kopf_settings.peering.standalone = False
        kopf_settings.peering.mandatory = True
        kopf_settings.peering.name = settings.peering
        kopf_settings.peering.clusterwide = not settings.namespaces
        # Replicas with equal priorities would all freeze; a random one lets exactly one run.
        kopf_settings.peering.priority = (
            settings.priority
            if settings.priority is not None
            else random.SystemRandom().randint(1, 2**31 - 1)
        )
    if settings.namespaces:
        # Explicit names need no namespace listing (and no RBAC for it).
        kopf_settings.scanning.disabled = True
