"""The authorization server of one workspace, on Authlib.

Authlib supplies the protocol: the authorization code grant with PKCE (:class:`CodeChallenge`,
S256 only here), the refresh token grant (rotating: every refresh issues a new refresh token and
the old one is refused; a replay of it revokes the grant), dynamic client registration (RFC
7591), revocation (RFC 7009) and the ``iss`` authorization response parameter (RFC 9207). This
module supplies storage (:mod:`._store`), clients (registered, or Client ID Metadata Documents
fetched beforehand by :mod:`._metadata`), resource indicators (RFC 8707: every code and token is
bound to the workspace's MCP URL) and the check that the member may still sign in.

Every method here is blocking: :class:`Server` runs on the store's thread.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

from authlib.common.urls import add_params_to_uri
from authlib.oauth2 import rfc7009, rfc7591, rfc7636, rfc9207
from authlib.oauth2.rfc6749 import (
    AuthorizationServer,
    ClientMixin,
    JsonRequest,
    OAuth2Payload,
    OAuth2Request,
    grants,
)
from authlib.oauth2.rfc6749.errors import (
    InvalidGrantError,
    InvalidRequestError,
    OAuth2Error,
)
from authlib.oauth2.rfc7591.errors import InvalidClientMetadataError

__all__ = ["OAuth2Error", "Server", "add_params_to_uri"]  # the pages use them
from mcpyard import errors
from mcpyard.gateway.oauth import _metadata
from mcpyard.gateway.oauth._store import (
    ACCESS_PREFIX,
    REFRESH_PREFIX,
    Grant,
    GrantStore,
    Holder,
    digest,
)
from mcpyard.mcp.jsonrpc import JSONValue

ACCESS_SECONDS = 3600
"""An access token's lifetime; the member is re-checked on every request all the same."""
REFRESH_SECONDS = 30 * 86400
"""A refresh token's lifetime, renewed by each refresh."""
CODE_SECONDS = 300
AUTH_METHODS = ["none", "client_secret_basic", "client_secret_post"]


class InvalidTargetError(OAuth2Error, errors.RequestError):  # type: ignore[misc]
    """RFC 8707: the resource asked for is not this workspace's. Authlib's error class (it
    renders only those) and a :class:`~mcpyard.errors.RequestError`."""

    error = "invalid_target"

    def __init__(self, description: str | None = None, **kw: object) -> None:
        OAuth2Error.__init__(self, description=description, **kw)  # Authlib, first in the MRO


def canonical(resource: str) -> str:
    """A resource URL as compared: scheme and host lower-cased, no fragment, no trailing /."""
    parts = urlsplit(resource.strip())
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path.rstrip("/"),
                       parts.query, ""))


# -- requests and responses -----------------------------------------------------------------


class _Payload(OAuth2Payload):  # type: ignore[misc]
    def __init__(self, multi: dict[str, list[str]]) -> None:
        self._multi = multi
        self._data = {k: v[0] for k, v in multi.items() if v}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> dict[str, list[str]]:
        return self._multi


class FormRequest(OAuth2Request):  # type: ignore[misc]
    """A request as Authlib reads it, built from what Starlette parsed (query or form)."""

    def __init__(self, method: str, uri: str, headers: Mapping[str, str],
                 multi: dict[str, list[str]]) -> None:
        super().__init__(method, uri, headers=headers)
        self.payload = _Payload(multi)

    @property
    def args(self) -> dict[str, str]:
        data: dict[str, str] = self.payload.data
        return data

    @property
    def form(self) -> dict[str, str]:
        data: dict[str, str] = self.payload.data
        return data


class _JsonPayload:
    def __init__(self, data: JSONValue) -> None:
        self.data = data


def json_request(method: str, uri: str, headers: Mapping[str, str], data: JSONValue
                 ) -> JsonRequest:
    request = JsonRequest(method, uri, headers)
    request.payload = _JsonPayload(data)
    return request


@dataclass
class Answer:
    """What Authlib answers: status, body (dict or text) and headers."""

    status: int
    body: Any
    headers: list[tuple[str, str]] = field(default_factory=list)

    @property
    def location(self) -> str | None:
        return next((v for k, v in self.headers if k.lower() == "location"), None)

    @location.setter
    def location(self, value: str) -> None:
        self.headers = [(k, v) for k, v in self.headers if k.lower() != "location"]
        self.headers.append(("Location", value))


