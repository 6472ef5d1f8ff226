"""MCP authorization (OAuth 2.1) for members: the gateway as an authorization server.

Each workspace ``W`` is a protected resource (``/ws/W/mcp``, RFC 9728 metadata at
``/.well-known/oauth-protected-resource/ws/W/mcp``) with its own issuer ``<base>/ws/W``
(RFC 8414 metadata at ``/.well-known/oauth-authorization-server/ws/W``), because the ways
members sign in are declared per workspace (``spec.signIn``). Built on Authlib: authorization
code with PKCE (S256 only), rotating refresh tokens, Client ID Metadata Documents and dynamic
client registration, resource indicators, revocation. An OAuth access token resolves to a
Member through the same checks as an ``mwt_`` token, on every request.

Modules: ``_schema`` (tables, no imports: the records migrations take them), ``_store``
(grants, codes, clients in the records database), ``_metadata`` (Client ID Metadata Documents,
fetched with SSRF protection), ``_server`` (the Authlib server), ``_pages`` (the HTTP
endpoints, sign-in and consent), ``_service`` (what the app and transports call), ``oidc``
(sign-in through an OpenID Connect provider: the relying party).
Nothing here may log, record or return a token.
"""

from __future__ import annotations
