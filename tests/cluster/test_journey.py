"""The user's journey on a real API server: the CRDs and the examples applied with kubectl,
`mcpyard operator` run as the chart's ServiceAccount (its token, the chart's RBAC: a missing
permission fails a request, an unused one fails the audit check), `mcpyard gateway` as the
gateway's ServiceAccount serving a real MCP client, and a revocation by `kubectl patch`.

The tests of this module run in order on one operator and one gateway (module fixtures).
No controller manager runs: Deployments get no pods and no status, and no garbage collector
deletes dependents of a deleted owner; what is checked is what the API server guarantees
(schemas, defaults, owner references as stored, field managers, RBAC, watches).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mcpyard import kube
from tests.chart.helmrender import Rendered
from tests.cluster.apiserver import ROOT, ApiServer, kubectl_binary
from tests.cluster.conftest import (
    GATEWAY_SA,
    OPERATOR_NS,
    OPERATOR_SA,
    Process,
    apply_examples,
    call_tool,
    initialize,
    spawn,
    spawn_gateway,
    wait_for,
)
from tests.operator.conftest import DEMO_TOKEN
from tests.proctools import free_port

GATEWAY_URL = "https://gw.example.com"


def _tokens() -> dict[str, str]:
    out = {}
    for line in (ROOT / "examples" / "demo-tokens.txt").read_text().splitlines():
        parts = line.split("\t")
        if len(parts) == 3:
            out[parts[0]] = parts[2]
    return out


TOKENS = _tokens()


def _chart_args(chart: Rendered, component: str) -> tuple[list[str], dict[str, str]]:
    """The container args and plain env of the chart's Deployment of ``component``."""
    (deployment,) = [
        d for d in chart.of_kind("Deployment") if d["metadata"]["name"].endswith(component)
    ]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container.get("env") or [] if "value" in e}
    return list(container.get("args") or []), env


