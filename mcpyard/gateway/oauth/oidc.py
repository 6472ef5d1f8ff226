"""Sign-in through an OpenID Connect provider: the relying party of a Workspace's
``spec.signIn.oidc`` (issuer, client id, client secret, the claim matched to ``Member.spec.user``).

The flow is the authorization code flow with PKCE (S256) and a nonce (OpenID Connect Core 1.0,
section 3.1): :meth:`OidcSignIn.authorization_url` sends the person to the provider;
:meth:`OidcSignIn.identity` takes the code the provider sends back, exchanges it at the token
endpoint (client authentication with the secret), verifies the ID token (signature against the
provider's JWKS, ``iss``, ``aud``/``azp``, ``exp``/``iat``, ``nonce``, ``at_hash``) and returns the
configured claim's value. A claim the ID token does not carry is read from the userinfo endpoint
(providers serve the scopes' claims there in the code flow), whose ``sub`` must be the ID token's.

Authlib does the protocol parts (PKCE challenge, request parameters, client authentication, the
ID token claim rules of ``authlib.oidc.core.CodeIDToken``) and joserfc, Authlib's JOSE layer, the
signatures. The provider's metadata (OpenID Connect Discovery 1.0) and keys are fetched once and
cached; an unknown key id fetches the keys again (the provider rotated them).

Errors are :class:`OidcError`: :class:`OidcUnavailable` when the provider cannot be used (not
reachable, metadata wrong: retry later or fix the Workspace), :class:`OidcRefused` when this
sign-in is refused (the person starts again). Messages name the issuer, endpoint or claim at
fault and never carry the client secret, a code, a token or a URL's query string.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import cast
from urllib.parse import urlsplit

import aiohttp
from authlib.common.security import generate_token
from authlib.common.urls import add_params_to_uri, url_encode
from authlib.oauth2.auth import encode_client_secret_basic, encode_client_secret_post
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import ClaimError, InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from mcpyard.errors import OidcError as OidcError
from mcpyard.errors import OidcRefused as OidcRefused
from mcpyard.errors import OidcUnavailable as OidcUnavailable
from mcpyard.mcp.jsonrpc import JSONObject, JSONValue

__all__ = [
    "Attempt",
    "HttpRequest",
    "HttpResponse",
    "OidcError",
    "OidcRefused",
    "OidcSignIn",
    "OidcUnavailable",
    "RelyingParties",
    "Send",
    "aiohttp_sender",
    "new_attempt",
]

MAX_PARTIES = 256
"""Relying parties kept (their discovery documents and keys) by :class:`RelyingParties`."""
MAX_BODY = 1 << 20
"""Largest provider response read (metadata, keys, tokens, userinfo)."""
TIMEOUT = 10.0
"""Seconds for one request to the provider."""
_ASYMMETRIC = ("RS", "PS", "ES", "Ed")
"""Signature algorithm families accepted for ID tokens: never ``none``, never HMAC (whose key
would be the client secret)."""


@dataclasses.dataclass(frozen=True)
class HttpRequest:
    method: str
    url: str
    headers: Mapping[str, str]
    body: str | None = None


@dataclasses.dataclass(frozen=True)
class HttpResponse:
    status: int
    body: bytes


Send = Callable[[HttpRequest], Awaitable[HttpResponse]]
"""How requests reach the provider (injectable, as an httpx transport would be)."""


def aiohttp_sender(tls: ssl.SSLContext | None = None) -> Send:
    """Requests on aiohttp, each on its own short-lived session (a sign-in is rare: nothing to
    pool); ``tls`` replaces the system's trust store (a provider with a private CA)."""
    async def send(request: HttpRequest) -> HttpResponse:
        timeout = aiohttp.ClientTimeout(total=TIMEOUT)
        connector = aiohttp.TCPConnector(ssl=tls if tls is not None else True)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session, \
                session.request(request.method, request.url, headers=dict(request.headers),
                                data=request.body, allow_redirects=False) as response:
            body = bytearray()
            async for chunk in response.content.iter_chunked(1 << 16):
                body += chunk
                if len(body) > MAX_BODY:
                    break
            return HttpResponse(response.status, bytes(body))
    return send


