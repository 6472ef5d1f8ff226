"""The OAuth endpoints: metadata, authorize (sign-in and consent pages), token, register,
revoke, and the OpenID Connect sign-in's start and callback.

Pages are server-rendered (Jinja, the console's stylesheet, no script, no external asset).
The authorization request travels through the sign-in and consent forms sealed (HMAC-SHA256
under a key derived from the gateway's master key, so any replica accepts it; ten minutes)
and bound to this browser: the first page sets a random nonce in a cookie (``HttpOnly``,
``Path=/ws/W/oauth``, ``SameSite=Lax``: it must come back with the OpenID provider's
redirect) whose hash is in the sealed state, and every POST must come from the gateway's own
page (``Origin`` / ``Sec-Fetch-Site``) and carry both. The member's token is checked once and
never stored (the grant keeps its hash, to end the grant when the member gets a new token).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import logging
import secrets
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Required, TypeAlias, TypedDict, cast

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from mcpyard import errors
from mcpyard.crypto import tokens
from mcpyard.gateway._runtime import Live
from mcpyard.gateway.console import _session
from mcpyard.gateway.oauth import _metadata
from mcpyard.gateway.oauth._service import OAuth, member_problem
from mcpyard.gateway.oauth._store import Holder

if TYPE_CHECKING:
    from types import ModuleType

    from mcpyard.gateway.oauth._server import Answer, Client
    from mcpyard.gateway.oauth.oidc import OidcSignIn

Grant: TypeAlias = Any
"""Authlib's authorization grant (Authlib is untyped): its ``client`` and ``request``."""


class Flow(TypedDict, total=False):
    """A browser's sign-in in progress, sealed into its forms (:class:`Sealer`)."""

    w: Required[str]
    """The workspace."""
    q: Required[dict[str, list[str]]]
    """The authorization request's parameters."""
    n: Required[str]
    """The hash of the browser's nonce cookie."""
    m: str
    u: str
    s: str
    t: str | None
    """Once signed in: member, user, sign-in method, token hash."""
    on: str
    ov: str
    """OpenID Connect: its nonce and code verifier."""
    exp: float

log = logging.getLogger("mcpyard.gateway")
COOKIE = "mcpyard_oauth"
FLOW_SECONDS = 600.0
PURPOSE = b"mcpyard/oauth/form-state/v1"
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
                               "form-action 'self' *; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # no-referrer would make form posts Origin: null
    "Cache-Control": "no-store",
}
"""``form-action *``: the consent form's answer redirects to the client's own callback."""
JSON_HEADERS = {"Cache-Control": "no-store", "Access-Control-Allow-Origin": "*"}


def _authlib() -> ModuleType:
    """The Authlib server module, imported on the first OAuth request (not at start-up)."""
    from mcpyard.gateway.oauth import _server

    return _server


def _oidc() -> ModuleType:
    """The OpenID Connect relying party (:mod:`mcpyard.gateway.oauth.oidc`: Authlib, joserfc),
    imported on the first OpenID Connect sign-in (not at start-up)."""
    from mcpyard.gateway.oauth import oidc

    return oidc


class Sealer:
    """Seals form state with a key derived from the master key (or a random one)."""

    def __init__(self, master_key: Callable[[], bytes | None] | None = None) -> None:
        self._master_key = master_key
        self._key = secrets.token_bytes(32)
        self._from: bytes | None = None

    def _signing_key(self) -> bytes:
        master = self._master_key() if self._master_key is not None else None
        if master and master != self._from:
            self._key, self._from = _session.derive_key(master, PURPOSE), master
        return self._key

    def seal(self, data: Flow) -> str:
        payload = json.dumps({**data, "exp": time.time() + FLOW_SECONDS},
                             separators=(",", ":")).encode()
        mac = hmac.new(self._signing_key(), payload, hashlib.sha256).digest()
        return (base64.urlsafe_b64encode(payload).decode().rstrip("=") + "."
                + base64.urlsafe_b64encode(mac).decode().rstrip("="))

    def open(self, text: str | None) -> Flow | None:
        if not text or text.count(".") != 1:
            return None
        body, mac = text.split(".")
        try:
            payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            given = base64.urlsafe_b64decode(mac + "=" * (-len(mac) % 4))
        except ValueError:
            return None
        if not hmac.compare_digest(hmac.new(self._signing_key(), payload,
                                            hashlib.sha256).digest(), given):
            return None
        data = cast(Flow, json.loads(payload))  # our own seal: its MAC checked above
        return data if data.get("exp", 0) > time.time() else None


