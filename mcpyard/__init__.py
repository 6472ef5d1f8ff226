"""mcpyard: a GitOps gateway for MCP servers.

Layers, arrows pointing down only: ``api`` <- ``compiler`` <- adapters (``cli``, ``gateway``,
``operator``). ``crypto`` and ``hub`` are leaf services the adapters use.
"""

__version__ = "0.1.0"