@dataclasses.dataclass(frozen=True)
class Attempt:
    """The secrets of one sign-in attempt, kept server-side until the provider calls back."""

    state: str
    nonce: str
    code_verifier: str


def new_attempt() -> Attempt:
    return Attempt(state=generate_token(32), nonce=generate_token(32),
                   code_verifier=generate_token(64))


@dataclasses.dataclass(frozen=True)
class _Client:
    """What Authlib's client authentication encoders read."""

    client_id: str
    client_secret: str

    def __repr__(self) -> str:
        return f"_Client({self.client_id!r})"


class OidcSignIn:
    """The relying party for one provider and client registration."""

    def __init__(
        self,
        issuer: str,
        client_id: str,
        client_secret: str,
        claim: str = "email",
        *,
        scopes: tuple[str, ...] = ("openid", "email", "profile"),
        send: Send | None = None,
        clock: Callable[[], float] = time.time,
        leeway: int = 60,
        metadata_ttl: float = 3600.0,
    ) -> None:
        _check_endpoint(issuer, "issuer", issuer)
        self.issuer = issuer
        self.client_id = client_id
        self.claim = claim
        self.scopes = scopes
        self._client = _Client(client_id, client_secret)
        self._send = send or aiohttp_sender()
        self._clock = clock
        self._leeway = leeway
        self._metadata_ttl = metadata_ttl
        self._metadata: JSONObject | None = None
        self._metadata_at = 0.0
        self._keys: KeySet | None = None

    def __repr__(self) -> str:
        return f"OidcSignIn({self.issuer!r}, client_id={self.client_id!r}, claim={self.claim!r})"

    async def authorization_url(
        self, redirect_uri: str, state: str, nonce: str, code_verifier: str
    ) -> str:
        """Where to send the person: the provider's authorization endpoint with this attempt."""
        metadata = await self.metadata()
        params = [
            ("response_type", "code"),
            ("client_id", self.client_id),
            ("redirect_uri", redirect_uri),
            ("scope", " ".join(self.scopes)),
            ("state", state),
            ("nonce", nonce),
            ("code_challenge", create_s256_code_challenge(code_verifier)),
            ("code_challenge_method", "S256"),
        ]
        endpoint = cast(str, metadata["authorization_endpoint"])  # metadata() checked it
        return str(add_params_to_uri(endpoint, params))

    async def identity(
        self,
        code: str,
        redirect_uri: str,
        nonce: str,
        code_verifier: str,
        *,
        response_iss: str | None = None,
    ) -> str:
        """The verified value of :attr:`claim` for the person who signed in.

        ``response_iss`` is the callback's ``iss`` parameter (RFC 9207) when the provider sends
        one: it must be this issuer, or the code came from another provider (mix-up attack).
        """
        metadata = await self.metadata()
        if response_iss is not None and response_iss != self.issuer:
            raise OidcRefused(self.issuer, "the callback names another issuer")
        if response_iss is None and metadata.get("authorization_response_iss_parameter_supported"):
            raise OidcRefused(self.issuer, "the callback lacks the iss parameter")
        tokens = await self._exchange(metadata, code, redirect_uri, code_verifier)
        claims = await self._id_token_claims(metadata, tokens, nonce)
        source = claims
        if self.claim not in source and metadata.get("userinfo_endpoint"):
            source = await self._userinfo(metadata, tokens, claims["sub"])
        value = source.get(self.claim)
        if value is None:
            raise OidcRefused(self.issuer, f"the provider gave no {self.claim!r} claim "
                              f"for this account (spec.signIn.oidc.claim)")
        if not isinstance(value, str) or not value:
            raise OidcRefused(self.issuer, f"claim {self.claim!r} is not a string")
        if self.claim == "email" and source.get("email_verified") is False:
            raise OidcRefused(self.issuer, "the provider has not verified this email")
        return value

    async def metadata(self) -> JSONObject:
        """The provider's metadata (OpenID Connect Discovery 1.0), cached for a while."""
        now = self._clock()
        if self._metadata is not None and now - self._metadata_at < self._metadata_ttl:
            return self._metadata
        url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        metadata = await self._get_json(url, "discovery", OidcUnavailable)
        if metadata.get("issuer") != self.issuer:
            raise OidcUnavailable(self.issuer, f"the discovery document names issuer "
                                  f"{str(metadata.get('issuer'))[:200]!r}, not this one")
        for field in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            endpoint = metadata.get(field)
            if not isinstance(endpoint, str):
                raise OidcUnavailable(self.issuer, f"the discovery document lacks {field}")
            _check_endpoint(endpoint, field, self.issuer)
        userinfo = metadata.get("userinfo_endpoint")
        if isinstance(userinfo, str):
            _check_endpoint(userinfo, "userinfo_endpoint", self.issuer)
        else:
            metadata.pop("userinfo_endpoint", None)
        self._metadata, self._metadata_at = metadata, now
        self._keys = None  # the keys are read again with the metadata (a key may be withdrawn)
        return metadata

    async def _exchange(
        self, metadata: JSONObject, code: str, redirect_uri: str, code_verifier: str
    ) -> JSONObject:
        body = url_encode([("grant_type", "authorization_code"), ("code", code),
                           ("redirect_uri", redirect_uri), ("code_verifier", code_verifier)])
        headers = {"Content-Type": "application/x-www-form-urlencoded",
                   "Accept": "application/json"}
        methods = metadata.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        if not isinstance(methods, list):
            methods = ["client_secret_basic"]  # not a list: as if it named none
        encode = (encode_client_secret_post
                  if "client_secret_basic" not in methods and "client_secret_post" in methods
                  else encode_client_secret_basic)
        url = cast(str, metadata["token_endpoint"])  # metadata() checked it
        _, headers, body = encode(self._client, "POST", url, headers, body)
        response = await self._request(HttpRequest("POST", url, headers, body), "token")
        answer = _json(response, self.issuer, "token", OidcRefused)
        if response.status != 200:
            error = str(answer.get("error", "error"))[:80]
            raise OidcRefused(self.issuer, f"the token endpoint refused the code "
                              f"({response.status} {error})")
        if not isinstance(answer.get("id_token"), str):
            raise OidcRefused(self.issuer, "the token endpoint returned no ID token")
        return answer

    async def _id_token_claims(
        self, metadata: JSONObject, tokens: JSONObject, nonce: str
    ) -> JSONObject:
        offered = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
        if not isinstance(offered, list):
            offered = []  # not a list: names no algorithm (refused below)
        algorithms = [a for a in offered if isinstance(a, str) and a.startswith(_ASYMMETRIC)]
        if not algorithms:  # an empty list would let the JOSE library pick its defaults
            raise OidcUnavailable(self.issuer, "the provider signs ID tokens with no "
                                  "asymmetric algorithm (id_token_signing_alg_values_supported)")
        registry = JWSRegistry(algorithms=algorithms, strict_check_header=False)
        id_token = cast(str, tokens["id_token"])  # _exchange checked it
        try:
            try:
                token = jwt.decode(id_token, await self._key_set(metadata),
                                   registry=registry)
            except InvalidKeyIdError:
                self._keys = None
                token = jwt.decode(id_token, await self._key_set(metadata),
                                   registry=registry)
        except InvalidKeyIdError:
            raise OidcRefused(self.issuer, "ID token refused: signed with a key the "
                              "provider does not publish") from None
        except JoseError as exc:
            raise OidcRefused(self.issuer, f"ID token refused: {exc.error}") from None
        options = {
            "iss": {"essential": True, "value": self.issuer},
            "aud": {"essential": True, "value": self.client_id},
            "sub": {"essential": True},
        }
        params = {"nonce": nonce, "client_id": self.client_id,
                  "access_token": tokens.get("access_token")}
        claims = CodeIDToken(token.claims, token.header, options, params)
        try:
            claims.validate(now=int(self._clock()), leeway=self._leeway)
        except ClaimError as exc:
            raise OidcRefused(self.issuer, f"ID token refused: {exc.description}") from None
        return dict(token.claims)

    async def _key_set(self, metadata: JSONObject) -> KeySet:
        if self._keys is None:
            jwks_uri = cast(str, metadata["jwks_uri"])  # metadata() checked it
            jwks = await self._get_json(jwks_uri, "jwks_uri", OidcUnavailable)
            try:
                self._keys = KeySet.import_key_set(jwks)  # type: ignore[arg-type]
            except (JoseError, ValueError, TypeError, KeyError) as exc:
                raise OidcUnavailable(self.issuer, f"the keys at jwks_uri cannot be "
                                      f"read ({type(exc).__name__})") from None
        return self._keys

    async def _userinfo(
        self, metadata: JSONObject, tokens: JSONObject, sub: JSONValue
    ) -> JSONObject:
        if not isinstance(tokens.get("access_token"), str):
            raise OidcRefused(self.issuer, "the token endpoint returned no access token")
        headers = {"Authorization": f"Bearer {tokens['access_token']}",
                   "Accept": "application/json"}
        response = await self._request(
            # metadata() kept it only as a string
            HttpRequest("GET", cast(str, metadata["userinfo_endpoint"]), headers), "userinfo")
        if response.status != 200:
            raise OidcRefused(self.issuer, f"the userinfo endpoint answered "
                              f"{response.status}")
        info = _json(response, self.issuer, "userinfo", OidcRefused)
        if info.get("sub") != sub:
            # OpenID Connect Core 1.0, section 5.3.2: another person's claims otherwise.
            raise OidcRefused(self.issuer, "userinfo is about another subject")
        return info

    async def _get_json(
        self, url: str, what: str, error: type[OidcError]
    ) -> JSONObject:
        response = await self._request(
            HttpRequest("GET", url, {"Accept": "application/json"}), what)
        if response.status != 200:
            raise error(self.issuer, f"{what} answered {response.status}")
        return _json(response, self.issuer, what, error)

    async def _request(self, request: HttpRequest, what: str) -> HttpResponse:
        try:
            response = await self._send(request)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise OidcUnavailable(self.issuer, f"{what} not reachable "
                                  f"({type(exc).__name__})") from None
        if len(response.body) > MAX_BODY:
            raise OidcUnavailable(self.issuer, f"{what} answer over {MAX_BODY} bytes")
        return response


