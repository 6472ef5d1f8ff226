"""kmock's KubernetesEmulator with the server-side metadata a real API server fills in.

Measured gaps of kmock 0.8 (see shared/notes/testing-without-a-cluster.md), closed here:
namespace from the URL, uid, resourceVersion, generation (bumped only when the spec changes),
creationTimestamp; 201 for a create; 422 (not 500) for a JSON patch whose test fails.

Server-side apply (``application/apply-patch+yaml``), which kmock lacks, is approximated the way
``kubectl apply`` did it before the API server could: an apply of a missing object creates it;
otherwise the fields of the previous apply of that object that the new one no longer has are
removed, and the rest is merged as a JSON merge patch (maps merged, lists replaced). Unlike a
real server, it keeps no ``managedFields``, never answers 409 and ignores ``force``: it stands
for one applier (mcpyard) beside editors who touch other fields. tests/cluster checks the real
thing.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime
import itertools
import json
import threading
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp.web
import jsonpatch
import kmock
from kmock._internal import dicts, enums, rendering

GROUP = "mcpyard.io/v1alpha1"
KINDS = {
    "workspaces": ("Workspace", "workspace", ["mws"]),
    "mcpservers": ("MCPServer", "mcpserver", ["mcps"]),
    "members": ("Member", "member", ["mmb"]),
    "encryptedsecrets": ("EncryptedSecret", "encryptedsecret", ["esec"]),
}


def merge_diff(old: Any, new: Any) -> Any:
    """A JSON merge patch that turns ``old`` into ``new`` (None removes a key)."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return copy.deepcopy(new)
    out: dict[str, Any] = {k: None for k in old if k not in new}
    for k, v in new.items():
        if k not in old:
            out[k] = copy.deepcopy(v)
        elif old[k] != v:
            out[k] = merge_diff(old[k], v)
    return out


