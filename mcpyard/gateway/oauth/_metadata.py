"""Client ID Metadata Documents: an HTTPS ``client_id`` is the URL of the client's metadata.

The MCP authorization specification prefers them to dynamic registration: a client names
itself by a URL it controls, and the authorization server fetches the document there. The
fetch is a request the gateway makes on behalf of anyone who can reach it, so it is fenced
(server-side request forgery):

- ``https`` only, a path, no credentials, fragment or dot segments in the URL;
- the host's addresses are resolved first and every one must be a public (global) address;
  the connection then goes to the address checked (the TLS name is still the host's), so a
  second DNS answer cannot point it elsewhere. ``allow_private`` lifts the address rule for
  tests and closed networks;
- no redirects, at most :data:`MAX_BYTES`, :data:`TIMEOUT` seconds in all;
- the document must be a JSON object naming the same ``client_id``, with ``redirect_uris``,
  no ``client_secret``, and ``token_endpoint_auth_method`` ``none`` (it is a public client).

Documents are cached per URL for the ``max-age`` the server sends, between one minute and a day
(an hour without one).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import ssl
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx2 as httpx

from mcpyard.errors import MetadataError as MetadataError

MAX_BYTES = 64 * 1024
TIMEOUT = 5.0
_MAX_AGE = re.compile(r"max-age=(\d+)")
_CACHE_MAX = 1000


def is_metadata_url(client_id: str) -> bool:
    """Whether ``client_id`` is meant as a metadata document URL (not a registered id)."""
    return client_id.startswith("https://")


def check_url(url: str) -> tuple[str, int]:
    """The host and port of a valid client_id URL; MetadataError naming the fault."""
    try:
        parts = urlsplit(url)
        port = parts.port or 443
    except ValueError as exc:
        raise MetadataError(f"client_id is not a valid URL: {exc}") from None
    if parts.scheme != "https" or not parts.hostname:
        raise MetadataError("client_id must be an https URL")
    if parts.username is not None or parts.password is not None:
        raise MetadataError("client_id must not carry credentials")
    if parts.fragment or "#" in url:
        raise MetadataError("client_id must not have a fragment")
    segments = parts.path.split("/")
    if parts.path in ("", "/") or "." in segments or ".." in segments:
        raise MetadataError("client_id must have a path without . or .. segments")
    return parts.hostname, port


@dataclass(frozen=True)
class ClientDocument:
    client_id: str
    metadata: dict[str, Any]


class Fetcher:
    """Fetches and caches metadata documents (see the module docstring for the rules)."""

    def __init__(self, *, allow_private: bool = False, ca_file: str | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.allow_private = allow_private
        self._verify: ssl.SSLContext | bool = (ssl.create_default_context(cafile=ca_file)
                                               if ca_file else True)
        self._transport = transport
        self._cache: dict[str, tuple[float, ClientDocument]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def cached(self, url: str) -> ClientDocument | None:
        """The document :meth:`get` fetched, while it is fresh (blocking code reads this)."""
        entry = self._cache.get(url)
        return entry[1] if entry is not None and entry[0] > time.monotonic() else None

    async def get(self, url: str) -> ClientDocument:
        cached = self._cache.get(url)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        lock = self._locks.setdefault(url, asyncio.Lock())
        async with lock:
            cached = self._cache.get(url)
            if cached is not None and cached[0] > time.monotonic():
                return cached[1]
            try:
                document, ttl = await asyncio.wait_for(self._fetch(url), TIMEOUT)
            except TimeoutError:
                raise MetadataError(f"client metadata {url}: no answer within "
                                    f"{TIMEOUT:g} s") from None
            finally:
                self._locks.pop(url, None)
            if len(self._cache) >= _CACHE_MAX:
                now = time.monotonic()
                self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
                if len(self._cache) >= _CACHE_MAX:
                    self._cache.clear()
            self._cache[url] = (time.monotonic() + ttl, document)
            return document

    async def _addresses(self, host: str, port: int) -> list[str]:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port,
                                                                 type=0, proto=6)
        except OSError as exc:
            raise MetadataError(f"client_id host {host} does not resolve: "
                                f"{exc.strerror or exc}") from None
        addresses = sorted({str(info[4][0]) for info in infos})
        if not addresses:
            raise MetadataError(f"client_id host {host} does not resolve")
        if not self.allow_private:
            for address in addresses:
                ip = ipaddress.ip_address(address.split("%", 1)[0])
                if not ip.is_global or ip.is_multicast:
                    raise MetadataError(f"client_id host {host} resolves to a non-public "
                                        f"address ({address}); refused")
        return addresses

    async def _fetch(self, url: str) -> tuple[ClientDocument, float]:
        host, port = check_url(url)
        address = (await self._addresses(host, port))[0]
        parts = urlsplit(url)
        netloc = f"[{address}]" if ":" in address else address
        pinned = parts._replace(netloc=f"{netloc}:{port}").geturl()
        async with httpx.AsyncClient(verify=self._verify, follow_redirects=False,
                                     transport=self._transport, trust_env=False,
                                     timeout=TIMEOUT) as client:
            try:
                async with client.stream("GET", pinned, headers={
                        "Host": parts.netloc, "Accept": "application/json"},
                        extensions={"sni_hostname": host}) as response:
                    if response.status_code != 200:
                        raise MetadataError(f"client metadata {url}: HTTP "
                                            f"{response.status_code}")
                    body = b""
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) > MAX_BYTES:
                            raise MetadataError(f"client metadata {url}: larger than "
                                                f"{MAX_BYTES} bytes")
                    cache_control = response.headers.get("cache-control", "")
            except httpx.HTTPError as exc:
                raise MetadataError(f"client metadata {url}: {type(exc).__name__}: "
                                    f"{str(exc)[:200]}") from None
        return validate(url, body), _ttl(cache_control)


def _ttl(cache_control: str) -> float:
    if "no-store" in cache_control or "no-cache" in cache_control:
        return 60.0
    found = _MAX_AGE.search(cache_control)
    return min(86400.0, max(60.0, float(found.group(1)))) if found else 3600.0


def validate(url: str, body: bytes) -> ClientDocument:
    """The metadata of a fetched document, or MetadataError naming the field at fault."""
    import json

    try:
        data = json.loads(body)
    except ValueError:
        raise MetadataError(f"client metadata {url}: not JSON") from None
    if not isinstance(data, dict):
        raise MetadataError(f"client metadata {url}: not a JSON object")
    if data.get("client_id") != url:
        raise MetadataError(f"client metadata {url}: client_id must be the document's own "
                            "URL")
    if "client_secret" in data or "client_secret_expires_at" in data:
        raise MetadataError(f"client metadata {url}: client_secret is not allowed")
    method = data.get("token_endpoint_auth_method", "none")
    if method != "none":
        raise MetadataError(f"client metadata {url}: token_endpoint_auth_method must be "
                            f"none, got {method!r}")
    uris = data.get("redirect_uris")
    if (not isinstance(uris, list) or not uris
            or not all(isinstance(u, str) and u for u in uris)):
        raise MetadataError(f"client metadata {url}: redirect_uris must be a non-empty list")
    for key in ("client_name", "client_uri", "logo_uri"):
        if key in data and not isinstance(data[key], str):
            raise MetadataError(f"client metadata {url}: {key} must be a string")
    return ClientDocument(url, data)
