"""Configuration sources: where the gateway's workspaces come from.

A folder of manifests (:mod:`._folder`), the operator's config Secrets in a cluster
(:mod:`._cluster`), or configurations given in code (:mod:`._static`). Each reads and
compiles; what to serve, and which last good configuration to keep, is decided by
:meth:`mcpyard.gateway._runtime.Runtime.publish`.
"""
