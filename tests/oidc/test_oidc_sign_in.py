"""Sign-in through a real OpenID Connect provider (npm oidc-provider): a person types their email
at the provider in headless Chromium, and the relying party (mcpyard.gateway.oauth.oidc) returns
the verified claim; codes, verifiers, nonces, audiences and issuers that do not hold are
refused, and the client secret never shows in an error."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from oidctools import CALLBACK_PATH, Provider, browser, provider, sign_in_at_provider

from mcpyard.gateway.oauth import oidc

pytestmark = pytest.mark.anyio

REDIRECT = f"http://127.0.0.1:8931{CALLBACK_PATH}"
"""The gateway's callback: never reached (Chromium hands the query to the test)."""

Sent = list[tuple[oidc.HttpRequest, oidc.HttpResponse]]


def rp_for(p: Provider, client: str | None = None, send: oidc.Send | None = None,
           **kw: Any) -> oidc.OidcSignIn:
    client = client or p.client_id
    return oidc.OidcSignIn(p.issuer, client, p.secrets[client],
                           send=send or oidc.aiohttp_sender(p.tls()), **kw)


def recording(p: Provider, sent: Sent, id_token: str | None = None) -> oidc.Send:
    """The real transport, remembering each exchange; with ``id_token``, the token endpoint's
    ID token is replaced by that one (a token a provider really signed, for someone else)."""
    real = oidc.aiohttp_sender(p.tls())

    async def send(request: oidc.HttpRequest) -> oidc.HttpResponse:
        response = await real(request)
        if id_token is not None and request.url.endswith("/token") and response.status == 200:
            body = json.loads(response.body) | {"id_token": id_token}
            response = oidc.HttpResponse(response.status, json.dumps(body).encode())
        sent.append((request, response))
        return response
    return send


async def signed_in(rp: oidc.OidcSignIn, login: str,
                    attempt: oidc.Attempt | None = None) -> tuple[oidc.Attempt, dict[str, str]]:
    """``login`` signs in at ``rp``'s provider; the attempt and the callback's query."""
    attempt = attempt or oidc.new_attempt()
    url = await rp.authorization_url(REDIRECT, attempt.state, attempt.nonce,
                                     attempt.code_verifier)
    async with browser() as b:
        query = await sign_in_at_provider(await b.new_page(), url, login)
    assert query["state"] == attempt.state
    return attempt, query


async def identity(rp: oidc.OidcSignIn, attempt: oidc.Attempt, query: dict[str, str], *,
                   nonce: str | None = None, verifier: str | None = None) -> str:
    return await rp.identity(query["code"], REDIRECT, nonce or attempt.nonce,
                             verifier or attempt.code_verifier, response_iss=query["iss"])


def clean(exc: BaseException, p: Provider) -> str:
    """The error's message, checked free of every client secret."""
    for secret in p.secrets.values():
        assert secret not in str(exc) and secret not in repr(exc)
    return str(exc)


async def test_a_person_signs_in_by_email_and_the_code_works_once(idp: Provider) -> None:
    sent: Sent = []
    rp = rp_for(idp, send=recording(idp, sent))
    attempt, query = await signed_in(rp, "ada@example.com")
    assert await identity(rp, attempt, query) == "ada@example.com"
    # This provider serves the email at userinfo only (the code flow's default).
    assert [r.url.rsplit("/", 1)[1] for r, _ in sent] == [
        "openid-configuration", "token", "jwks", "me"]
    assert all(idp.client_secret not in r.url + (r.body or "") for r, _ in sent)
    with pytest.raises(oidc.OidcRefused, match=r"token endpoint refused the code \(400") as e:
        await identity(rp, attempt, query)
    clean(e.value, idp)
    assert idp.client_secret not in repr(rp)
    # Discovery and keys were fetched once for both exchanges (cached).
    names = [r.url.rsplit("/", 1)[1] for r, _ in sent]
    assert names.count("openid-configuration") == 1 and names.count("jwks") == 1


async def test_relying_parties_are_kept_per_registration() -> None:
    parties = oidc.RelyingParties()
    first = parties.get("https://login.example.com", "mcpyard", "secret-1", "email")
    assert parties.get("https://login.example.com", "mcpyard", "secret-1", "email") is first
    rotated = parties.get("https://login.example.com", "mcpyard", "secret-2", "email")
    assert rotated is not first  # a new secret in git takes effect at once
    assert "secret-2" not in repr(rotated) and "secret-2" not in repr(vars(parties))
    for n in range(oidc.MAX_PARTIES + 5):
        parties.get(f"https://login{n}.example.com", "mcpyard", "s", "email")
    assert len(vars(parties)["_parties"]) == oidc.MAX_PARTIES


async def test_claims_in_the_id_token_need_no_userinfo(tmp_path: Path) -> None:
    with provider(tmp_path, id_token_claims=True) as p:
        sent: Sent = []
        rp = rp_for(p, send=recording(p, sent))
        attempt, query = await signed_in(rp, "bob@example.com")
        assert await identity(rp, attempt, query) == "bob@example.com"
        assert [r.url.rsplit("/", 1)[1] for r, _ in sent] == [
            "openid-configuration", "token", "jwks"]