# -- clients and the member -----------------------------------------------------------------
# Authlib is untyped: the arguments its hooks receive (requests, grants, bodies, metadata it
# decoded) stay Any here; what the gateway reads of them is what Authlib already checked.


class Client(ClientMixin):  # type: ignore[misc]
    """A registered client (dynamic registration) or a metadata document's client."""

    def __init__(self, client_id: str, metadata: dict[str, Any], secret_hash: str | None,
                 *, document: bool) -> None:
        self.client_id = client_id
        self.metadata = metadata
        self.secret_hash = secret_hash
        self.document = document
        """True: named by its metadata document URL (the name is the URL's host's word)."""

    @property
    def name(self) -> str:
        name = self.metadata.get("client_name")
        return str(name) if name else self.client_id

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return None  # OAuth 2.1: the request names its redirect_uri

    def get_allowed_scope(self, scope: str | None) -> str:
        return scope or ""

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.metadata.get("redirect_uris", ())  # exactly, RFC 9700

    def check_client_secret(self, client_secret: str) -> bool:
        return self.secret_hash is not None and hmac.compare_digest(
            self.secret_hash, digest(client_secret))

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return bool(method == self.metadata.get("token_endpoint_auth_method", "none"))

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        allowed = self.metadata.get("grant_types") or ["authorization_code", "refresh_token"]
        return grant_type in allowed


# -- grants ------------------------------------------------------------------------------------


class S256(rfc7636.CodeChallenge):  # type: ignore[misc]
    SUPPORTED_CODE_CHALLENGE_METHOD: ClassVar[list[str]] = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("code_challenge is required (PKCE with S256)",
                                      redirect_uri=redirect_uri, state=data.get("state"))
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("code_challenge_method must be S256",
                                      redirect_uri=redirect_uri, state=data.get("state"))
        super().validate_code_challenge(grant, redirect_uri)


@dataclass(frozen=True)
class Code:
    code_hash: str
    data: dict[str, Any]

    @property
    def code_challenge(self) -> str:
        return str(self.data["code_challenge"])

    @property
    def code_challenge_method(self) -> str:
        return str(self.data["code_challenge_method"])

    def get_redirect_uri(self) -> str:
        return str(self.data["redirect_uri"])

    def get_scope(self) -> str:
        return str(self.data["scope"])


class CodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS
    server: Server

    def validate_authorization_request(self) -> str:
        redirect_uri: str = super().validate_authorization_request()
        data = self.request.payload.data
        resource = data.get("resource")
        if resource is not None and canonical(resource) not in self.server.resources:
            raise InvalidTargetError(
                f"resource {resource} is not this workspace's MCP URL "
                f"({self.server.resource})", redirect_uri=redirect_uri,
                state=data.get("state"))
        return redirect_uri

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        holder: Holder = request.user
        data = request.payload.data
        self.server.store.save_code(code, {
            "client_id": request.client.get_client_id(), "client_name": request.client.name,
            "redirect_uri": data["redirect_uri"], "scope": request.scope or "",
            "resource": canonical(data.get("resource") or self.server.resource),
            "code_challenge": data["code_challenge"],
            "code_challenge_method": data.get("code_challenge_method", "S256"),
            "member": holder.member, "user": holder.user, "sign_in": holder.sign_in,
            "token_hash": holder.token_hash,
        }, time.time() + CODE_SECONDS)

    def query_authorization_code(self, code: str, client: Client) -> Code | None:
        data = self.server.store.code(code)
        if data is None or data["client_id"] != client.get_client_id():
            return None
        # Used once: taken now, so that two requests racing with it cannot both win.
        if not self.server.store.take_code(digest(code)):
            return None
        return Code(digest(code), data)

    def validate_token_request(self) -> None:
        super().validate_token_request()
        resource = self.request.payload.data.get("resource")
        code: Code = self.request.authorization_code
        if resource is not None and canonical(resource) != code.data["resource"]:
            raise InvalidTargetError(f"resource {resource} is not the one this code was "
                                     "issued for")

    def delete_authorization_code(self, authorization_code: Code) -> None:
        pass  # taken by query_authorization_code

    def authenticate_user(self, authorization_code: Code) -> Holder:
        data = authorization_code.data
        return self.server.still_member(Holder(self.server.workspace, data["member"],
                                               data["user"], data["sign_in"],
                                               data["token_hash"]))


