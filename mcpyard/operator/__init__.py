"""The operator: kopf handlers that turn mcpyard resources into a serving gateway.

:mod:`._informer` lists and watches every kind into indexes and reports changes (kopf runs
the peering of replicas, no resource handler); :mod:`._reconcile` is the
one place that recompiles a workspace with :mod:`mcpyard.compiler` and applies the result
through :mod:`mcpyard.kube`; :mod:`._secrets` decrypts and seals, :mod:`._tokens` mints member
tokens, :mod:`._discovery` lists tools. No rule of mcpyard lives here, and no plaintext
secret reaches a resource, a status, an event or a log.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import kopf

from mcpyard import kube
from mcpyard.operator._peering import absence as peering_absence
from mcpyard.operator._registry import build as build_registry
from mcpyard.operator._registry import sweep
from mcpyard.operator._settings import Settings


def run(
    settings: Settings,
    connect: Callable[[], kube.Client],
    *,
    stop_flag: threading.Event | asyncio.Event | None = None,
    ready_flag: threading.Event | asyncio.Event | None = None,
) -> None:
    """Run the operator until stopped (blocking: kopf gets this thread and a new loop)."""
    registry = build_registry(settings)
    memo = kopf.Memo(options=settings, connect=connect)
    asyncio.run(
        kopf.operator(
            registry=registry,
            memo=memo,
            clusterwide=not settings.namespaces,
            namespaces=list(settings.namespaces),
            standalone=settings.peering is None,
            peering_name=settings.peering,  # None: kopf's default, as when not given
            stop_flag=stop_flag,
            ready_flag=ready_flag,
        )
    )


__all__ = ["Settings", "build_registry", "peering_absence", "run", "sweep"]