async def test_a_wrong_nonce_verifier_or_iss_or_an_expired_token_is_refused(
        idp: Provider) -> None:
    rp = rp_for(idp)
    attempt, query = await signed_in(rp, "ada@example.com")
    with pytest.raises(oidc.OidcRefused, match="callback names another issuer"):
        await rp.identity(query["code"], REDIRECT, attempt.nonce, attempt.code_verifier,
                          response_iss="http://127.0.0.1:1")
    with pytest.raises(oidc.OidcRefused, match="lacks the iss parameter"):
        await rp.identity(query["code"], REDIRECT, attempt.nonce, attempt.code_verifier)
    with pytest.raises(oidc.OidcRefused, match="token endpoint refused the code") as e:
        await identity(rp, attempt, query, verifier=oidc.new_attempt().code_verifier)
    clean(e.value, idp)

    attempt, query = await signed_in(rp, "ada@example.com")
    with pytest.raises(oidc.OidcRefused, match="ID token refused: Invalid claim: 'nonce'") as e:
        await identity(rp, attempt, query, nonce="another-nonce")
    clean(e.value, idp)

    later = rp_for(idp, clock=lambda: time.time() + 7200)  # ID tokens live 1 h
    attempt, query = await signed_in(later, "ada@example.com")
    with pytest.raises(oidc.OidcRefused, match="ID token refused: The token is expired"):
        await identity(later, attempt, query)


async def test_an_id_token_for_another_client_is_refused(idp: Provider) -> None:
    # A token the provider really signed, for client "other", with this attempt's nonce.
    sent: Sent = []
    other = rp_for(idp, "other", send=recording(idp, sent))
    attempt, query = await signed_in(other, "ada@example.com")
    assert await identity(other, attempt, query) == "ada@example.com"
    foreign = json.loads(next(resp.body for r, resp in sent if r.url.endswith("/token")))

    rp = rp_for(idp, send=recording(idp, [], id_token=foreign["id_token"]))
    again, query = await signed_in(rp, "ada@example.com", oidc.Attempt(
        oidc.new_attempt().state, attempt.nonce, oidc.new_attempt().code_verifier))
    with pytest.raises(oidc.OidcRefused, match="ID token refused: Invalid claim: 'aud'") as e:
        await identity(rp, again, query)
    clean(e.value, idp)


async def test_an_id_token_from_another_issuer_is_refused(idp: Provider, tmp_path: Path) -> None:
    # Another provider signing with the same key: only the issuer tells its tokens apart.
    attempt = oidc.new_attempt()
    sent: Sent = []
    with provider(tmp_path, keys=idp.keys) as twin:
        impostor = rp_for(twin, send=recording(twin, sent))
        _, query = await signed_in(impostor, "ada@example.com", attempt)
        assert await identity(impostor, attempt, query) == "ada@example.com"
    foreign = json.loads(next(resp.body for r, resp in sent if r.url.endswith("/token")))

    rp = rp_for(idp, send=recording(idp, [], id_token=foreign["id_token"]))
    again = oidc.Attempt(oidc.new_attempt().state, attempt.nonce, attempt.code_verifier)
    _, query = await signed_in(rp, "ada@example.com", again)
    with pytest.raises(oidc.OidcRefused, match="ID token refused: Invalid claim: 'iss'") as e:
        await identity(rp, again, query)
    clean(e.value, idp)


async def test_an_id_token_macd_with_the_client_secret_is_refused(tmp_path: Path) -> None:
    # Whoever holds the client secret could forge such a token: only the provider's keys count.
    with provider(tmp_path, client_metadata={"id_token_signed_response_alg": "HS256"}) as p:
        rp = rp_for(p)
        assert "HS256" in (await rp.metadata())["id_token_signing_alg_values_supported"]
        attempt, query = await signed_in(rp, "ada@example.com")
        with pytest.raises(oidc.OidcRefused, match="ID token refused: unsupported_algorithm"):
            await identity(rp, attempt, query)


async def test_an_account_without_the_claim_is_refused_naming_it(idp: Provider) -> None:
    rp = rp_for(idp)
    attempt, query = await signed_in(rp, "ada")  # an account with no email address
    with pytest.raises(oidc.OidcRefused, match="no 'email' claim for this account") as e:
        await identity(rp, attempt, query)
    clean(e.value, idp)


async def test_a_provider_that_is_not_the_issuer_declared_is_unavailable(idp: Provider) -> None:
    port = idp.issuer.rsplit(":", 1)[1]
    send = oidc.aiohttp_sender(idp.tls())
    rp = oidc.OidcSignIn(f"https://localhost:{port}", idp.client_id, idp.client_secret,
                         send=send)
    with pytest.raises(oidc.OidcUnavailable, match=r"names issuer 'https://127\.0\.0\.1:") as e:
        await rp.authorization_url(REDIRECT, "s", "n", "v" * 43)
    clean(e.value, idp)
    with pytest.raises(oidc.OidcUnavailable, match="issuer must be an https URL"):
        oidc.OidcSignIn(f"http://127.0.0.1:{port}", idp.client_id, idp.client_secret)
    down = oidc.OidcSignIn("https://127.0.0.1:1", idp.client_id, idp.client_secret, send=send)
    with pytest.raises(oidc.OidcUnavailable, match="discovery not reachable"):
        await down.authorization_url(REDIRECT, "s", "n", "v" * 43)
    untrusted = oidc.OidcSignIn(idp.issuer, idp.client_id, idp.client_secret)  # system CAs
    with pytest.raises(oidc.OidcUnavailable, match="discovery not reachable"):
        await untrusted.authorization_url(REDIRECT, "s", "n", "v" * 43)
