"""kopf handlers, one thin module per kind: read resources, call the compiler, apply objects
through :mod:`mcpyard.kube`, patch status. Nothing is here yet: it arrives with the operator.
"""
