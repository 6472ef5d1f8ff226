"""What the rest of the gateway calls: bearer checks, the 401 challenge, grants, servers.

An OAuth access token resolves to a Member through the same checks as an ``mwt_`` token
(:func:`member_problem`), on every request, against the live configuration: a member removed,
disabled, expired, renamed to another user, given a new ``mwt_`` token (token sign-in), or whose
workspace no longer accepts the way they signed in, loses every OAuth token at once. The grant
itself (revoked in the console or by ``mcpyard token revoke``, perhaps on another replica) is
read from the database at most every ``recheck_seconds``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from mcpyard.gateway._runtime import Live, Runtime
from mcpyard.gateway.downstream import _auth
from mcpyard.gateway.oauth import _metadata
from mcpyard.gateway.oauth._store import (
    ACCESS_PREFIX,
    Grant,
    GrantStore,
    Holder,
    digest,
    open_store,
)

if TYPE_CHECKING:
    from starlette.types import Scope

    from mcpyard.gateway.oauth._server import Server
    from mcpyard.gateway.oauth.oidc import RelyingParties

_CACHE_MAX = 10_000


def member_problem(live: Live | None, member: str, user: str, sign_in: str,
                   token_hash: str | None, now: float | None = None) -> str | None:
    """Why ``member`` may not act through OAuth in ``live`` now; None when they may."""
    if live is None:
        return "the workspace is not served"
    config = live.by_name.get(member)
    if config is None or config.user != user:
        return f"member {member} is no longer in workspace {live.config.name}"
    now = time.time() if now is None else now
    if not config.active(datetime.fromtimestamp(now, UTC)):  # the one rule of activity
        return f"member {member} is disabled" if config.disabled else f"member {member} has expired"
    methods = live.config.sign_in
    if sign_in == "token" and (not methods.token or config.token_hash != token_hash):
        return f"member {member}'s token sign-in is no longer valid"
    if sign_in == "oidc" and methods.oidc is None:
        return f"workspace {live.config.name} no longer accepts OpenID Connect sign-in"
    return None


class OAuth:
    """The OAuth side of one gateway: its store, client documents, per-workspace servers."""

    def __init__(self, runtime: Runtime, store: str | Path, *, redis_url: str | None = None,
                 public_url: str | None = None,
                 allow_private_metadata: bool = False, metadata_ca_file: str | None = None,
                 oidc_ca_file: str | None = None, recheck_seconds: float = 5.0,
                 master_key: Callable[[], bytes | None] | None = None) -> None:
        self.runtime = runtime
        self.where = store
        self.redis_url = redis_url
        self.public_url = public_url.rstrip("/") if public_url else None
        self.documents = _metadata.Fetcher(allow_private=allow_private_metadata,
                                           ca_file=metadata_ca_file)
        self.oidc_ca_file = oidc_ca_file
        self._relying_parties: RelyingParties | None = None
        self.recheck_seconds = recheck_seconds
        self.master_key = master_key
        self.store: GrantStore | None = None
        self._servers: dict[tuple[str, str], Server] = {}
        self._seen: dict[str, tuple[float, Grant | None]] = {}
        """access token hash -> (when read, its grant): the grants read lately."""

    @property
    def oidc(self) -> RelyingParties:
        """The OpenID Connect relying parties, imported on the first OIDC sign-in."""
        if self._relying_parties is None:
            from mcpyard.gateway.oauth import oidc

            self._relying_parties = oidc.RelyingParties(self.oidc_ca_file)
        return self._relying_parties

    def open(self) -> None:
        """Open (and migrate) the database; blocking, at start-up."""
        self.store = open_store(self.where, self.redis_url)

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None

    # -- URLs --------------------------------------------------------------------------------

    def base(self, scheme: str, host: str | None) -> str:
        """The gateway's public base URL: ``public_url``, else the request's own."""
        return self.public_url or f"{scheme}://{host or 'localhost'}"

    @staticmethod
    def issuer(base: str, workspace: str) -> str:
        return f"{base}/ws/{workspace}"

    @staticmethod
    def resource_metadata_url(base: str, path: str) -> str:
        """RFC 9728 3.1: the well-known segment goes between host and path."""
        return f"{base}/.well-known/oauth-protected-resource{path}"

    def server(self, live: Live, base: str) -> Server:
        name = live.config.name
        issuer = self.issuer(base, name)
        server = self._servers.get((name, issuer))
        if server is None:
            # Authlib is imported on the first OAuth request, not at start-up.
            from mcpyard.gateway.oauth._server import Server

            if len(self._servers) > 1000:
                self._servers.clear()
            assert self.store is not None, "the OAuth store is opened by the lifespan"
            server = self._servers[(name, issuer)] = Server(
                workspace=name, issuer=issuer, resource=f"{base}{live.config.path}",
                store=self.store, documents=self.documents, check=self._check,
                on_revoke=self.forget)
        return server

    def _check(self, holder: Holder) -> str | None:
        return member_problem(self.runtime.live.get(holder.workspace), holder.member,
                              holder.user, holder.sign_in, holder.token_hash)

    # -- bearer tokens -----------------------------------------------------------------------

    def challenge(self, live: Live, challenge: bytes, scope: Scope) -> bytes:
        """``challenge`` with the resource metadata URL of the endpoint asked for (RFC 9728
        5.1), when the workspace takes OAuth."""
        if not live.config.sign_in.enabled:
            return challenge
        host = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"host"), None)
        base = self.base(scope.get("scheme", "http"), host)
        url = self.resource_metadata_url(base, scope["path"])
        return challenge + b', resource_metadata="' + url.encode("latin-1") + b'"'

    async def authenticate(self, live: Live, authorization: bytes | None,
                           challenge: bytes) -> _auth.Member | bytes:
        """The member an OAuth access token in ``authorization`` stands for, else
        ``challenge`` (the ``mwt_`` check's), made ``invalid_token`` for a bad OAuth token."""
        if authorization is None or self.store is None or not live.config.sign_in.enabled:
            return challenge
        scheme, _, credential = authorization.partition(b" ")
        token = credential.strip()
        if scheme.lower() != b"bearer" or not token.startswith(ACCESS_PREFIX.encode()):
            return challenge
        try:
            hashed = digest(token.decode("ascii"))
        except UnicodeDecodeError:
            return _auth.CHALLENGE_INVALID
        grant = await self._grant(hashed)
        now = time.time()
        if (grant is None or grant.revoked is not None or grant.access_expires <= now
                or grant.workspace != live.config.name  # RFC 8707: bound to one workspace
                or member_problem(live, grant.member, grant.user, grant.sign_in,
                                  grant.token_hash, now) is not None):
            return _auth.CHALLENGE_INVALID
        config = live.by_name[grant.member]
        return _auth.Member(config, f"{live.config.namespace}/{config.name}",
                            client=grant.client_id, grant=grant.id)

    async def _grant(self, access_hash: str) -> Grant | None:
        seen = self._seen.get(access_hash)
        now = time.monotonic()
        if seen is not None and now - seen[0] < self.recheck_seconds:
            return seen[1]
        assert self.store is not None
        grant = await self.store.run(self.store.by_access, access_hash)
        if len(self._seen) >= _CACHE_MAX:
            self._seen = {k: v for k, v in self._seen.items()
                          if now - v[0] < self.recheck_seconds}
            if len(self._seen) >= _CACHE_MAX:
                self._seen.clear()
        self._seen[access_hash] = (now, grant)
        return grant

    def forget(self, grant_ids: list[str]) -> None:
        """Drop revoked grants from what this replica read lately (others re-read soon)."""
        if grant_ids:
            gone = set(grant_ids)
            self._seen = {k: v for k, v in self._seen.items()
                          if v[1] is None or v[1].id not in gone}

    # -- grants, for the console -------------------------------------------------------------

    async def grants(self, workspace: str, member: str) -> list[Grant]:
        if self.store is None:
            return []
        return await self.store.run(self.store.grants, workspace, member)

    async def revoke(self, workspace: str, member: str, grant_id: str | None = None) -> int:
        if self.store is None:
            return 0
        ids = await self.store.run(lambda: self.store.revoke(  # type: ignore[union-attr]
            grant_id=grant_id, workspace=workspace, member=member))
        self.forget(ids)
        return len(ids)
