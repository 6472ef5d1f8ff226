"""A small client over the official ``kubernetes`` client: get, list, create, patch, delete.

Objects travel as plain dicts (the compiler's children are dicts, and the operator compares
them with what the cluster holds), so requests go through the generated client's transport
(``ApiClient.call_api``: authentication, TLS, connection pooling) without its model classes.
Calls are blocking; the async methods run them in a worker thread so that kopf's event loop
never waits on the network.

Owned objects are written with server-side apply (:meth:`Client.apply`,
``application/apply-patch+yaml``, ``force``): the API server merges the fields mcpyard applies
with those kubectl or other controllers set, by field manager (``metadata.managedFields``), and
removes a field mcpyard applied before and applies no more. Other writes (status, a finalizer,
a label of kopf's) are JSON merge patches (``application/merge-patch+json``). Every write names
the field manager ``mcpyard``. Every verb used here is listed in
:data:`mcpyard.kube.RBAC_RULES`.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import json
import logging
import ssl
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from typing import TypeAlias

import kubernetes.client
import kubernetes.config
import kubernetes.watch.watch
import urllib3
import urllib3.exceptions

from mcpyard import __version__, errors, jsontypes
from mcpyard.errors import ApiError as ApiError
from mcpyard.jsontypes import JSONLike, JSONObject, JSONValue

MERGE_PATCH = "application/merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
FIELD_MANAGER = "mcpyard"
"""The field manager of every write (``metadata.managedFields``), whatever the user agent."""
log = logging.getLogger("mcpyard.kube")

# (apiVersion, kind) -> plural: the kinds mcpyard reads or writes.
PLURALS: dict[tuple[str, str], str] = {
    ("v1", "Secret"): "secrets",
    ("v1", "ConfigMap"): "configmaps",
    ("v1", "Service"): "services",
    ("apps/v1", "Deployment"): "deployments",
    ("mcpyard.io/v1alpha1", "Workspace"): "workspaces",
    ("mcpyard.io/v1alpha1", "MCPServer"): "mcpservers",
    ("mcpyard.io/v1alpha1", "Member"): "members",
    ("mcpyard.io/v1alpha1", "EncryptedSecret"): "encryptedsecrets",
    ("kopf.dev/v1", "ClusterKopfPeering"): "clusterkopfpeerings",
    ("kopf.dev/v1", "KopfPeering"): "kopfpeerings",
    # Read for the source revision of what they applied (mcpyard.operator._source).
    ("kustomize.toolkit.fluxcd.io/v1", "Kustomization"): "kustomizations",
    ("argoproj.io/v1alpha1", "Application"): "applications",
}


KubeObject: TypeAlias = JSONObject
"""A Kubernetes object as the API server sends it (decoded JSON), or as mcpyard builds one to
apply. Readers narrow what they read (:mod:`mcpyard.jsontypes`: ``text(obj, "metadata",
"name")``)."""
Body: TypeAlias = Mapping[str, JSONLike]
"""What is sent and only encoded: a merge patch, a status."""


@dataclass(frozen=True)
class Connection:
    """Where and how to reach the API server; kopf logs in with the same facts."""

    server: str
    token: str | None = None
    ca_path: str | None = None
    insecure: bool = False
    certificate_path: str | None = None
    private_key_path: str | None = None


def path(
    api_version: str,
    kind: str,
    namespace: str | None,
    name: str | None = None,
    subresource: str | None = None,
) -> str:
    """The REST path of a kind, a namespace's collection, or one object (and subresource)."""
    plural = PLURALS[(api_version, kind)]
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    out = f"{base}/namespaces/{namespace}/{plural}" if namespace else f"{base}/{plural}"
    if name is not None:
        out += f"/{name}"
    if subresource is not None:
        out += f"/{subresource}"
    return out


