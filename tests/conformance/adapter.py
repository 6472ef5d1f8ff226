"""A reverse proxy that lets the MCP conformance suite talk to a gateway workspace.

The suite speaks to one plain MCP server: it sends no bearer token and expects the
scenario fixture's own names (`test_simple_text`). The gateway wants a member token and
serves every upstream's names namespaced (`fixture__test_simple_text`). This proxy sits
between them and changes only that:

- client -> gateway: adds `Authorization: Bearer <token>`; prefixes the names in
  `tools/call`, `prompts/get` and `completion/complete` (`ref/prompt`); maps resource URIs
  (`resources/read|subscribe|unsubscribe`, `ref/resource`) with a pluggable `UriMapping`;
  rewrites the `Mcp-Name` header the same way as the body it describes;
- gateway -> client: strips the prefix from `tools/list` / `prompts/list` names and maps
  URIs back (`resources/list`, `resources/templates/list`, `resources/read`, embedded
  resources in tool and prompt results, `notifications/resources/updated`), in JSON
  replies and in SSE streams, event by event, as they arrive.

Everything else passes untouched: status codes, `Mcp-Session-Id`, `MCP-Protocol-Version`,
`Mcp-Method`, `Mcp-Param-*`, `Last-Event-ID`, `Accept`, `Origin` and `Host` (so the
gateway's DNS-rebinding check sees what the suite sent), GET streams and DELETE. A message
the mapping leaves unchanged is forwarded byte for byte, so with `--prefix ''` and no
token the proxy is transparent, which `run.py` checks against the fixture.

    python tests/conformance/adapter.py --upstream http://127.0.0.1:8080/ws/conf/mcp \\
        --token mwt_... --prefix fixture__ --port 3002
"""

from __future__ import annotations

import argparse
import copy
import importlib
import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
from aiohttp import web

# Not forwarded in either direction: they describe one hop, not the message.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "content-encoding",
    }
)
_OWS = re.compile(r"^([ \t]*)(.*?)([ \t]*)$", re.DOTALL)


class UriMapping(Protocol):
    """How a resource URI the client knows becomes the gateway's, and back."""

    def to_gateway(self, uri: str) -> str: ...
    def to_client(self, uri: str) -> str: ...


class IdentityUris:
    """Resource URIs pass unchanged (the gateway's resource namespacing is not decided)."""

    def to_gateway(self, uri: str) -> str:
        return uri

    def to_client(self, uri: str) -> str:
        return uri