class RelyingParties:
    """The gateway's relying parties, one per provider registration (issuer, client id, secret,
    claim), kept so that their discovery documents and keys are fetched once, not per sign-in.
    ``ca_file`` verifies providers with a private CA instead of the system's trust store."""

    def __init__(self, ca_file: str | None = None, send: Send | None = None) -> None:
        tls = ssl.create_default_context(cafile=ca_file) if ca_file else None
        self._send = send or aiohttp_sender(tls)
        self._parties: dict[tuple[str, ...], OidcSignIn] = {}

    def get(self, issuer: str, client_id: str, client_secret: str, claim: str) -> OidcSignIn:
        # The secret is part of the registration (a new one in git takes effect at once) but
        # is kept in the key only as a digest.
        digest = hashlib.sha256(client_secret.encode()).hexdigest()
        key = (issuer, client_id, digest, claim)
        party = self._parties.pop(key, None)
        if party is None:
            party = OidcSignIn(issuer, client_id, client_secret, claim, send=self._send)
            while len(self._parties) >= MAX_PARTIES:
                del self._parties[next(iter(self._parties))]
        self._parties[key] = party  # the most recently used last
        return party


def _json(
    response: HttpResponse, issuer: str, what: str, error: type[OidcError]
) -> JSONObject:
    try:
        value = json.loads(response.body)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise error(issuer, f"{what} answer is not a JSON object ({response.status})")
    return value


def _check_endpoint(url: str, field: str, issuer: str) -> None:
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise OidcUnavailable(issuer, f"{field} must be an https URL")