class Client:
    """The Kubernetes API as mcpyard uses it. Create it once (kopf's memo) and close it."""

    def __init__(
        self,
        api_client: kubernetes.client.ApiClient,
        *,
        timeout: float = 30,
        user_agent: str = f"mcpyard/{__version__}",
        field_manager: str = FIELD_MANAGER,
    ) -> None:
        self._api = api_client
        self._api.user_agent = user_agent
        self._timeout = timeout
        self._manager = {"fieldManager": field_manager}

    @classmethod
    def from_environment(
        cls,
        *,
        kubeconfig: str | None = None,
        context: str | None = None,
        user_agent: str = f"mcpyard/{__version__}",
    ) -> Client:
        """In a pod: the service account; elsewhere: the kubeconfig (``KUBECONFIG``)."""
        configuration = kubernetes.client.Configuration()
        if kubeconfig is None and context is None:
            try:
                kubernetes.config.load_incluster_config(  # type: ignore[no-untyped-call]
                    client_configuration=configuration
                )
                return cls(kubernetes.client.ApiClient(configuration), user_agent=user_agent)
            except kubernetes.config.ConfigException:
                pass
        try:
            kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig, context=context, client_configuration=configuration
            )
        except (kubernetes.config.ConfigException, OSError) as exc:
            raise errors.DependencyNotReady(
                f"no Kubernetes credentials: not in a pod, and no usable kubeconfig ({exc})"
            ) from None
        return cls(kubernetes.client.ApiClient(configuration), user_agent=user_agent)

    @classmethod
    def for_server(
        cls, server: str, *, token: str | None = None, user_agent: str = f"mcpyard/{__version__}"
    ) -> Client:
        """A client for an explicit API server URL (tests, port-forwards)."""
        configuration = kubernetes.client.Configuration(host=server)
        if token:
            configuration.api_key = {"BearerToken": token}
            configuration.api_key_prefix = {"BearerToken": "Bearer"}
        return cls(kubernetes.client.ApiClient(configuration), user_agent=user_agent)

    @property
    def connection(self) -> Connection:
        c = self._api.configuration
        header = c.get_api_key_with_prefix("BearerToken", alias="authorization")
        token = header.split(" ", 1)[-1] if header else None
        return Connection(
            server=str(c.host),
            token=token,
            ca_path=c.ssl_ca_cert,
            insecure=not c.verify_ssl,
            certificate_path=c.cert_file,
            private_key_path=c.key_file,
        )

    def close(self) -> None:
        self._api.close()  # type: ignore[no-untyped-call]

    # -- the blocking core ------------------------------------------------------------------

    def request(
        self,
        method: str,
        url: str,
        body: object = None,
        *,
        content_type: str | None = None,
        query: Mapping[str, str] | None = None,
    ) -> KubeObject | None:
        """One request; the decoded JSON answer, None for 404, ApiError otherwise."""
        return self._call(method, url, body, content_type=content_type, query=query)[1]

    def _call(
        self,
        method: str,
        url: str,
        body: object = None,
        *,
        content_type: str | None = None,
        query: Mapping[str, str] | None = None,
    ) -> tuple[int, KubeObject | None]:
        """:meth:`request`, with the HTTP status of the answer."""
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type or "application/json"
        method_, full_url, headers, body_, _ = self._api.param_serialize(
            method=method,
            resource_path=url,
            query_params=list((query or {}).items()),
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            response = self._api.call_api(
                method_, full_url, header_params=headers, body=body_, _request_timeout=self._timeout
            )
            response.read()  # type: ignore[no-untyped-call]
        except (
            OSError,
            ssl.SSLError,
            urllib3.exceptions.HTTPError,
            kubernetes.client.exceptions.OpenApiException,
        ) as exc:
            raise ApiError(0, f"{method} {url}: {type(exc).__name__}") from None
        status = int(response.status)
        if status == 404:
            return status, None
        text = (response.data or b"").decode("utf-8", "replace")
        if not 200 <= status < 300:
            raise ApiError(status, f"{method} {url}: HTTP {status}: {_message(text)}")
        try:
            data: JSONValue = json.loads(text) if text else {}
        except ValueError:
            raise ApiError(status, f"{method} {url}: the answer is not JSON") from None
        return status, data if isinstance(data, dict) else {}

    def get_sync(
        self, api_version: str, kind: str, namespace: str, name: str
    ) -> KubeObject | None:
        return self.request("GET", path(api_version, kind, namespace, name))

    def list_sync(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> list[KubeObject]:
        return self.list_versioned_sync(api_version, kind, namespace, labels)[0]

    def list_versioned_sync(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> tuple[list[KubeObject], str | None]:
        """The items and the list's resourceVersion (where a watch of the kind resumes)."""
        data = self.request("GET", path(api_version, kind, namespace), query=_selector(labels))
        items = [i for i in jsontypes.objects(data, "items") if _has(i, labels)]
        return items, jsontypes.text(data, "metadata", "resourceVersion") or None

    def watch(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        labels: Mapping[str, str] | None = None,
        resource_version: str | None = None,
        timeout_seconds: int = 300,
    ) -> Watch:
        """A watch of a collection from ``resource_version``: iterate it, with ``for``
        (blocking) or ``async for`` (see :class:`Watch`); nothing is sent before that."""
        query = {
            **(_selector(labels) or {}),
            "watch": "true",
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(int(timeout_seconds)),
        }
        if resource_version:
            query["resourceVersion"] = resource_version
        return Watch(self, path(api_version, kind, namespace), query, labels)

    def create_sync(self, obj: KubeObject) -> KubeObject:
        url = _path_of(obj, named=False)
        created = self.request("POST", url, dict(obj), query=self._manager)
        if created is None:
            raise ApiError(404, f"POST {url}: HTTP 404: the namespace or kind does not exist")
        return created

    def patch_sync(
        self,
        api_version: str,
        kind: str,
        namespace: str,
        name: str,
        patch: Body,
        *,
        subresource: str | None = None,
    ) -> KubeObject | None:
        """A merge patch; None when the object does not exist."""
        return self.request(
            "PATCH",
            path(api_version, kind, namespace, name, subresource),
            dict(patch),
            content_type=MERGE_PATCH,
            query=self._manager,
        )

    def apply_sync(self, obj: KubeObject) -> tuple[bool, KubeObject]:
        """Server-side apply of ``obj`` (the whole desired object) as the field manager, with
        ``force``: a field another manager changed is taken back. (created, the object)."""
        url = _path_of(obj, named=True)
        # JSON is YAML: the body goes as a string, so that no client layer re-encodes it.
        status, applied = self._call(
            "PATCH",
            url,
            json.dumps(dict(obj)),
            content_type=APPLY_PATCH,
            query={**self._manager, "force": "true"},
        )
        if applied is None:
            raise ApiError(404, f"PATCH {url}: HTTP 404: the namespace or kind does not exist")
        return status == 201, applied

    def delete_sync(self, api_version: str, kind: str, namespace: str, name: str) -> bool:
        """Delete (background propagation); False when it was not there."""
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background"}
        return self.request("DELETE", path(api_version, kind, namespace, name), body) is not None

    # -- async facades (worker threads) -----------------------------------------------------

    async def get(
        self, api_version: str, kind: str, namespace: str, name: str
    ) -> KubeObject | None:
        return await asyncio.to_thread(self.get_sync, api_version, kind, namespace, name)

    async def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> list[KubeObject]:
        return await asyncio.to_thread(self.list_sync, api_version, kind, namespace, labels)

    async def list_versioned(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> tuple[builtins.list[KubeObject], str | None]:
        return await asyncio.to_thread(
            self.list_versioned_sync, api_version, kind, namespace, labels
        )

    async def create(self, obj: KubeObject) -> KubeObject:
        return await asyncio.to_thread(self.create_sync, obj)

    async def patch(
        self,
        api_version: str,
        kind: str,
        namespace: str,
        name: str,
        patch: Body,
        *,
        subresource: str | None = None,
    ) -> KubeObject | None:
        return await asyncio.to_thread(
            self.patch_sync, api_version, kind, namespace, name, patch, subresource=subresource
        )

    async def apply(self, obj: KubeObject) -> tuple[bool, KubeObject]:
        return await asyncio.to_thread(self.apply_sync, obj)

    async def delete(self, api_version: str, kind: str, namespace: str, name: str) -> bool:
        return await asyncio.to_thread(self.delete_sync, api_version, kind, namespace, name)

    async def patch_status(
        self, api_version: str, kind: str, namespace: str, name: str, status: Body
    ) -> bool:
        """Merge-patch ``status`` through the status subresource; False when gone."""
        done = await self.patch(
            api_version, kind, namespace, name, {"status": dict(status)}, subresource="status"
        )
        return done is not None


class Watch:
    """One watch request: iterate for ``(type, object)`` events (ADDED, MODIFIED, DELETED,
    BOOKMARK); :meth:`stop` ends it from another thread. ``async for`` reads the events in a
    thread of its own (a watch blocks for minutes) and hands them to the event loop; leaving
    that loop ends the request.

    The stream ends when the API server closes it (``timeoutSeconds``); an ERROR event raises
    :class:`ApiError` with its code, 410 when ``resource_version`` is too old (list again).
    """

    def __init__(
        self,
        client: Client,
        url: str,
        query: Mapping[str, str],
        labels: Mapping[str, str] | None,
    ) -> None:
        self._client = client
        self._url = url
        self._query = dict(query)
        self._labels = labels
        self._response: urllib3.HTTPResponse | None = None
        self._stopped = threading.Event()

    def __iter__(self) -> Iterator[tuple[str, KubeObject]]:
        api = self._client._api
        method, full_url, headers, body, _ = api.param_serialize(
            method="GET",
            resource_path=self._url,
            query_params=list(self._query.items()),
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        # Connect within the client's timeout; then wait for events as long as the server
        # keeps the watch open (timeoutSeconds), plus a margin for a silent dead peer.
        read_timeout = float(self._query.get("timeoutSeconds", "300")) + 30
        if self._stopped.is_set():
            return
        try:
            rest = api.call_api(
                method,
                full_url,
                header_params=headers,
                body=body,
                _request_timeout=(self._client._timeout, read_timeout),
            )
        except (
            OSError,
            ssl.SSLError,
            urllib3.exceptions.HTTPError,
            kubernetes.client.exceptions.OpenApiException,
        ) as exc:
            raise ApiError(0, f"GET {self._url} (watch): {type(exc).__name__}") from None
        response: urllib3.HTTPResponse = rest.response  # untyped in the kubernetes client
        self._response = response
        ended = False  # the server ended the stream: the connection may serve another request
        try:
            status = int(response.status)
            if not 200 <= status < 300:
                text = response.read().decode("utf-8", "replace")
                raise ApiError(status, f"GET {self._url} (watch): HTTP {status}: {_message(text)}")
            lines = kubernetes.watch.watch.iter_resp_lines(response)  # type: ignore[no-untyped-call]
            for line in lines:
                if self._stopped.is_set():
                    return
                event = _event(line, self._url)
                if event is None:
                    continue
                kind, obj = event
                if kind in ("ADDED", "MODIFIED") and not _has(obj, self._labels):
                    kind = "DELETED"  # no longer selected: gone, as far as the watcher knows
                yield kind, obj
            ended = True
        except (OSError, ssl.SSLError, urllib3.exceptions.HTTPError) as exc:
            if self._stopped.is_set():
                return
            raise ApiError(0, f"GET {self._url} (watch): {type(exc).__name__}") from None
        finally:
            with contextlib.suppress(Exception):
                if not ended:
                    # Left early (stopped, or the reader broke off): the server still streams
                    # on this connection; pooled, it would hang the next request on it.
                    response.close()
                response.release_conn()

    async def __aiter__(self) -> AsyncIterator[tuple[str, KubeObject]]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, KubeObject] | BaseException | None] = asyncio.Queue()

        def hand(item: tuple[str, KubeObject] | BaseException | None) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed while the thread read
                loop.call_soon_threadsafe(queue.put_nowait, item)

        def pump() -> None:
            try:
                for event in self:
                    hand(event)
            except BaseException as exc:  # handed to the reader, which raises it
                hand(exc)
            else:
                hand(None)  # the end

        # A daemon thread: a watch blocked on a silent connection never holds up an exit.
        threading.Thread(target=pump, name="mcpyard-watch", daemon=True).start()
        try:
            while True:
                item = await queue.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            self.stop()

    def stop(self) -> None:
        """End the watch: its reader returns at once (the connection is shut down)."""
        self._stopped.set()
        response = self._response
        if response is not None:
            with contextlib.suppress(Exception):
                response.shutdown()


def _path_of(obj: KubeObject, *, named: bool) -> str:
    """The REST path of ``obj`` (of its namespace's collection when not ``named``)."""
    meta = jsontypes.obj(obj, "metadata")
    return path(
        jsontypes.text(obj, "apiVersion"),
        jsontypes.text(obj, "kind"),
        jsontypes.text(meta, "namespace") or None,
        jsontypes.text(meta, "name") if named else None,
    )


def _event(line: str, url: str) -> tuple[str, KubeObject] | None:
    if not line.strip():
        return None
    try:
        data: JSONValue = json.loads(line)
    except ValueError:
        raise ApiError(0, f"GET {url} (watch): an event is not JSON") from None
    kind, obj = jsontypes.at(data, "type"), jsontypes.at(data, "object")
    if not isinstance(obj, dict):
        return None
    if kind == "ERROR":
        code = jsontypes.integer(obj, "code") or 500
        message = jsontypes.text(obj, "message")
        raise ApiError(code, f"GET {url} (watch): HTTP {code}: {message}"[:300])
    return str(kind), obj


def _selector(labels: Mapping[str, str] | None) -> dict[str, str] | None:
    if not labels:
        return None
    return {"labelSelector": ",".join(f"{k}={v}" for k, v in labels.items())}


def _has(obj: KubeObject, labels: Mapping[str, str] | None) -> bool:
    # Filtered here too: a selector is a request, not a promise.
    if not labels:
        return True
    have = jsontypes.obj(obj, "metadata", "labels")
    return all(have.get(k) == v for k, v in labels.items())


def _message(text: str) -> str:
    try:
        data: JSONValue = json.loads(text)
    except ValueError:
        return text[:200]
    message = jsontypes.at(data, "message")
    return str(message)[:300] if message else text[:200]
