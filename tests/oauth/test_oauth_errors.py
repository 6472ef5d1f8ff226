"""The authorization server's refusals, each with a message that says what is wrong: PKCE,
redirect URIs, resource indicators, registration, metadata documents, codes, and the forms'
CSRF defences. In-process gateway on loopback; the forms posted as a browser would."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from gwtools import Gateway, member, run_gateway, workspace

from mcpyard.compiler.config import SignInConfig
from mcpyard.crypto import tokens
from mcpyard.gateway.oauth import _metadata

pytestmark = pytest.mark.anyio

ALICE = tokens.new()
CALLBACK = "http://127.0.0.1:9/callback"
VERIFIER = secrets.token_urlsafe(48)
CHALLENGE = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).decode()\
    .rstrip("=")


@pytest.fixture
async def gw(settings_for: Any) -> AsyncIterator[Gateway]:
    configs = [workspace("eng", [], [member("alice", ALICE)], display_name="Engineering"),
               workspace("ops", [], [member("alice", ALICE)]),
               workspace("closed", [], [member("alice", ALICE)],
                         sign_in=SignInConfig(token=False))]
    async with run_gateway(settings_for(configs)) as running:
        yield running


async def register(http: httpx.AsyncClient, gw: Gateway, **extra: Any) -> httpx.Response:
    return await http.post(f"{gw.base_url}/ws/eng/oauth/register", json={
        "client_name": "Test", "redirect_uris": [CALLBACK], "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"], **extra})


def authorize_url(gw: Gateway, client_id: str, **overrides: str | None) -> str:
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": CALLBACK,
              "state": "s1", "code_challenge": CHALLENGE, "code_challenge_method": "S256",
              "resource": gw.url("eng"), **overrides}
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return f"{gw.base_url}/ws/eng/oauth/authorize?{query}"


def redirected(r: httpx.Response) -> dict[str, str]:
    assert r.status_code == 303, r.text
    location = r.headers["location"]
    assert location.startswith(CALLBACK + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def flow_of(page: str) -> str:
    found = re.search(r'name="flow" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


async def code_for(http: httpx.AsyncClient, gw: Gateway, client_id: str) -> str:
    """Sign in and consent through the forms, as a browser would; the code it gets."""
    page = await http.get(authorize_url(gw, client_id))
    assert page.status_code == 200, page.text
    origin = {"Origin": gw.base_url}
    consent = await http.post(f"{gw.base_url}/ws/eng/oauth/authorize", headers=origin,
                              data={"flow": flow_of(page.text), "step": "signin",
                                    "token": ALICE})
    assert consent.status_code == 200 and "Tools it may call for you" in consent.text
    done = await http.post(f"{gw.base_url}/ws/eng/oauth/authorize", headers=origin,
                           data={"flow": flow_of(consent.text), "step": "consent",
                                 "decision": "approve"})
    answer = redirected(done)
    assert answer["state"] == "s1" and answer["iss"] == f"{gw.base_url}/ws/eng"
    return answer["code"]


async def test_metadata_names_the_endpoints_and_what_is_supported(gw: Gateway) -> None:
    async with httpx.AsyncClient() as http:
        prm = (await http.get(
            f"{gw.base_url}/.well-known/oauth-protected-resource/ws/eng/mcp")).json()
        server = (await http.get(
            f"{gw.base_url}/.well-known/oauth-authorization-server/ws/eng")).json()
        closed = await http.get(
            f"{gw.base_url}/.well-known/oauth-protected-resource/ws/closed/mcp")
    assert prm["resource"] == gw.url("eng")
    assert prm["authorization_servers"] == [f"{gw.base_url}/ws/eng"]
    assert server["issuer"] == f"{gw.base_url}/ws/eng"
    assert server["code_challenge_methods_supported"] == ["S256"]
    assert server["client_id_metadata_document_supported"] is True
    assert server["grant_types_supported"] == ["authorization_code", "refresh_token"]
    assert closed.status_code == 404  # signIn allows no method: no OAuth there


async def test_authorization_requests_refused_with_reasons(gw: Gateway) -> None:
    async with httpx.AsyncClient() as http:
        client_id = (await register(http, gw)).json()["client_id"]
        # An unregistered redirect URI: never redirected to, an error page instead.
        r = await http.get(authorize_url(gw, client_id, redirect_uri="http://127.0.0.1:9/x"))
        assert r.status_code == 400 and "is not supported by client" in r.text
        assert "location" not in r.headers
        r = await http.get(authorize_url(gw, "mcd_unknown"))
        assert r.status_code == 400 and "The client does not exist" in r.text
        # PKCE is required, S256 only.
        err = redirected(await http.get(authorize_url(gw, client_id, code_challenge=None,
                                                      code_challenge_method=None)))
        assert err["error"] == "invalid_request" and "code_challenge" in err[
            "error_description"] and err["iss"] == f"{gw.base_url}/ws/eng"
        err = redirected(await http.get(authorize_url(gw, client_id,
                                                      code_challenge_method="plain")))
        assert err["error"] == "invalid_request" and "S256" in err["error_description"]
        # A resource of another workspace (RFC 8707).
        err = redirected(await http.get(authorize_url(gw, client_id, resource=gw.url("ops"))))
        assert err["error"] == "invalid_target"
        assert gw.url("ops") in err["error_description"]


async def test_registration_refuses_unsafe_redirect_uris(gw: Gateway) -> None:
    async with httpx.AsyncClient() as http:
        r = await register(http, gw, redirect_uris=["http://evil.example/cb"])
        assert r.status_code == 400
        assert r.json()["error"] == "invalid_client_metadata"
        assert "http://evil.example/cb" in r.json()["error_description"]
        ok = await register(http, gw, redirect_uris=["cursor://anysphere.cursor/cb"])
        assert ok.status_code == 201 and "client_secret" not in ok.json()


async def test_metadata_document_on_a_private_address_is_refused(gw: Gateway) -> None:
    async with httpx.AsyncClient() as http:
        r = await http.get(authorize_url(gw, "https://127.0.0.1:9/client.json"))
    assert r.status_code == 400
    assert "resolves to a non-public address (127.0.0.1); refused" in r.text


async def test_codes_are_bound_to_verifier_resource_and_single_use(gw: Gateway) -> None:
    token_url = f"{gw.base_url}/ws/eng/oauth/token"
    async with httpx.AsyncClient() as http:
        client_id = (await register(http, gw)).json()["client_id"]
        form = {"grant_type": "authorization_code", "client_id": client_id,
                "redirect_uri": CALLBACK}
        code = await code_for(http, gw, client_id)
        r = await http.post(token_url, data={**form, "code": code,
                                             "code_verifier": secrets.token_urlsafe(48)})
        assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
        code = await code_for(http, gw, client_id)
        r = await http.post(token_url, data={**form, "code": code, "code_verifier": VERIFIER,
                                             "resource": gw.url("ops")})
        assert r.status_code == 400 and r.json()["error"] == "invalid_target"
        code = await code_for(http, gw, client_id)
        r = await http.post(token_url, data={**form, "code": code, "code_verifier": VERIFIER,
                                             "resource": gw.url("eng")})
        assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
        body = r.json()
        assert body["token_type"] == "Bearer" and body["access_token"].startswith("mat_")
        again = await http.post(token_url, data={**form, "code": code,
                                                 "code_verifier": VERIFIER})
        assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
        # RFC 7009: revoked, then refused.
        revoked = await http.post(f"{gw.base_url}/ws/eng/oauth/revoke", data={
            "token": body["refresh_token"], "client_id": client_id})
        assert revoked.status_code == 200
        mcp = await http.post(gw.url("eng"), headers={
            "Authorization": f"Bearer {body['access_token']}",
            "Accept": "application/json, text/event-stream"},
            json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
        assert mcp.status_code == 401


async def test_forms_refuse_other_browsers_and_sites(gw: Gateway) -> None:
    async with httpx.AsyncClient() as http:
        client_id = (await register(http, gw)).json()["client_id"]
        page = await http.get(authorize_url(gw, client_id))
        flow = flow_of(page.text)
        url = f"{gw.base_url}/ws/eng/oauth/authorize"
        data = {"flow": flow, "step": "signin", "token": ALICE}
        cross = await http.post(url, data=data, headers={"Sec-Fetch-Site": "cross-site",
                                                         "Origin": gw.base_url})
        assert cross.status_code == 403 and "the gateway&#39;s own page" in cross.text
        wrong = await http.post(url, data={**data, "token": tokens.new()},
                                headers={"Origin": gw.base_url})
        assert wrong.status_code == 401
        assert "not an active member&#39;s token in Engineering" in wrong.text
    async with httpx.AsyncClient() as other_browser:  # the form, without this browser's cookie
        r = await other_browser.post(url, data=data, headers={"Origin": gw.base_url})
        assert r.status_code == 403 and "did not start in this browser" in r.text


@pytest.mark.parametrize(("document", "message"), [
    pytest.param({"client_id": "https://a.example/other"}, "client_id must be the document's",
                 id="other-id"),
    pytest.param({"redirect_uris": []}, "redirect_uris must be a non-empty list",
                 id="no-redirects"),
    pytest.param({"client_secret": "x"}, "client_secret is not allowed", id="secret"),
    pytest.param({"token_endpoint_auth_method": "client_secret_basic"},
                 "token_endpoint_auth_method must be none", id="confidential"),
])
def test_metadata_documents_are_checked(document: dict[str, Any], message: str) -> None:
    url = "https://a.example/client.json"
    good = {"client_id": url, "redirect_uris": ["http://127.0.0.1/cb"]}
    with pytest.raises(_metadata.MetadataError, match=re.escape(message)):
        _metadata.validate(url, __import__("json").dumps({**good, **document}).encode())


@pytest.mark.parametrize(("url", "message"), [
    pytest.param("http://a.example/c.json", "must be an https URL", id="http"),
    pytest.param("https://a.example/", "must have a path", id="root"),
    pytest.param("https://u:p@a.example/c", "must not carry credentials", id="credentials"),
    pytest.param("https://a.example/x/../c", "without . or .. segments", id="dots"),
])
def test_metadata_urls_are_checked(url: str, message: str) -> None:
    with pytest.raises(_metadata.MetadataError, match=re.escape(message)):
        _metadata.check_url(url)


async def test_a_confidential_client_authenticates_at_the_token_endpoint(gw: Gateway) -> None:
    async with httpx.AsyncClient() as http:
        registered = (await register(http, gw,
                                     token_endpoint_auth_method="client_secret_basic")).json()
        client_id, secret = registered["client_id"], registered["client_secret"]
        form = {"grant_type": "authorization_code", "redirect_uri": CALLBACK,
                "code_verifier": VERIFIER}
        token_url = f"{gw.base_url}/ws/eng/oauth/token"
        code = await code_for(http, gw, client_id)
        wrong = await http.post(token_url, data={**form, "code": code},
                                auth=(client_id, secret + "x"))
        assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
        code = await code_for(http, gw, client_id)
        r = await http.post(token_url, data={**form, "code": code}, auth=(client_id, secret))
        assert r.status_code == 200, r.text
        assert r.json()["access_token"].startswith("mat_")


async def test_metadata_documents_are_fetched_once_and_size_limited(tmp_path: Any) -> None:
    from oauthtools import TestCA, document_server

    ca = TestCA(tmp_path)
    fetcher = _metadata.Fetcher(allow_private=True, ca_file=str(ca.ca_file))
    with document_server(ca, {"redirect_uris": [CALLBACK], "client_name": "Small"}) as small:
        first = await fetcher.get(small.url)
        again = await fetcher.get(small.url)
        assert first is again and first.metadata["client_name"] == "Small"
        assert small.fetches == ["/client.json"]  # cached
    big = {"redirect_uris": [CALLBACK], "client_name": "x" * (_metadata.MAX_BYTES + 1)}
    with (document_server(ca, big) as large,
          pytest.raises(_metadata.MetadataError, match="larger than 65536 bytes")):
        await fetcher.get(large.url)
    strict = _metadata.Fetcher(ca_file=str(ca.ca_file))  # public addresses only
    with pytest.raises(_metadata.MetadataError, match="non-public address"):
        await strict.get("https://127.0.0.1:9/client.json")
