"""The resource API: pydantic models of the custom resources, the public contract.

``mcpyard.io/v1alpha1`` lives in :mod:`mcpyard.api.v1alpha1`, one kind per module. The CRDs in
``crds/`` are generated from these models by :mod:`mcpyard.api.crd`. Nothing here does I/O or
imports an adapter (kopf, Starlette, the kubernetes client, httpx).
"""