class RefreshGrant(grants.RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True
    server: Server

    def authenticate_refresh_token(self, refresh_token: str) -> Grant | None:
        found = self.server.store.by_refresh(digest(refresh_token))
        if found is None:
            return None
        grant, current = found
        if not current:
            # A refresh token used twice: one copy is in the wrong hands (RFC 9700 4.14.2).
            self.server.store.revoke(grant_id=grant.id)
            self.server.on_revoke([grant.id])
            return None
        if grant.is_revoked() or grant.is_expired() or grant.workspace != self.server.workspace:
            return None
        resource = self.request.payload.data.get("resource")
        if resource is not None and canonical(resource) != grant.resource:
            raise InvalidTargetError(f"resource {resource} is not the one this grant is for")
        return grant

    def authenticate_user(self, refresh_token: Grant) -> Holder:
        return self.server.still_member(Holder(refresh_token.workspace, refresh_token.member,
                                               refresh_token.user, refresh_token.sign_in,
                                               refresh_token.token_hash))

    def revoke_old_credential(self, refresh_token: Grant) -> None:
        pass  # the rotation in save_token replaced it


# -- endpoints ---------------------------------------------------------------------------------


class Revocation(rfc7009.RevocationEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = AUTH_METHODS
    server: Server

    def query_token(self, token_string: str, token_type_hint: str | None) -> Grant | None:
        store, hashed = self.server.store, digest(token_string)
        grant = store.by_access(hashed)
        if grant is None:
            found = store.by_refresh(hashed)
            grant = found[0] if found is not None and found[1] else None
        return grant if grant is not None and grant.workspace == self.server.workspace else None

    def revoke_token(self, token: Grant, request: OAuth2Request) -> None:
        self.server.on_revoke(self.server.store.revoke(grant_id=token.id))


def _redirect_uri_ok(uri: str) -> bool:
    """https anywhere, http on loopback only (RFC 8252 7.3), or a private-use scheme of a
    native app (``cursor://``, RFC 8252 7.1); never a fragment."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return False
    if parts.fragment or not parts.scheme:
        return False
    if parts.scheme == "https":
        return bool(parts.hostname)
    if parts.scheme == "http":
        return parts.hostname in ("localhost", "127.0.0.1", "::1")
    return parts.scheme not in ("javascript", "data", "file", "vbscript")


class Registration(rfc7591.ClientRegistrationEndpoint):  # type: ignore[misc]
    server: Server

    def authenticate_token(self, request: Any) -> bool:
        return True  # open registration, as MCP clients expect; a client alone gets nothing

    def get_server_metadata(self) -> dict[str, Any]:
        return self.server.metadata

    def generate_client_id(self, request: Any) -> str:
        return "mcd_" + secrets.token_urlsafe(16)

    def generate_client_secret(self, request: Any) -> str | None:
        method = request.payload.data.get("token_endpoint_auth_method", "client_secret_basic")
        return None if method == "none" else secrets.token_urlsafe(32)

    def save_client(self, client_info: dict[str, Any], client_metadata: dict[str, Any],
                    request: Any) -> Client:
        uris = client_metadata.get("redirect_uris") or []
        if not uris:
            raise InvalidClientMetadataError("redirect_uris is required")
        for uri in uris:
            if not _redirect_uri_ok(uri):
                raise InvalidClientMetadataError(
                    f"redirect_uris: {uri} must be https, http on a loopback host, or a "
                    "native app's own scheme")
        for key in ("client_id_issued_at", "client_secret_expires_at"):
            client_metadata.pop(key, None)
        secret = client_info.get("client_secret")
        self.server.store.save_client(client_info["client_id"], self.server.workspace,
                                      digest(secret) if secret else None, client_metadata)
        return Client(client_info["client_id"], client_metadata, None, document=False)


class _Issuer(rfc9207.IssuerParameter):  # type: ignore[misc]
    def __init__(self, issuer: str) -> None:
        self.issuer = issuer

    def get_issuer(self) -> str:
        return self.issuer


# -- the server --------------------------------------------------------------------------------


class Server(AuthorizationServer):  # type: ignore[misc]
    """The authorization server of workspace ``workspace`` at ``issuer``."""

    def __init__(self, *, workspace: str, issuer: str, resource: str, store: GrantStore,
                 documents: _metadata.Fetcher, check: Callable[[Holder], str | None],
                 on_revoke: Callable[[list[str]], None]) -> None:
        super().__init__()
        self.workspace = workspace
        self.issuer = issuer
        self.resource = canonical(resource)
        base = resource.rsplit("/", 1)[0]
        self.resources = {self.resource, canonical(f"{base}/sse"), canonical(base)}
        """What a client may ask for (RFC 8707): the workspace's MCP URLs."""
        self.store = store
        self.documents = documents
        self._check = check
        self.on_revoke = on_revoke
        self.metadata = {
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/oauth/authorize",
            "token_endpoint": f"{issuer}/oauth/token",
            "registration_endpoint": f"{issuer}/oauth/register",
            "revocation_endpoint": f"{issuer}/oauth/revoke",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": AUTH_METHODS,
            "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
            "client_id_metadata_document_supported": True,
            "authorization_response_iss_parameter_supported": True,
        }
        self.register_grant(CodeGrant, [S256(required=True)])
        self.register_grant(RefreshGrant)
        self.register_endpoint(Revocation)
        self.register_endpoint(Registration)
        self.register_extension(lambda server: _Issuer(issuer)(server))
        self.register_token_generator("default", self._tokens)

    def still_member(self, holder: Holder) -> Holder:
        reason = self._check(holder)
        if reason is not None:
            raise InvalidGrantError(reason)
        return holder

    # -- Authlib's framework hooks --------------------------------------------------------

    def query_client(self, client_id: str) -> Client | None:
        if _metadata.is_metadata_url(client_id):
            document = self.documents.cached(client_id)
            return None if document is None else Client(client_id, document.metadata, None,
                                                        document=True)
        found = self.store.client(client_id, self.workspace)
        return None if found is None else Client(client_id, found[0], found[1],
                                                 document=False)

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        now = time.time()
        access, refresh = digest(token["access_token"]), digest(token["refresh_token"])
        access_expires, refresh_expires = now + ACCESS_SECONDS, now + REFRESH_SECONDS
        if request.payload.grant_type == "refresh_token":
            if not self.store.rotate(request.refresh_token, access_hash=access,
                                     access_expires=access_expires, refresh_hash=refresh,
                                     refresh_expires=refresh_expires):
                raise InvalidGrantError("this refresh token was already used")
            self.on_revoke([request.refresh_token.id])  # the old access token goes now
            return
        code: Code = request.authorization_code
        holder: Holder = request.user
        self.store.create(Grant(
            id="g_" + secrets.token_urlsafe(9), workspace=self.workspace,
            member=holder.member, user=holder.user, client_id=code.data["client_id"],
            client_name=code.data["client_name"], resource=code.data["resource"],
            scope=code.data["scope"], sign_in=holder.sign_in, token_hash=holder.token_hash,
            created=now, refreshed=now, access_hash=access, access_expires=access_expires,
            refresh_hash=refresh, refresh_expires=refresh_expires))

    def _tokens(self, grant_type: str, client: Client, user: Any = None,
                scope: str | None = None, expires_in: int | None = None,
                include_refresh_token: bool = True) -> dict[str, Any]:
        token = {"token_type": "Bearer",
                 "access_token": ACCESS_PREFIX + secrets.token_urlsafe(32),
                 "expires_in": ACCESS_SECONDS,
                 # Always: the grant's refresh state is how it is listed and revoked.
                 "refresh_token": REFRESH_PREFIX + secrets.token_urlsafe(32)}
        if scope:
            token["scope"] = scope
        return token

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        return request

    def create_json_request(self, request: Any) -> JsonRequest:
        return request

    def handle_response(self, status: int, body: Any, headers: Any) -> Answer:
        if isinstance(body, dict):
            body = {k: v for k, v in body.items() if v is not None}
        return Answer(status, body, list(headers or ()))

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        pass
