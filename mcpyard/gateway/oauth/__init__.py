"""MCP authorization (OAuth 2.1) for members: the gateway's authorization server and its
sign-in methods. ``oidc``: sign-in through an OpenID Connect provider (the relying party)."""
