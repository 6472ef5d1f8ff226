"""Helpers of the OAuth tests (a unique module name: every test folder has a conftest).

- :class:`TestCA`: a certificate authority made for the test, and a server certificate of
  127.0.0.1 it signs (the gateway verifies the client's metadata document server with it);
- :func:`document_server`: a real HTTPS server on 127.0.0.1 serving a client's Client ID
  Metadata Document;
- :func:`serve`: ``mcpyard serve`` as a process on a folder of manifests;
- :class:`Person`: a person at a headless Chromium who signs in and consents on the
  gateway's pages when the SDK's OAuth provider sends them there.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import json
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from gwtools import free_port, wait_port
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthToken
from playwright.async_api import Page


class TestCA:
    """A CA and a certificate of 127.0.0.1 signed by it, as PEM files in ``folder``."""

    __test__ = False

    def __init__(self, folder: Path) -> None:
        now = datetime.datetime.now(datetime.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mcpyard test CA")])
        ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
              .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now - datetime.timedelta(minutes=5))
              .not_valid_after(now + datetime.timedelta(days=1))
              .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
              .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                           crl_sign=True, content_commitment=False,
                                           key_encipherment=False, data_encipherment=False,
                                           key_agreement=False, encipher_only=False,
                                           decipher_only=False), critical=True)
              .sign(ca_key, hashes.SHA256()))
        key = ec.generate_private_key(ec.SECP256R1())
        leaf = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
                .issuer_name(ca_name).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName(
                    [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
                .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                               critical=False)
                .sign(ca_key, hashes.SHA256()))
        self.ca_file = folder / "ca.pem"
        self.cert_file = folder / "server.pem"
        self.key_file = folder / "server.key"
        self.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        self.cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
        self.key_file.write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))


@dataclass
class DocumentServer:
    url: str
    """The client_id: the document's own URL."""
    fetches: list[str] = field(default_factory=list)


@contextlib.contextmanager
def document_server(ca: TestCA, document: dict[str, Any]) -> Iterator[DocumentServer]:
    """Serve ``document`` (its ``client_id`` set to its URL) over HTTPS at /client.json."""
    port = free_port()
    served = DocumentServer(f"https://127.0.0.1:{port}/client.json")
    body = json.dumps({**document, "client_id": served.url}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            served.fetches.append(self.path)
            if self.path != "/client.json":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(ca.cert_file, ca.key_file)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        httpd.shutdown()
        httpd.server_close()


@dataclass
class Served:
    base: str
    port: int
    proc: subprocess.Popen[bytes]
    state_dir: Path

    def url(self, workspace: str) -> str:
        return f"{self.base}/ws/{workspace}/mcp"


@contextlib.contextmanager
def serve(folder: Path, state_dir: Path, *extra: str) -> Iterator[Served]:
    """``mcpyard serve FOLDER`` on a free port, until the context ends (then SIGTERM)."""
    port = free_port()
    log = state_dir.parent / f"serve-{port}.log"
    state_dir.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mcpyard", "serve", str(folder), "--port", str(port),
             "--state-dir", str(state_dir), "--log-level", "info", *extra],
            stdout=out, stderr=subprocess.STDOUT, cwd=state_dir.parent)
        try:
            wait_port(port, proc)
            yield Served(f"http://127.0.0.1:{port}", port, proc, state_dir)
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class Storage:
    """The SDK provider's token storage, in memory (what a client would keep on disk)."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


class Person:
    """Someone at a browser: the SDK provider's redirect handler opens the authorization URL
    in their page; they sign in with ``token`` and press ``decision`` on the consent page.
    The client's loopback callback is answered by the page's route (as a native client's
    listener would), and hands the code to the provider's callback handler."""

    def __init__(self, page: Page, token: str, callback: str, *,
                 decision: str = "Allow") -> None:
        self.page = page
        self.token = token
        self.callback = callback
        self.decision = decision
        self.consent_text = ""
        self.signin_text = ""
        self._result: AuthorizationCodeResult | None = None
        self._arrived = anyio.Event()

    async def open(self) -> None:
        async def arrive(route: Any) -> None:
            query = parse_qs(urlsplit(route.request.url).query)
            self._result = AuthorizationCodeResult(
                code=(query.get("code") or [""])[0], state=(query.get("state") or [None])[0],
                iss=(query.get("iss") or [None])[0])
            self.error = (query.get("error") or [None])[0]
            await route.fulfill(status=200, content_type="text/html",
                                body="<p>Signed in; you can close this window.</p>")
            self._arrived.set()

        await self.page.route(f"{self.callback}**", arrive)

    async def redirect_handler(self, url: str) -> None:
        await self.page.goto(url)
        self.signin_text = await self.page.inner_text("main")
        await self.page.get_by_label("Your member token").fill(self.token)
        await self.page.get_by_role("button", name="Sign in").click()
        try:
            await self.page.wait_for_selector("text=Tools it may call for you")
        except Exception:
            raise AssertionError(f"no consent page at {self.page.url}: "
                                 f"{await self.page.inner_text('body')}") from None
        self.consent_text = await self.page.inner_text("main")
        await self.page.get_by_role("button", name=self.decision, exact=True).click()

    async def callback_handler(self) -> AuthorizationCodeResult:
        with anyio.fail_after(60):
            await self._arrived.wait()
        # The page is done with the callback before anyone uses it again: a goto while its
        # navigation still loads is "interrupted by another navigation" (failed a CI run).
        await self.page.wait_for_url(f"{self.callback}**", wait_until="load", timeout=60_000)
        assert self._result is not None
        return self._result