@dataclass(frozen=True)
class Names:
    """The renaming the gateway applies to one upstream: a name prefix and a URI mapping."""

    prefix: str = ""
    uris: UriMapping = field(default_factory=IdentityUris)

    def to_gateway(self, name: str) -> str:
        return self.prefix + name

    def to_client(self, name: str) -> str:
        return name.removeprefix(self.prefix) if self.prefix else name

    # -- messages from the client ------------------------------------------------------

    def payload_to_gateway(self, payload: Any) -> None:
        for message in _messages(payload):
            self.request_to_gateway(message)

    def request_to_gateway(self, message: dict[str, Any]) -> None:
        method, params = message.get("method"), message.get("params")
        if not isinstance(params, dict):
            return
        if method in ("tools/call", "prompts/get") and isinstance(params.get("name"), str):
            params["name"] = self.to_gateway(params["name"])
        elif method in ("resources/read", "resources/subscribe", "resources/unsubscribe"):
            if isinstance(params.get("uri"), str):
                params["uri"] = self.uris.to_gateway(params["uri"])
        elif method == "completion/complete" and isinstance(params.get("ref"), dict):
            ref = params["ref"]
            if ref.get("type") == "ref/prompt" and isinstance(ref.get("name"), str):
                ref["name"] = self.to_gateway(ref["name"])
            elif ref.get("type") == "ref/resource" and isinstance(ref.get("uri"), str):
                ref["uri"] = self.uris.to_gateway(ref["uri"])

    def mcp_name_to_gateway(self, method: str | None, value: str) -> str:
        lead, core, trail = _OWS.match(value).groups()  # type: ignore[union-attr]
        if method in ("tools/call", "prompts/get"):
            core = self.to_gateway(core)
        elif method in ("resources/read", "resources/subscribe", "resources/unsubscribe"):
            core = self.uris.to_gateway(core)
        return lead + core + trail

    # -- messages from the gateway -----------------------------------------------------

    def payload_to_client(self, payload: Any, methods: dict[str, str]) -> None:
        for message in _messages(payload):
            self.message_to_client(message, methods)

    def message_to_client(self, message: dict[str, Any], methods: dict[str, str]) -> None:
        if "method" in message:  # a notification or a server-to-client request
            params = message.get("params")
            updated = message["method"] == "notifications/resources/updated"
            if updated and isinstance(params, dict) and isinstance(params.get("uri"), str):
                params["uri"] = self.uris.to_client(params["uri"])
            return
        error = message.get("error")
        if isinstance(error, dict) and isinstance(error.get("data"), dict):
            # A "resource not found" names the URI the gateway was asked for (SEP-2164).
            data = error["data"]
            if isinstance(data.get("uri"), str):
                data["uri"] = self.uris.to_client(data["uri"])
        result = message.get("result")
        if not isinstance(result, dict):
            return
        method = methods.get(_id_key(message.get("id")))
        if method in ("tools/list", "prompts/list"):
            for item in result.get("tools" if method == "tools/list" else "prompts") or ():
                if isinstance(item, dict) and isinstance(item.get("name"), str):
                    item["name"] = self.to_client(item["name"])
        elif method == "resources/list":
            for item in result.get("resources") or ():
                if isinstance(item, dict) and isinstance(item.get("uri"), str):
                    item["uri"] = self.uris.to_client(item["uri"])
        elif method == "resources/templates/list":
            for item in result.get("resourceTemplates") or ():
                if isinstance(item, dict) and isinstance(item.get("uriTemplate"), str):
                    item["uriTemplate"] = self.uris.to_client(item["uriTemplate"])
        elif method == "resources/read":
            for item in result.get("contents") or ():
                if isinstance(item, dict) and isinstance(item.get("uri"), str):
                    item["uri"] = self.uris.to_client(item["uri"])
        elif method in ("tools/call", "prompts/get"):
            blocks = result.get("content") or ()
            if method == "prompts/get":
                blocks = [
                    m.get("content") for m in result.get("messages") or () if isinstance(m, dict)
                ]
            for block in blocks:
                self._block_to_client(block)

    def _block_to_client(self, block: Any) -> None:
        if not isinstance(block, dict):
            return
        if block.get("type") == "resource" and isinstance(block.get("resource"), dict):
            resource = block["resource"]
            if isinstance(resource.get("uri"), str):
                resource["uri"] = self.uris.to_client(resource["uri"])
        elif block.get("type") == "resource_link" and isinstance(block.get("uri"), str):
            block["uri"] = self.uris.to_client(block["uri"])


def _id_key(request_id: Any) -> str:
    # JSON-RPC ids are strings or numbers; 1 and "1" are different requests.
    return json.dumps(request_id)


def _messages(payload: Any) -> list[dict[str, Any]]:
    if isinstance(payload, dict):
        return [payload]
    if isinstance(payload, list):
        return [m for m in payload if isinstance(m, dict)]
    return []


def _rewrite(raw: bytes, change: Callable[[Any], None]) -> bytes:
    """Apply `change` to the JSON in `raw`; the original bytes when nothing changed."""
    try:
        payload = json.loads(raw)
    except ValueError:
        return raw
    changed = copy.deepcopy(payload)
    change(changed)
    if changed == payload:
        return raw
    return json.dumps(changed, ensure_ascii=False, separators=(",", ":")).encode()