def _restart(flow: Flow) -> Flow:
    """The flow as it was before anyone signed in."""
    return {"w": flow["w"], "q": flow["q"], "n": flow["n"]}


def _nonce_hash(nonce: str | None) -> str:
    return hashlib.sha256((nonce or "").encode()).hexdigest()


class Pages:
    def __init__(self, oauth: OAuth) -> None:
        self.oauth = oauth
        self.runtime = oauth.runtime
        self.sealer = Sealer(oauth.master_key)
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
            autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
            lstrip_blocks=True)

    def routes(self) -> list[Route]:
        return [
            Route("/.well-known/oauth-protected-resource/ws/{workspace}/{endpoint}",
                  self.resource_metadata, methods=["GET"]),
            Route("/.well-known/oauth-authorization-server/ws/{workspace}",
                  self.server_metadata, methods=["GET"]),
            Route("/ws/{workspace}/oauth/authorize", self.authorize, methods=["GET"]),
            Route("/ws/{workspace}/oauth/authorize", self.authorize_form, methods=["POST"]),
            Route("/ws/{workspace}/oauth/token", self.token, methods=["POST"]),
            Route("/ws/{workspace}/oauth/register", self.register, methods=["POST"]),
            Route("/ws/{workspace}/oauth/revoke", self.revoke, methods=["POST"]),
            Route("/ws/{workspace}/oauth/oidc/start", self.oidc_start, methods=["POST"]),
            Route("/ws/{workspace}/oauth/oidc/callback", self.oidc_callback,
                  methods=["GET"]),
        ]

    # -- plumbing ----------------------------------------------------------------------------

    def _live(self, request: Request) -> Live | None:
        live = self.runtime.live.get(request.path_params["workspace"])
        return live if live is not None and live.config.sign_in.enabled else None

    def _base(self, request: Request) -> str:
        return self.oauth.base(request.url.scheme, request.headers.get("host"))

    def page(self, template: str, status: int = 200, **context: object) -> HTMLResponse:
        body = self.env.get_template(template).render(static="/console/static/v2", **context)
        return HTMLResponse(body, status_code=status, headers=HEADERS)

    def error(self, message: str, status: int = 400) -> HTMLResponse:
        return self.page("error.html", status, message=message)

    @staticmethod
    def _json(answer: Answer) -> Response:
        headers = {k: v for k, v in answer.headers if k.lower() != "content-type"}
        return JSONResponse(answer.body, status_code=answer.status,
                            headers={**headers, **JSON_HEADERS})

    async def _form(self, request: Request) -> dict[str, list[str]]:
        form = await request.form()
        multi: dict[str, list[str]] = {}
        for key, value in form.multi_items():
            if isinstance(value, str):
                multi.setdefault(key, []).append(value)
        return multi

    async def _prefetch(self, client_id: str | None) -> str | None:
        """Fetch a metadata document client's document first (Authlib reads it blocking);
        why it cannot be used, else None."""
        if client_id and _metadata.is_metadata_url(client_id):
            try:
                await self.oauth.documents.get(client_id)
            except _metadata.MetadataError as exc:
                return str(exc)
        return None

    # -- metadata ----------------------------------------------------------------------------

    async def resource_metadata(self, request: Request) -> Response:
        live = self._live(request)
        endpoint = request.path_params["endpoint"]
        if live is None or endpoint not in ("mcp", "sse"):
            return JSONResponse({"error": "not_found"}, 404, headers=JSON_HEADERS)
        base = self._base(request)
        return JSONResponse({
            "resource": f"{base}/ws/{live.config.name}/{endpoint}",
            "authorization_servers": [self.oauth.issuer(base, live.config.name)],
            "bearer_methods_supported": ["header"],
            "resource_name": live.config.display_name,
            "resource_documentation": f"{base}/ws/{live.config.name}/docs",
        }, headers=JSON_HEADERS)

    async def server_metadata(self, request: Request) -> Response:
        live = self._live(request)
        if live is None:
            return JSONResponse({"error": "not_found"}, 404, headers=JSON_HEADERS)
        return JSONResponse(self.oauth.server(live, self._base(request)).metadata,
                            headers=JSON_HEADERS)

    # -- authorize: sign in, then consent ------------------------------------------------------

    async def _consent_grant(self, live: Live, base: str,
                             params: dict[str, list[str]]) -> Grant:
        """Authlib's grant for the authorization request ``params``; an Answer (error
        redirect) or an HTMLResponse (error page) when it is not valid."""
        client_id = next(iter(params.get("client_id") or ()), None)
        problem = await self._prefetch(client_id)
        if problem is not None:
            return self.error(f"This client cannot sign in: {problem}.")
        server = self.oauth.server(live, base)
        query = urllib.parse.urlencode([(k, v) for k, vs in params.items() for v in vs])
        oauth_request = _authlib().FormRequest(
            "GET", f"{server.issuer}/oauth/authorize?{query}", {}, params)
        store = server.store
        try:
            return await store.run(server.get_consent_grant, oauth_request)
        except _authlib().OAuth2Error as exc:
            answer: Answer = server.handle_error_response(oauth_request, exc)
            if answer.location and exc.redirect_uri:
                answer.location = _authlib().add_params_to_uri(answer.location,
                                                               {"iss": server.issuer})
                return answer
            return self.error(f"This authorization request cannot be served: "
                              f"{exc.description or exc.error}.")

    def _client_view(self, client: Client, redirect_uri: str) -> dict[str, object]:
        host = urllib.parse.urlsplit(client.client_id).hostname if client.document else None
        return {"name": client.name, "id": client.client_id, "document": client.document,
                "host": host, "uri": client.metadata.get("client_uri"),
                "redirect": redirect_uri}

    async def authorize(self, request: Request) -> Response:
        live = self._live(request)
        if live is None:
            return self.error("This workspace does not take OAuth sign-in.", 404)
        params: dict[str, list[str]] = {}
        for key, value in request.query_params.multi_items():
            params.setdefault(key, []).append(value)
        grant = await self._consent_grant(live, self._base(request), params)
        if isinstance(grant, _authlib().Answer):
            return RedirectResponse(grant.location or "/", 303, headers=HEADERS)
        if isinstance(grant, Response):
            return grant
        nonce = secrets.token_urlsafe(18)
        flow: Flow = {"w": live.config.name, "q": params, "n": _nonce_hash(nonce)}
        response = self._signin(live, grant, flow)
        response.set_cookie(COOKIE, nonce, max_age=int(FLOW_SECONDS),
                            path=f"/ws/{live.config.name}/oauth", httponly=True,
                            samesite="lax", secure=request.url.scheme == "https"
                            or request.headers.get("x-forwarded-proto") == "https")
        return response

    def _signin(self, live: Live, grant: Grant, flow: Flow, status: int = 200,
                error: str | None = None, *, at_callback: bool = False) -> HTMLResponse:
        """The sign-in page; ``at_callback``: served at the OpenID Connect callback, whose
        forms must post to the authorize and start URLs all the same (relative: a prefix in
        front of the gateway is kept)."""
        methods = live.config.sign_in
        issuer = methods.oidc.issuer if methods.oidc is not None else None
        return self.page("signin.html", status, ws=live.config, error=error,
                         client=self._client_view(grant.client,
                                                  grant.request.payload.redirect_uri),
                         flow=self.sealer.seal(flow), token=methods.token, oidc=issuer,
                         authorize="../authorize" if at_callback else "authorize",
                         oidc_start="start" if at_callback else "oidc/start")

    def _consent(self, live: Live, grant: Grant, flow: Flow,
                 *, at_callback: bool = False) -> HTMLResponse:
        config = live.by_name[flow["m"]]
        return self.page("consent.html", ws=live.config, member=config,
                         client=self._client_view(grant.client,
                                                  grant.request.payload.redirect_uri),
                         tools=sorted(live.view(config).allowed),
                         flow=self.sealer.seal(flow),
                         authorize="../authorize" if at_callback else "authorize")

    def _flow(self, request: Request, live: Live, sealed: str | None) -> Flow | None:
        """The sealed state of a form of this browser's flow; None when forged or stale."""
        flow = self.sealer.open(sealed)
        if (flow is None or flow.get("w") != live.config.name
                or not hmac.compare_digest(str(flow.get("n")),
                                           _nonce_hash(request.cookies.get(COOKIE)))):
            return None
        return flow

    async def authorize_form(self, request: Request) -> Response:
        live = self._live(request)
        if live is None:
            return self.error("This workspace does not take OAuth sign-in.", 404)
        headers = {k.lower(): v for k, v in request.headers.items()}
        if not _session.same_origin(headers, request.url.scheme, request.url.netloc):
            return self.error("This form did not come from the gateway's own page.", 403)
        form = await request.form()
        flow = self._flow(request, live, str(form.get("flow") or ""))
        if flow is None:
            return self.error("This sign-in expired or did not start in this browser; start "
                              "again from your client.", 403)
        grant = await self._consent_grant(live, self._base(request), flow["q"])
        if isinstance(grant, _authlib().Answer):
            return RedirectResponse(grant.location or "/", 303, headers=HEADERS)
        if isinstance(grant, Response):
            return grant
        if form.get("step") == "signin":
            return self._token_signin(live, grant, flow, str(form.get("token") or "").strip())
        if form.get("step") != "consent" or "m" not in flow:
            return self.error("This form is not one of the sign-in steps.", 400)
        problem = member_problem(live, flow["m"], flow["u"], flow["s"], flow.get("t"))
        if problem is not None:
            return self._signin(live, grant, _restart(flow), 401,
                                error=f"Sign in again: {problem}.")
        holder = None
        if form.get("decision") == "approve":
            holder = Holder(live.config.name, flow["m"], flow["u"], flow["s"], flow.get("t"))
        server = self.oauth.server(live, self._base(request))
        answer: Answer = await server.store.run(
            lambda: server.create_authorization_response(grant.request, holder, grant))
        response = RedirectResponse(answer.location or "/", 303, headers=HEADERS)
        response.delete_cookie(COOKIE, path=f"/ws/{live.config.name}/oauth")
        return response

    def _token_signin(self, live: Live, grant: Grant, flow: Flow,
                      token: str) -> Response:
        if not live.config.sign_in.token:
            return self._signin(live, grant, flow, 403,
                                error="This workspace does not take token sign-in.")
        member = live.members.get(tokens.hash(token)) if tokens.is_well_formed(token) \
            else None
        if member is None or member_problem(live, member.name, member.config.user, "token",
                                            member.config.token_hash) is not None:
            return self._signin(live, grant, flow, 401, error=(
                f"That token is not an active member's token in {live.config.display_name}."))
        return self._consent(live, grant, {**flow, "m": member.name, "u": member.config.user,
                                           "s": "token", "t": member.config.token_hash})

    # -- OpenID Connect sign-in ------------------------------------------------------------------

    def _relying_party(self, request: Request) -> tuple[Live, OidcSignIn] | HTMLResponse:
        """The request's workspace and its OpenID Connect relying party, or the page saying
        why there is none."""
        live = self._live(request)
        config = live.config.sign_in.oidc if live is not None else None
        if live is None or config is None:
            return self.error("This workspace does not take OpenID Connect sign-in.", 404)
        try:
            secret = self.runtime.secrets.reveal(config.client_secret)
        except errors.SecretError as exc:
            log.warning("workspace %s: OpenID Connect client secret: %s", live.config.name, exc)
            return self.error("OpenID Connect sign-in is not ready: its client secret cannot be "
                              "unsealed. Tell the workspace's administrators.", 503)
        return live, self.oauth.oidc.get(config.issuer, config.client_id, secret, config.claim)

    async def oidc_start(self, request: Request) -> Response:
        found = self._relying_party(request)
        if isinstance(found, Response):
            return found
        live, rp = found
        headers = {k.lower(): v for k, v in request.headers.items()}
        form = await request.form()
        flow = self._flow(request, live, str(form.get("flow") or ""))
        if flow is None or not _session.same_origin(headers, request.url.scheme,
                                                    request.url.netloc):
            return self.error("This sign-in expired or did not start in this browser; start "
                              "again from your client.", 403)
        nonce, verifier = secrets.token_urlsafe(18), secrets.token_urlsafe(48)
        state = self.sealer.seal({**flow, "on": nonce, "ov": verifier})
        redirect = f"{self._base(request)}/ws/{live.config.name}/oauth/oidc/callback"
        try:
            url = await rp.authorization_url(redirect, state, nonce, verifier)
        except _oidc().OidcError as exc:  # its message names the issuer and the cause, no secret
            log.warning("workspace %s: OpenID Connect sign-in: %s", live.config.name, exc)
            return self.error("The identity provider cannot be used right now; try again "
                              "later, or sign in another way.", 503)
        return RedirectResponse(url, 303, headers=HEADERS)

    async def oidc_callback(self, request: Request) -> Response:
        found = self._relying_party(request)
        if isinstance(found, Response):
            return found
        live, rp = found
        flow = self._flow(request, live, request.query_params.get("state"))
        if flow is None or "on" not in flow:
            return self.error("This sign-in expired or did not start in this browser; start "
                              "again from your client.", 403)
        grant = await self._consent_grant(live, self._base(request), flow["q"])
        if not hasattr(grant, "client"):
            return grant if isinstance(grant, Response) else self.error("Start again.")
        again = _restart(flow)
        code = request.query_params.get("code")
        if not code:
            return self._signin(live, grant, again, 401, at_callback=True,
                                error="The identity provider did not sign you in.")
        redirect = f"{self._base(request)}/ws/{live.config.name}/oauth/oidc/callback"
        try:
            identity = await rp.identity(code, redirect, flow["on"], flow["ov"],
                                         response_iss=request.query_params.get("iss"))
        except _oidc().OidcError as exc:  # its message names the issuer and the cause, no secret
            log.warning("workspace %s: OpenID Connect sign-in refused: %s", live.config.name,
                        exc)
            why = "" if isinstance(exc, _oidc().OidcUnavailable) else f": {exc.cause}"
            return self._signin(live, grant, again, 401, at_callback=True,
                                error=f"The identity provider's answer could not be used{why}.")
        member = next((m for m in live.config.members if m.user == identity), None)
        if member is None or member_problem(live, member.name, member.user, "oidc",
                                            None) is not None:
            return self._signin(live, grant, again, 401, at_callback=True,
                                error=f"{identity} is not an active member of "
                                      f"{live.config.display_name}.")
        return self._consent(live, grant, {"w": flow["w"], "q": flow["q"], "n": flow["n"],
                                           "m": member.name, "u": member.user, "s": "oidc",
                                           "t": None}, at_callback=True)

    # -- token, register, revoke -----------------------------------------------------------------

    async def _form_endpoint(self, request: Request, path: str) -> Response:
        """The token or revocation endpoint (a form POST; ``path``: token | revoke)."""
        live = self._live(request)
        if live is None:
            return JSONResponse({"error": "invalid_request"}, 404, headers=JSON_HEADERS)
        params = await self._form(request)
        problem = await self._prefetch(next(iter(params.get("client_id") or ()), None))
        if problem is not None:
            return JSONResponse({"error": "invalid_client", "error_description": problem},
                                401, headers=JSON_HEADERS)
        server = self.oauth.server(live, self._base(request))
        oauth_request = _authlib().FormRequest("POST", f"{server.issuer}/oauth/{path}",
                                    request.headers, params)
        answer: Answer = await server.store.run(
            server.create_token_response if path == "token"
            else functools.partial(server.create_endpoint_response, "revocation"),
            oauth_request)
        return self._json(answer)

    async def token(self, request: Request) -> Response:
        return await self._form_endpoint(request, "token")

    async def revoke(self, request: Request) -> Response:
        return await self._form_endpoint(request, "revoke")

    async def register(self, request: Request) -> Response:
        live = self._live(request)
        if live is None:
            return JSONResponse({"error": "invalid_request"}, 404, headers=JSON_HEADERS)
        try:
            data = json.loads(await request.body())
        except ValueError:
            data = None
        if not isinstance(data, dict):
            return JSONResponse({"error": "invalid_client_metadata",
                                 "error_description": "the body must be a JSON object"}, 400,
                                headers=JSON_HEADERS)
        server = self.oauth.server(live, self._base(request))
        oauth_request = _authlib().json_request("POST", f"{server.issuer}/oauth/register",
                                     request.headers, data)
        answer: Answer = await server.store.run(server.create_endpoint_response,
                                                "client_registration", oauth_request)
        return self._json(answer)