def removed(old: Any, new: Any) -> Any:
    """A merge patch removing what ``old`` has and ``new`` lacks (maps only, recursively)."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return {}
    out: dict[str, Any] = {}
    for k, v in old.items():
        if k not in new:
            out[k] = None
        elif (inner := removed(v, new[k])) and isinstance(inner, dict):
            out[k] = inner
    return out


def deep_merge(base: Any, patch: Any) -> Any:
    """``patch`` merged into ``base`` as a JSON merge patch (None removes a key)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(base) if isinstance(base, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = deep_merge(out.get(k), v)
    return out


APPLY_PATCH = "application/apply-patch+yaml"


class Emulator(kmock.KubernetesEmulator):
    _versions = itertools.count(1000)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.applied: dict[tuple[Any, Any, Any], dict[str, Any]] = {}
        """The last server-side apply of each object (what the next one removes from)."""
        self.answered: list[tuple[str, str, int]] = []
        """(method, path, status) of every answered request."""
        self.watch_failures: list[int] = []
        """How the next watches of Secrets end, in order: 200 (at once, as when the watch's
        timeoutSeconds ran out), 410 (an ERROR event: the resourceVersion is too old, which
        kmock never says) or another HTTP status."""
        self.gone: dict[str, asyncio.Event] = {}
        """Plural -> its next watch waits until the event is set, then ends with 410 Gone: a
        watcher away long enough for its resourceVersion to be compacted (with :meth:`cut`)."""
        self.holding: set[str] = set()
        """The plurals whose watch :attr:`gone` holds now (a watcher asked again)."""
        self._cuts: dict[str, int] = {}
        self._watched: dict[str, Any] = {}

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        response = (
            await self._gone_watch(raw_request)
            or self._failed_watch(raw_request)
            or await super().__call__(raw_request)
        )
        self.answered.append((raw_request.method, raw_request.path, response.status))
        return response

    async def cut(self, plural: str) -> None:
        """End every open watch of ``plural`` (as an API server restart or a dropped
        connection does); the watchers reconnect."""
        self._cuts[plural] = self._cuts.get(plural, 0) + 1
        resource = self._watched.get(plural)
        if resource is not None:  # wakes the streams, which see the cut and end
            marker = {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "0"}}}
            await self._buses[resource].put(marker)

    async def _serve_watch(self, request: rendering.Request) -> AsyncIterator[rendering.Payload]:
        assert request.resource is not None
        plural = str(request.resource.plural)
        self._watched[plural] = request.resource
        cuts = self._cuts.get(plural, 0)
        events = super()._serve_watch(request)
        async with contextlib.aclosing(events):  # type: ignore[type-var]
            async for event in events:
                if self._cuts.get(plural, 0) != cuts:
                    return
                yield event

    async def _gone_watch(self, raw: aiohttp.web.BaseRequest) -> aiohttp.web.Response | None:
        plural = raw.path.rsplit("/", 1)[-1]
        if raw.query.get("watch") != "true" or plural not in self.gone:
            return None
        back = self.gone.pop(plural)
        self.holding.add(plural)
        try:
            await back.wait()
        finally:
            self.holding.discard(plural)
        return _gone()

    def _failed_watch(self, raw: aiohttp.web.BaseRequest) -> aiohttp.web.Response | None:
        if not (
            self.watch_failures
            and raw.query.get("watch") == "true"
            and raw.path.endswith("/secrets")
        ):
            return None
        status = self.watch_failures.pop(0)
        if status == 200:  # the watch's timeoutSeconds ran out: an empty stream that ends
            return aiohttp.web.Response(status=200, text="", content_type="application/json")
        if status == 410:
            return _gone()
        failure = {"kind": "Status", "status": "Failure", "code": status, "message": "refused"}
        return aiohttp.web.json_response(failure, status=status)

    def _stamp(self, meta: dict[str, Any], old: dict[str, Any] | None, spec_changed: bool) -> None:
        meta["resourceVersion"] = str(next(self._versions))
        if old is None:
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("generation", 1)
            now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
            meta.setdefault("creationTimestamp", now.isoformat().replace("+00:00", "Z"))
        else:
            for k in ("uid", "creationTimestamp"):
                if k in (old.get("metadata") or {}):
                    meta[k] = old["metadata"][k]
            generation = int((old.get("metadata") or {}).get("generation") or 1)
            meta["generation"] = generation + 1 if spec_changed else generation

    def _current(self, request: rendering.Request) -> dict[str, Any] | None:
        key = (request.resource, request.namespace, request.name)
        if key not in self.objects or self.objects[key].deleted:
            return None
        return copy.deepcopy(dict(self.objects[key].raw))

    async def _handle(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        if (
            request.resource is not None
            and request.action == enums.action.CREATE
            and isinstance(request.data, dict)
        ):
            data = copy.deepcopy(request.data)
            meta = data.setdefault("metadata", {})
            if request.namespace:
                meta["namespace"] = request.namespace
            self._stamp(meta, None, True)
            object.__setattr__(request, "data", data)  # frozen attrs; evolve loses routing
            response = await super()._handle(request)
            if response.status == 200:
                response.set_status(201)
            return response
        applying = (
            request.resource is not None
            and request.action == enums.action.UPDATE
            and request.name is not None
            and request.headers.get("Content-Type", "").startswith(APPLY_PATCH)
            and isinstance(request.data, dict)
        )
        if applying:
            key = (request.resource, request.namespace, request.name)
            async with self._lock:
                old = self._current(request)
            body = copy.deepcopy(request.data)
            if old is None:  # an apply creates what is missing
                self.applied[key] = copy.deepcopy(body)
                object.__setattr__(request, "action", enums.action.CREATE)
                object.__setattr__(request, "data", body)
                return await self._handle(request)
            previous = self.applied.get(key, {})
            self.applied[key] = copy.deepcopy(body)
            patch = deep_merge(removed(previous, body), body)
            object.__setattr__(request, "data", patch)
        if (
            request.resource is not None
            and request.action == enums.action.UPDATE
            and request.name is not None
        ):
            async with self._lock:
                old = self._current(request)
            if old is not None:
                try:
                    new = dict(dicts.patch_dict(copy.deepcopy(old), request.data))
                except (
                    jsonpatch.JsonPatchException,
                    jsonpatch.JsonPointerException,
                    ValueError,
                    TypeError,
                ) as exc:
                    raise kmock.KubernetesError(422, "Invalid", f"patch failed: {exc}") from None
                new.setdefault("metadata", {})
                self._stamp(new["metadata"], old, old.get("spec") != new.get("spec"))
                object.__setattr__(request, "data", merge_diff(old, new))
        return await super()._handle(request)


def _gone() -> aiohttp.web.Response:
    """A watch that ends at once with 410 Gone (an ERROR event, as an API server says it)."""
    gone = {
        "kind": "Status",
        "status": "Failure",
        "reason": "Expired",
        "code": 410,
        "message": "too old resource version",
    }
    body = json.dumps({"type": "ERROR", "object": gone}) + "\n"
    return aiohttp.web.Response(status=200, text=body, content_type="application/json")


class EmulatorThread:
    """The emulator served on loopback from its own thread and event loop."""

    def __init__(self) -> None:
        self.emulator: Emulator | None = None
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="kmock", daemon=True)

    def __enter__(self) -> EmulatorThread:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the emulator did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _run(self) -> None:
        self._loop.run_until_complete(self._main())
        self._loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        async with Emulator() as emulator, kmock.Server(emulator) as server:
            with warnings.catch_warnings():  # kmock 0.8 reads its data the deprecated way
                warnings.simplefilter("ignore", DeprecationWarning)
                emulator.resources.load_bundled()
            for plural, (kind, singular, short) in KINDS.items():
                emulator.resources[f"{GROUP}/{plural}"] = kmock.ResourceInfo(
                    kind=kind,
                    singular=singular,
                    shortnames=set(short),
                    namespaced=True,
                    verbs={"create", "delete", "get", "list", "patch", "update", "watch"},
                    subresources={"status"},
                )
            # kopf's peering kinds (from kopf's peering.yaml), for replicas that coordinate.
            for plural, kind, namespaced in [
                ("clusterkopfpeerings", "ClusterKopfPeering", False),
                ("kopfpeerings", "KopfPeering", True),
            ]:
                emulator.resources[f"kopf.dev/v1/{plural}"] = kmock.ResourceInfo(
                    kind=kind,
                    singular=kind.lower(),
                    namespaced=namespaced,
                    verbs={"create", "delete", "get", "list", "patch", "update", "watch"},
                )
            self.emulator = emulator
            self.url = str(server.url).rstrip("/")
            self._ready.set()
            await self._stop.wait()

    def call(self, fn: Any) -> Any:
        """Run ``fn()`` in the emulator's loop (its state is not thread-safe) and return it."""

        async def wrapper() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(wrapper(), self._loop).result(10)

    def cut(self, plural: str) -> None:
        """End every open watch of ``plural`` (:meth:`Emulator.cut`)."""
        assert self.emulator is not None
        asyncio.run_coroutine_threadsafe(self.emulator.cut(plural), self._loop).result(10)

    def requests(self) -> list[rendering.Request]:
        assert self.emulator is not None
        return self.call(lambda: list(self.emulator._requests))  # type: ignore[union-attr]

    def answered(self) -> list[tuple[str, str, int]]:
        assert self.emulator is not None
        return self.call(lambda: list(self.emulator.answered))  # type: ignore[union-attr]

    def all_versions(self) -> Iterator[tuple[Any, dict[str, Any]]]:
        """Every version of every object the emulator ever held."""
        assert self.emulator is not None
        emulator = self.emulator

        def collect() -> list[tuple[Any, dict[str, Any]]]:
            out = []
            for key, obj in emulator.objects.items():
                for version in obj.history:
                    if version is not None:
                        out.append((key, copy.deepcopy(dict(version.raw))))
            return out

        yield from self.call(collect)