class Adapter:
    """The aiohttp application: one catch-all route that forwards to `upstream`."""

    def __init__(self, upstream: str, token: str | None, names: Names) -> None:
        self.upstream = upstream
        self.token = token
        self.names = names
        self._client: aiohttp.ClientSession | None = None

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.forward)
        app.cleanup_ctx.append(self._client_ctx)
        return app

    async def _client_ctx(self, app: web.Application) -> AsyncIterator[None]:
        # No total timeout: GET streams and long SSE replies stay open as long as the client wants.
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
        self._client = aiohttp.ClientSession(timeout=timeout, auto_decompress=True)
        yield
        await self._client.close()

    async def forward(self, request: web.Request) -> web.StreamResponse:
        assert self._client is not None
        body = await request.read()
        methods: dict[str, str] = {}
        if body:
            try:
                payload = json.loads(body)
            except ValueError:
                payload = None
            for message in _messages(payload):
                if "id" in message and isinstance(message.get("method"), str):
                    methods[_id_key(message["id"])] = message["method"]
            body = _rewrite(body, self.names.payload_to_gateway)

        headers = self._upstream_headers(request, body)
        try:
            upstream = await self._client.request(
                request.method,
                self.upstream,
                headers=headers,
                data=body or None,
                allow_redirects=False,
                skip_auto_headers=("Content-Type", "Accept-Encoding"),
            )
        except aiohttp.ClientError as exc:
            return web.json_response(
                {
                    "jsonrpc": "2.0",
                    "id": None,
                    "error": {"code": -32603, "message": f"adapter: upstream unreachable: {exc}"},
                },
                status=502,
            )
        try:
            return await self._reply(request, upstream, methods)
        finally:
            upstream.release()

    def _upstream_headers(self, request: web.Request, body: bytes) -> dict[str, str]:
        headers: dict[str, str] = {}
        method_header = request.headers.get("Mcp-Method")
        for name, value in request.headers.items():
            lower = name.lower()
            if lower in HOP_BY_HOP or (lower == "authorization" and self.token):
                continue
            if lower == "mcp-name":
                value = self.names.mcp_name_to_gateway(
                    method_header.strip() if method_header else None, value
                )
            headers[name] = value
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if body:
            headers["Content-Length"] = str(len(body))
        return headers

    async def _reply(
        self, request: web.Request, upstream: aiohttp.ClientResponse, methods: dict[str, str]
    ) -> web.StreamResponse:
        headers = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP}
        content_type = upstream.headers.get("Content-Type", "")

        def change(payload: Any) -> None:
            self.names.payload_to_client(payload, methods)

        if content_type.startswith("text/event-stream"):
            response = web.StreamResponse(
                status=upstream.status, reason=upstream.reason, headers=headers
            )
            await response.prepare(request)
            try:
                async for event in _sse_events(upstream.content):
                    await response.write(_rewrite_event(event, change))
                await response.write_eof()
            except (ConnectionResetError, aiohttp.ClientConnectionResetError):
                pass  # the client closed its stream (cancellation); the upstream one closes with it
            return response
        raw = await upstream.read()
        if content_type.startswith("application/json") and raw:
            raw = _rewrite(raw, change)
        return web.Response(
            status=upstream.status, reason=upstream.reason, headers=headers, body=raw
        )


async def _sse_events(stream: aiohttp.StreamReader) -> AsyncIterator[list[bytes]]:
    """The lines of each SSE event (with their line ends), yielded as each event completes."""
    lines: list[bytes] = []
    async for line in stream:
        if line in (b"\n", b"\r\n", b"\r"):
            yield [*lines, line]
            lines = []
        else:
            lines.append(line)
    if lines:
        yield lines


def _rewrite_event(lines: list[bytes], change: Callable[[Any], None]) -> bytes:
    data = [line for line in lines if line.startswith(b"data:")]
    if not data:
        return b"".join(lines)
    raw = b"\n".join(line[5:].removeprefix(b" ").rstrip(b"\r\n") for line in data)
    new = _rewrite(raw, change)
    if new is raw:
        return b"".join(lines)
    out: list[bytes] = []
    for line in lines:
        if line.startswith(b"data:"):
            if not out or not out[-1].startswith(b"data:"):
                out.append(b"data: " + new + b"\n")
        else:
            out.append(line)
    return b"".join(out)


def load_uri_mapping(spec: str | None) -> UriMapping:
    """`module:attribute` naming a UriMapping (an instance, or a class to instantiate)."""
    if not spec:
        return IdentityUris()
    module, _, attribute = spec.partition(":")
    target = getattr(importlib.import_module(module), attribute)
    mapping: UriMapping = target() if isinstance(target, type) else target
    return mapping


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True, help="the MCP endpoint to forward to")
    parser.add_argument("--token", default=None, help="bearer token added to every request")
    parser.add_argument("--prefix", default="", help="name prefix of the upstream, e.g. fixture__")
    parser.add_argument("--uri-mapping", default=None, help="module:attribute of a UriMapping")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3002)
    args = parser.parse_args()
    adapter = Adapter(
        args.upstream, args.token, Names(args.prefix, load_uri_mapping(args.uri_mapping))
    )
    web.run_app(adapter.app(), host=args.host, port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
