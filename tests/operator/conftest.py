"""The operator against kmock's Kubernetes emulator, over real HTTP, kopf and client unmocked.

The emulator runs in its own thread and loop; kopf runs in another, with an explicit registry
(see shared/notes/testing-without-a-cluster.md). Tests talk to the emulator over HTTP with
the same :class:`mcpyard.kube.Client` the operator uses, and poll it under a deadline.
"""

from __future__ import annotations

import base64
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from mcpyard import kube, operator
from tests.conftest import DEMO_AGE_KEY, EXAMPLES
from tests.operator._emulator import EmulatorThread
from tests.proctools import free_port

OPERATOR_NS = "mcpyard"
API = "mcpyard.io/v1alpha1"
PLURALS = ("workspaces", "mcpservers", "members", "encryptedsecrets")
T = TypeVar("T")
TEST_AGENT = "mcpyard-tests"
DEMO_TOKEN = "demo-analytics-key-0001"  # the value of the example EncryptedSecrets


def wait_for(check: Callable[[], T | None], *, timeout: float = 60.0, what: str = "condition") -> T:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (AssertionError, KeyError, TypeError, IndexError) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def example_documents() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(EXAMPLES.rglob("*.yaml")):
        if path.name.startswith("."):
            continue
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


class Records(logging.Handler):
    """Every log record of the process while a test runs, formatted."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:  # a record that cannot be formatted is still a record
            self.lines.append(repr(record.__dict__))


@dataclass
class _Replica:
    stop: threading.Event
    thread: threading.Thread | None = None
    failure: BaseException | None = None


class Cluster:
    """The emulator plus one operator, and helpers to act like `kubectl`."""

    def __init__(self, emulator: EmulatorThread, records: Records) -> None:
        self.emulator = emulator
        self.records = records
        self.client = kube.Client.for_server(emulator.url, user_agent=TEST_AGENT)
        self._replicas: list[_Replica] = []

    # -- kubectl ------------------------------------------------------------------------------

    def create(self, *docs: dict[str, Any]) -> None:
        for doc in docs:
            self.client.create_sync(doc)

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.client.get_sync(api_version, kind, namespace, name)

    def resource(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        found = self.get(API, kind, namespace, name)
        assert found is not None, f"{kind} {namespace}/{name} not found"
        return found

    def patch(
        self,
        kind: str,
        namespace: str,
        name: str,
        patch: dict[str, Any],
        api_version: str = API,
        subresource: str | None = None,
    ) -> None:
        assert (
            self.client.patch_sync(
                api_version, kind, namespace, name, patch, subresource=subresource
            )
            is not None
        )

    def delete(self, kind: str, namespace: str, name: str, api_version: str = API) -> None:
        assert self.client.delete_sync(api_version, kind, namespace, name)

    def condition(self, kind: str, namespace: str, name: str, type_: str) -> dict[str, Any] | None:
        status = self.resource(kind, namespace, name).get("status") or {}
        for cond in status.get("conditions") or []:
            if cond["type"] == type_:
                return dict(cond)
        return None

    def held_conditions(self, kind: str, name: str, type_: str) -> list[tuple[str, str, str]]:
        """(status, reason, message) of the ``type_`` condition in every version of the object
        the API server held, oldest first. With a refresh every second the next one may change
        ``ToolsChanged`` before a poll of the current object sees it: the tests assert what was
        written, not how fast it is read."""
        held = []
        for (_, _, obj), version in self.emulator.all_versions():
            if version.get("kind") != kind or obj != name:
                continue
            for c in (version.get("status") or {}).get("conditions") or []:
                if c["type"] == type_:
                    held.append((c["status"], c["reason"], c["message"]))
        return held

    def ever_true(self, kind: str, name: str, type_: str) -> tuple[str, str, str] | None:
        """The first ``type_`` condition set True in any version the API server held."""
        return next((c for c in self.held_conditions(kind, name, type_) if c[0] == "True"), None)

    def config(self, workspace: str) -> tuple[dict[str, Any], dict[str, str]] | None:
        secret = self.get("v1", "Secret", OPERATOR_NS, f"mcpyard-ws-{workspace}")
        if secret is None:
            return None
        import json

        data = secret["data"]
        return (
            json.loads(base64.b64decode(data["config.json"])),
            json.loads(base64.b64decode(data["secrets.json"])),
        )

    # -- the operator -------------------------------------------------------------------------

    def seed_age_key(self, *keys: str, name: str = "mcpyard-age") -> None:
        entries = keys or (DEMO_AGE_KEY.read_text(),)
        self.create(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": name, "namespace": OPERATOR_NS},
                "data": {
                    f"key{i}.agekey": base64.b64encode(k.encode()).decode()
                    for i, k in enumerate(entries)
                },
            }
        )

    def start(self, *, user_agent: str | None = None, wait: bool = True, **options: Any) -> int:
        """Start one more operator (a replica); its number, for :meth:`stop`. ``wait``: until
        it watches the four kinds (a paused peer never does)."""
        settings = operator.Settings(
            operator_namespace=OPERATOR_NS,
            gateway_url="https://gw.example.com",
            peering=options.pop("peering", None),
            post_events=False,
            cancellation_polling=0.2,
            discovery_interval=options.pop("discovery_interval", 3600),
            resync_interval=options.pop("resync_interval", 3600),
            discovery_timeout=5,
            **options,
        )
        url = self.emulator.url
        agent = user_agent
        replica = _Replica(threading.Event())

        def connect() -> kube.Client:
            if agent is None:
                return kube.Client.for_server(url)
            return kube.Client.for_server(url, user_agent=agent)

        def main() -> None:
            try:
                operator.run(settings, connect, stop_flag=replica.stop)
            except BaseException as exc:  # reported by stop()
                replica.failure = exc

        seen_before = len(self.emulator.requests())
        replica.thread = threading.Thread(target=main, name="kopf", daemon=True)
        replica.thread.start()
        self._replicas.append(replica)

        def watching() -> bool:
            paths = {
                str(r.url.path)
                for r in self.emulator.requests()[seen_before:]
                if r.params.get("watch") == "true"
            }
            return all(any(p.endswith(f"/{plural}") for p in paths) for plural in PLURALS)

        if wait:
            wait_for(watching, what="kopf to watch the four kinds")
        return len(self._replicas) - 1

    def stop(self, replica: int | None = None) -> None:
        """Stop one replica, or all of them."""
        chosen = [self._replicas[replica]] if replica is not None else self._replicas[::-1]
        for r in chosen:
            if r.thread is None:
                continue
            r.stop.set()
            r.thread.join(30)
            assert not r.thread.is_alive(), "the operator did not stop"
            r.thread = None
            if r.failure is not None:
                raise r.failure

    def server_errors(self) -> list[tuple[str, str, int]]:
        return [a for a in self.emulator.answered() if a[2] >= 500]


@pytest.fixture
def records() -> Iterator[Records]:
    handler = Records()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


@pytest.fixture
def cluster(records: Records) -> Iterator[Cluster]:
    with EmulatorThread() as emulator:
        c = Cluster(emulator, records)
        try:
            yield c
        finally:
            c.stop()
            c.client.close()
        errors = c.server_errors()
        assert not errors, f"the emulator answered 5xx: {errors}"


@pytest.fixture
def examples() -> list[dict[str, Any]]:
    return example_documents()


@pytest.fixture
def demo_root() -> Path:
    return EXAMPLES


def write_kubeconfig(path: Path, server: str) -> Path:
    """A kubeconfig for a process of its own (`mcpyard operator`, `mcpyard gateway`)."""
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "emu", "cluster": {"server": server}}],
                "users": [{"name": "emu", "user": {"token": "emulator-accepts-any"}}],
                "contexts": [{"name": "emu", "context": {"cluster": "emu", "user": "emu"}}],
                "current-context": "emu",
            }
        )
    )
    return path


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def demo_server() -> Iterator[str]:
    """The demo MCP server over streamable HTTP, requiring the example secret as a bearer."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mcpyard.demo",
            "--transport",
            "streamable-http",
            "--port",
            str(port),
            "--token-env",
            "DEMO_TOKEN",
        ],
        env={**os.environ, "DEMO_TOKEN": DEMO_TOKEN},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: listening(port), what="the demo server")
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.wait(10)


def _verb(method: str, params: dict[str, str], named: bool) -> str:
    if method == "GET":
        return "watch" if params.get("watch") == "true" else "get" if named else "list"
    return {"POST": "create", "PATCH": "patch", "PUT": "update", "DELETE": "delete"}[method]


def every_request_is_allowed(cluster: Cluster) -> None:
    """Every request the operator (kopf included) made is granted by kube.RBAC_RULES."""
    seen = set()
    for request in cluster.emulator.requests():
        if request.resource is None or request.headers.get("User-Agent") == TEST_AGENT:
            continue
        if request.resource.plural is None:  # API discovery: open to every account
            continue
        group = request.resource.group or ""
        plural = str(request.resource.plural)
        resource = f"{plural}/{request.subresource}" if request.subresource else plural
        verb = _verb(str(request.method.value), dict(request.params), request.name is not None)
        seen.add((group, resource, verb, request.namespace == OPERATOR_NS))
    assert seen, "no request seen"
    missing = [
        s
        for s in sorted(seen)
        if not kube.allows(
            kube.RBAC_RULES, group=s[0], resource=s[1], verb=s[2], in_operator_namespace=s[3]
        )
    ]
    assert missing == []