@pytest.fixture(scope="module")
def journey(
    apiserver: ApiServer, chart: Rendered, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """The examples applied, and the operator running as the chart runs it."""
    work = tmp_path_factory.mktemp("journey")
    apply_examples(apiserver)
    args, env = _chart_args(chart, "operator")
    assert args[0] == "operator" and "--standalone" in args
    args[args.index("--gateway-url") + 1] = GATEWAY_URL
    kubeconfig = apiserver.kubeconfig_for(work / "operator.kubeconfig", OPERATOR_NS, OPERATOR_SA)
    # The chart's command line, with a short resync so that drift repair shows within the test.
    with _environment(env):
        operator = spawn(
            work / "operator.log",
            *args,
            "--kubeconfig",
            str(kubeconfig),
            "--resync-interval",
            "3",
        )
    try:
        yield {"operator": operator, "work": work, "kubeconfig": kubeconfig}
    finally:
        code = operator.stop()
        assert code == 0, operator.output()[-3000:]


@contextlib.contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _secret(apiserver: ApiServer, ns: str, name: str) -> dict[str, Any] | None:
    done = apiserver.kubectl(
        "get", "secret", "-n", ns, name, "-o", "json", "--show-managed-fields", check=False
    )
    return json.loads(done.stdout) if done.returncode == 0 else None


def _conditions(obj: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {
        c["type"]: (c["status"], c["reason"])
        for c in (obj.get("status") or {}).get("conditions") or []
    }


def test_config_secrets_as_the_server_stores_them(
    apiserver: ApiServer, journey: dict[str, Any]
) -> None:
    for ws in ("eng", "data"):
        secret = wait_for(
            lambda w=ws: _secret(apiserver, OPERATOR_NS, f"mcpyard-ws-{w}"),
            what=f"the config Secret of {ws}",
            timeout=120,
        )
        assert secret["type"] == "Opaque"
        assert secret["metadata"]["labels"]["mcpyard.io/config"] == "true"
        assert set(secret["data"]) == {"config.json", "secrets.json"}
        # Written by server-side apply, as the operator's field manager and no other.
        managers = {
            (f["manager"], f["operation"]) for f in secret["metadata"].get("managedFields") or []
        }
        assert managers == {("mcpyard", "Apply")}, managers
    # The label selector the gateway watches with selects exactly the config Secrets.
    listed = apiserver.kubectl(
        "get", "secrets", "-n", OPERATOR_NS, "-l", "mcpyard.io/config=true", "-o", "name"
    ).stdout.split()
    assert sorted(listed) == ["secret/mcpyard-ws-data", "secret/mcpyard-ws-eng"]
    assert DEMO_TOKEN not in json.dumps(_secret(apiserver, OPERATOR_NS, "mcpyard-ws-eng"))


def test_statuses_and_printer_columns(apiserver: ApiServer, journey: dict[str, Any]) -> None:
    def eng_row() -> list[str] | None:
        for line in apiserver.kubectl("get", "workspaces", "-A").stdout.splitlines()[1:]:
            cells = line.split()
            if cells[1] == "eng" and cells[2] != "<none>":
                return cells
        return None

    row = wait_for(eng_row, what="the eng row of `kubectl get workspaces`", timeout=120)
    # NAMESPACE NAME URL PLAN SERVERS MEMBERS TOOLS READY AGE
    assert row[:6] == ["team-eng", "eng", f"{GATEWAY_URL}/ws/eng/mcp", "pro", "3", "2"], row
    expected = {
        "Accepted": ("True", "Valid"),
        "ResolvedRefs": ("True", "Resolved"),
        "Programmed": ("True", "ConfigGenerated"),
    }
    for kind, ns, name in [
        ("workspace", "team-eng", "eng"),
        ("workspace", "team-data", "data"),
        ("mcpserver", "team-eng", "notes"),
        ("member", "team-eng", "alice"),
        ("encryptedsecret", "team-eng", "analytics-key"),
    ]:
        wait_for(
            lambda k=kind, n=ns, m=name: all(  # type: ignore[misc]
                _conditions(apiserver.get_json(k, "-n", n, m)).get(t) == v
                for t, v in expected.items()
            ),
            what=f"the conditions of {kind} {name}",
            timeout=60,
        )
        stored = apiserver.get_json(kind, "-n", ns, name)
        assert stored["status"]["observedGeneration"] == stored["metadata"]["generation"]
    carol = apiserver.get_json("member", "-n", "team-eng", "carol")
    assert _conditions(carol)["Ready"] == ("False", "Disabled")
    members = apiserver.kubectl("get", "members", "-n", "team-eng").stdout
    assert "carol" in members and "alice@example.com" in members


def test_hosted_servers_are_stored_with_owner_references(
    apiserver: ApiServer, journey: dict[str, Any], chart: Rendered
) -> None:
    args, _ = _chart_args(chart, "operator")
    runner = args[args.index("--runner-image") + 1]
    for ns, server in [("team-eng", "notes"), ("team-eng", "time"), ("team-data", "analytics")]:
        owner = apiserver.get_json("mcpserver", "-n", ns, server)
        for kind in ("deployment", "service"):
            obj = wait_for(
                lambda k=kind, n=ns, s=server: json.loads(  # type: ignore[misc]
                    apiserver.kubectl(
                        "get", k, "-n", n, f"mcp-{s}", "-o", "json", check=False
                    ).stdout
                    or "null"
                ),
                what=f"{kind} of {server}",
            )
            (ref,) = obj["metadata"]["ownerReferences"]
            assert (ref["kind"], ref["name"], ref["uid"], ref["controller"]) == (
                "MCPServer",
                server,
                owner["metadata"]["uid"],
                True,
            )
    notes = apiserver.get_json("deployment", "-n", "team-eng", "mcp-notes")
    (container,) = notes["spec"]["template"]["spec"]["containers"]
    assert container["image"] == runner
    # Defaults the API server filled in (what `covers` must tolerate), and no status: no
    # controller manager runs here.
    assert notes["spec"]["strategy"]["type"] == "RollingUpdate"
    assert notes["spec"]["revisionHistoryLimit"] == 10
    assert not notes.get("status", {}).get("replicas")
    env = apiserver.get_json("secret", "-n", "team-data", "mcp-analytics-env")
    assert set(env["data"]) == {"ANALYTICS_TOKEN"}


def test_drift_is_repaired_and_other_edits_are_kept(
    apiserver: ApiServer, journey: dict[str, Any]
) -> None:
    ns = "team-eng"
    wait_for(lambda: apiserver.get_json("deployment", "-n", ns, "mcp-notes"), what="mcp-notes")
    image = apiserver.get_json("deployment", "-n", ns, "mcp-notes")["spec"]["template"]["spec"][
        "containers"
    ][0]["image"]
    # A person edits fields the operator does not set (`kubectl edit`, with an editor that
    # needs no terminal, and `kubectl label`), and one it owns (`kubectl set image`).
    _edit(
        apiserver,
        ns,
        "deployment/mcp-notes",
        "progressDeadlineSeconds: 600",
        "progressDeadlineSeconds: 601",
    )
    apiserver.kubectl("label", "deployment", "-n", ns, "mcp-notes", "team=platform")
    apiserver.kubectl("set", "image", "deployment/mcp-notes", "-n", ns, "server=example/evil:1")
    apiserver.kubectl("delete", "service", "-n", ns, "mcp-notes")

    def repaired() -> bool:
        d = apiserver.get_json("deployment", "-n", ns, "mcp-notes")
        svc = apiserver.kubectl("get", "service", "-n", ns, "mcp-notes", check=False)
        return (
            d["spec"]["template"]["spec"]["containers"][0]["image"] == image and svc.returncode == 0
        )

    wait_for(repaired, what="the resync to repair the Deployment and the Service", timeout=60)
    # Two resyncs later (each reads the Deployment), the person's fields are still theirs:
    # kept, and no conflict ever stopped the operator.
    reads = _reads(apiserver, "deployments", ns, "mcp-notes")
    wait_for(
        lambda: _reads(apiserver, "deployments", ns, "mcp-notes") >= reads + 2,
        what="two more resyncs of the operator",
        timeout=60,
    )
    deployment = apiserver.get_json("deployment", "-n", ns, "mcp-notes", "--show-managed-fields")
    assert deployment["metadata"]["labels"]["team"] == "platform"
    assert deployment["spec"]["progressDeadlineSeconds"] == 601
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == image
    fields = {
        (m["manager"], m["operation"]): json.dumps(m.get("fieldsV1"))
        for m in deployment["metadata"]["managedFields"]
    }
    assert '"f:image"' in fields["mcpyard", "Apply"]  # taken back from kubectl set image
    assert '"f:image"' not in fields.get(("kubectl-set", "Update"), "")
    assert '"f:progressDeadlineSeconds"' in fields["kubectl-edit", "Update"]
    assert '"f:team"' in fields["kubectl-label", "Update"]
    assert "conflict" not in journey["operator"].output().lower()
    # A field of the Service the operator owns drifts: patched back in place (not re-created).
    service = apiserver.get_json("service", "-n", ns, "mcp-notes")
    (port,) = service["spec"]["ports"]
    apiserver.kubectl(
        "patch",
        "service",
        "-n",
        ns,
        "mcp-notes",
        "--type=json",
        "-p",
        json.dumps([{"op": "replace", "path": "/spec/ports/0/port", "value": port["port"] + 1}]),
    )
    wait_for(
        lambda: (
            apiserver.get_json("service", "-n", ns, "mcp-notes")["spec"]["ports"][0]["port"]
            == port["port"]
        ),
        what="the resync to patch the Service's port back",
        timeout=60,
    )
    again = apiserver.get_json("service", "-n", ns, "mcp-notes")
    assert again["metadata"]["uid"] == service["metadata"]["uid"]


def _reads(apiserver: ApiServer, resource: str, ns: str, name: str) -> int:
    """How many times the operator read one object so far (the server's audit log)."""
    return sum(
        1
        for e in apiserver.audit(f"system:serviceaccount:{OPERATOR_NS}:{OPERATOR_SA}")
        if e["verb"] == "get"
        and (e.get("objectRef") or {}).get("resource") == resource
        and e["objectRef"].get("namespace") == ns
        and e["objectRef"].get("name") == name
    )


def _edit(apiserver: ApiServer, ns: str, what: str, old: str, new: str) -> None:
    """``kubectl edit`` with an editor that replaces ``old`` by ``new`` (no terminal)."""
    editor = f"sed -i 's/^  {old}$/  {new}/'"
    done = subprocess.run(
        [kubectl_binary(), "--kubeconfig", str(apiserver.kubeconfig), "edit", "-n", ns, what],
        env={**os.environ, "KUBE_EDITOR": editor},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and "edited" in done.stdout, done.stdout + done.stderr


def test_deletion_and_owner_references(apiserver: ApiServer, journey: dict[str, Any]) -> None:
    ns = "team-eng"
    owner = apiserver.get_json("mcpserver", "-n", ns, "time")
    # A dependent of someone else's, owned by the server: only a garbage collector (the
    # controller manager, absent here) would delete it with its owner.
    apiserver.apply(
        [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": "time-notes",
                    "namespace": ns,
                    "ownerReferences": [
                        {
                            "apiVersion": "mcpyard.io/v1alpha1",
                            "kind": "MCPServer",
                            "name": "time",
                            "uid": owner["metadata"]["uid"],
                        }
                    ],
                },
            }
        ]
    )
    apiserver.kubectl("delete", "mcpserver", "-n", ns, "time", "--wait=true", "--timeout=60s")
    # The operator removes what it created (its finalizer lets it), without a collector.
    for kind in ("deployment", "service"):
        wait_for(
            lambda k=kind: (
                apiserver.kubectl(  # type: ignore[misc]
                    "get", k, "-n", ns, "mcp-time", check=False
                ).returncode
                != 0
            ),
            what=f"the {kind} of time deleted",
        )
    # The API server keeps the owner reference as written; collecting it is a controller's job.
    cm = apiserver.get_json("configmap", "-n", ns, "time-notes")
    assert cm["metadata"]["ownerReferences"][0]["uid"] == owner["metadata"]["uid"]

    def eng_servers() -> list[str] | None:
        secret = _secret(apiserver, OPERATOR_NS, "mcpyard-ws-eng")
        import base64

        config = json.loads(base64.b64decode(secret["data"]["config.json"])) if secret else {}
        slugs = [s["slug"] for s in config.get("servers", [])]
        return slugs if "time" not in slugs else None

    assert wait_for(eng_servers, what="time out of eng's config") == ["analytics", "notes"]
    # A Workspace deleted: its config Secret goes with it (the operator deletes it).
    apiserver.kubectl("delete", "workspace", "-n", "team-data", "data", "--timeout=60s")
    wait_for(
        lambda: _secret(apiserver, OPERATOR_NS, "mcpyard-ws-data") is None,
        what="the config Secret of data deleted",
    )


def test_gateway_follows_the_config_and_revocation_bites(
    apiserver: ApiServer, journey: dict[str, Any], demo_server: str
) -> None:
    work: Path = journey["work"]
    # The eng workspace proxies to the demo server, patched in with kubectl.
    apiserver.kubectl(
        "patch",
        "mcpserver",
        "-n",
        "team-eng",
        "analytics",
        "--type=merge",
        "-p",
        json.dumps({"spec": {"proxy": {"url": demo_server}}}),
    )
    kubeconfig = apiserver.kubeconfig_for(work / "gateway.kubeconfig", OPERATOR_NS, GATEWAY_SA)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    gateway = spawn_gateway(work / "gateway.log", kubeconfig, port)
    try:

        def healthy() -> bool:
            try:
                body = httpx.get(f"{base}/readyz", timeout=5).json()
            except httpx.HTTPError:  # not listening yet
                return False
            eng = body.get("workspaces", {}).get("eng", {})
            return eng.get("servers", {}).get("analytics", {}).get("status") == "healthy"

        wait_for(healthy, what="eng's analytics served by the gateway", timeout=90)
        tools, text = asyncio.run(call_tool(f"{base}/ws/eng/mcp", TOKENS["bob"], "time__x"))
        assert "analytics__whoami" not in tools  # bob may not: his access rules
        tools, text = asyncio.run(
            call_tool(f"{base}/ws/eng/mcp", TOKENS["alice"], "analytics__whoami")
        )
        assert "analytics__whoami" in tools
        assert f"({len(DEMO_TOKEN)} characters)" in text
        assert initialize(f"{base}/ws/eng/mcp", TOKENS["bob"]) == 200
        assert initialize(f"{base}/ws/eng/mcp", TOKENS["carol"]) == 401
        apiserver.kubectl(
            "patch",
            "member",
            "-n",
            "team-eng",
            "bob",
            "--type=merge",
            "-p",
            '{"spec":{"disabled":true}}',
        )
        wait_for(
            lambda: initialize(f"{base}/ws/eng/mcp", TOKENS["bob"]) == 401,
            what="bob refused",
            timeout=30,
        )
        assert initialize(f"{base}/ws/eng/mcp", TOKENS["alice"]) == 200
    finally:
        code = gateway.stop()
    log = gateway.output()
    assert code == 0, log[-3000:]
    assert "Forbidden" not in log and " 403" not in log, log[-3000:]
    for token in TOKENS.values():
        assert token not in log


def _used(apiserver: ApiServer, account: str) -> set[tuple[str, str, str, bool]]:
    """(group, resource[/sub], verb, in the operator's namespace) of every request ``account``
    made, from the audit log; none of them refused."""
    events = apiserver.audit(f"system:serviceaccount:{OPERATOR_NS}:{account}")
    assert events, f"no request of {account} in the audit log"
    denied = [
        (e["verb"], e.get("objectRef", {}).get("resource"), e["responseStatus"]["code"])
        for e in events
        if e.get("responseStatus", {}).get("code") == 403
    ]
    assert denied == [], denied
    used = set()
    for e in events:
        ref = e.get("objectRef") or {}
        if not ref.get("resource"):
            continue
        resource = ref["resource"] + (f"/{ref['subresource']}" if ref.get("subresource") else "")
        here = ref.get("namespace") == OPERATOR_NS
        used.add((ref.get("apiGroup", ""), resource, e["verb"], here))
        if e["verb"] == "patch" and e.get("responseStatus", {}).get("code") == 201:
            # A server-side apply that created its object: authorized as create too.
            used.add((ref.get("apiGroup", ""), resource, "create", here))
    return used


def _unused(
    rules: tuple[dict[str, Any], ...], used: set[tuple[str, str, str, bool]]
) -> set[tuple[str, str, str, str]]:
    """The permissions ``rules`` grant that no request in ``used`` needed."""
    return {
        (group, resource, verb, rule["scope"])
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
        if not any(
            u[:3] == (group, resource, verb) and (rule["scope"] == "cluster" or u[3]) for u in used
        )
    }


def test_the_operator_used_exactly_its_rbac(apiserver: ApiServer, journey: dict[str, Any]) -> None:
    """Every request of the operator's ServiceAccount was allowed, and the chart grants it
    exactly what it used plus the rules of KEPT, each for a path this journey does not take."""
    # A watch is audited when it ends: stop the operator first.
    operator: Process = journey["operator"]
    assert operator.stop() == 0, operator.output()[-3000:]
    unused = _unused(kube.RBAC_RULES, _used(apiserver, OPERATOR_SA))
    print("\nunused permissions:", sorted(unused))
    assert unused == set(KEPT), (
        f"granted and never used, not in KEPT: {sorted(unused - set(KEPT))}; "
        f"in KEPT but used here (no longer needs a reason): {sorted(set(KEPT) - unused)}"
    )


def test_the_gateway_used_exactly_its_rbac(apiserver: ApiServer, journey: dict[str, Any]) -> None:
    """The gateway (stopped by test_gateway_follows_the_config_and_revocation_bites) used every
    permission it is granted: get (the master key), list and watch (the config Secrets)."""
    assert _unused(kube.GATEWAY_RBAC_RULES, _used(apiserver, GATEWAY_SA)) == set()


_KEPT: dict[str, list[tuple[str, str, str, str]]] = {
    # kopf's peering (--peering NAME, the chart's operator.peering): replicas find each other
    # (list, watch), keep their entry alive (patch); mcpyard reads the object at start to fail
    # clearly when it is missing (get). tests/cluster/test_peering.py runs it (KopfPeering);
    # ClusterKopfPeering is the same with the operator serving every namespace.
    "peering (the chart's default is standalone)": [
        ("kopf.dev", r, v, "cluster")
        for r in ("clusterkopfpeerings", "kopfpeerings")
        for v in ("get", "list", "watch", "patch")
    ],
    # MCPServers and Workspaces carry no finalizer now; the operator removes the one older
    # versions put on them (tests/operator/test_operator_cold_start.py), which none here
    # carries.
    "a finalizer left by an older operator": [
        ("mcpyard.io", "mcpservers", "patch", "cluster"),
        ("mcpyard.io", "workspaces", "patch", "cluster"),
    ],
    # kopf posts a core v1 Event when a handler fails or retries; none did here.
    "events of failed handlers (none failed)": [("", "events", "create", "cluster")],
    # The Flux Kustomization or Argo CD Application named by the labels of objects they
    # applied, read for its git revision; no GitOps tool applied the examples here (this server
    # has neither CRD), tests/operator/test_operator_source.py reads both on the emulator.
    "objects applied by Flux or Argo CD (kubectl applied these)": [
        ("kustomize.toolkit.fluxcd.io", "kustomizations", "get", "cluster"),
        ("argoproj.io", "applications", "get", "cluster"),
    ],
}
KEPT = [p for perms in _KEPT.values() for p in perms]
"""Granted permissions this journey does not exercise, grouped by the path that needs them."""
