"""The chart renders with Helm's own engine, for the defaults and for every option."""

from __future__ import annotations

import base64
import json
from typing import Any

import helm_python as helm
import pytest
from helmrender import CHART, NAMESPACE, RELEASE, VALUE_SETS, Render, Rendered

APP_VERSION = "0.1.0"


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def _container(r: Rendered, component: str) -> dict[str, Any]:
    dep = r.one("Deployment", f"{RELEASE}-{component}")
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    return container


def test_chart_metadata_matches_the_package() -> None:
    import mcpyard

    with helm.Chart.load(CHART) as chart:
        assert chart.metadata["appVersion"] == mcpyard.__version__
        assert chart.name == "mcpyard"


def test_defaults_render_the_operator_gateway_crds_and_rbac(default_render: Rendered) -> None:
    kinds = sorted(f"{d['kind']}/{d['metadata']['name']}" for d in default_render.docs)
    assert kinds == sorted(
        [
            "CustomResourceDefinition/encryptedsecrets.mcpyard.io",
            "CustomResourceDefinition/mcpservers.mcpyard.io",
            "CustomResourceDefinition/members.mcpyard.io",
            "CustomResourceDefinition/workspaces.mcpyard.io",
            "Secret/mcpyard-master-key",
            "ServiceAccount/mcpyard-operator",
            "ServiceAccount/mcpyard-gateway",
            "ClusterRole/mcpyard-operator",
            "ClusterRoleBinding/mcpyard-operator",
            "Role/mcpyard-operator",
            "RoleBinding/mcpyard-operator",
            "Role/mcpyard-gateway",
            "RoleBinding/mcpyard-gateway",
            "Deployment/mcpyard-operator",
            "Deployment/mcpyard-gateway",
            "Service/mcpyard-gateway",
        ]
    )


def test_every_object_has_the_standard_labels(option_render: tuple[str, Rendered]) -> None:
    name, r = option_render
    for d in r.docs:
        labels = d["metadata"].get("labels", {})
        where = f"{name}: {d['kind']}/{d['metadata']['name']}"
        assert labels.get("app.kubernetes.io/name") == "mcpyard", where
        assert labels.get("app.kubernetes.io/instance") == RELEASE, where
        assert labels.get("app.kubernetes.io/managed-by") == "Helm", where
        assert labels.get("app.kubernetes.io/version") == APP_VERSION, where
        assert labels.get("helm.sh/chart") == f"mcpyard-{APP_VERSION}", where


def test_selectors_match_their_pods(option_render: tuple[str, Rendered]) -> None:
    _, r = option_render
    for dep in r.of_kind("Deployment"):
        selector = dep["spec"]["selector"]["matchLabels"]
        pod_labels = dep["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= pod_labels.items(), dep["metadata"]["name"]
    pods = {
        d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"]
        for d in r.of_kind("Deployment")
    }
    for svc in r.of_kind("Service"):
        assert svc["spec"]["selector"].items() <= pods[svc["metadata"]["name"]].items()


def test_images_default_to_the_app_version(default_render: Rendered) -> None:
    assert (
        _container(default_render, "operator")["image"] == f"ghcr.io/mcpyard/mcpyard:{APP_VERSION}"
    )
    assert (
        _container(default_render, "gateway")["image"] == f"ghcr.io/mcpyard/mcpyard:{APP_VERSION}"
    )
    args = _container(default_render, "operator")["args"]
    assert args[args.index("--runner-image") + 1] == f"ghcr.io/mcpyard/mcpyard-runner:{APP_VERSION}"


def test_a_digest_wins_over_the_tag(chart_render: Render) -> None:
    r = chart_render(VALUE_SETS["digest-and-pull-secrets"])
    assert _container(r, "gateway")["image"] == "ghcr.io/mcpyard/mcpyard@sha256:" + "a" * 64
    spec = r.one("Deployment", "mcpyard-gateway")["spec"]["template"]["spec"]
    assert spec["imagePullSecrets"] == [{"name": "regcred"}]


def test_operator_command_line(default_render: Rendered, chart_render: Render) -> None:
    dep = default_render.one("Deployment", "mcpyard-operator")
    assert dep["spec"]["replicas"] == 1
    assert dep["spec"]["strategy"]["type"] == "Recreate"  # never two kopf operators at once
    args = _container(default_render, "operator")["args"]
    assert args[0] == "operator"
    assert args[args.index("--operator-namespace") + 1] == NAMESPACE
    assert args[args.index("--gateway-url") + 1] == f"http://mcpyard-gateway.{NAMESPACE}.svc:8080"
    assert "--namespace" not in args  # every namespace
    assert "--standalone" in args and "--peering" not in args  # one replica, no peering
    served = chart_render(VALUE_SETS["served-namespaces"])
    args = _container(served, "operator")["args"]
    assert [args[i + 1] for i, a in enumerate(args) if a == "--namespace"] == [
        "team-eng",
        "team-data",
    ]


@pytest.mark.parametrize(
    ("values", "kind", "namespaces"),
    [
        pytest.param(VALUE_SETS["peering"], "ClusterKopfPeering", [None], id="cluster-wide"),
        pytest.param(
            VALUE_SETS["peering-namespaced"], "KopfPeering", ["team-eng"], id="namespaced"
        ),
    ],
)
def test_peering_for_several_operator_replicas(
    chart_render: Render, values: dict[str, Any], kind: str, namespaces: list[str | None]
) -> None:
    r = chart_render(values)
    dep = r.one("Deployment", "mcpyard-operator")
    assert dep["spec"]["replicas"] == 2
    assert "strategy" not in dep["spec"]  # rolling: peering keeps one active
    args = _container(r, "operator")["args"]
    name = values["operator"]["peering"].get("name", "mcpyard")
    assert args[args.index("--peering") + 1] == name and "--standalone" not in args
    peerings = r.of_kind(kind)
    assert [(p["metadata"]["name"], p["metadata"].get("namespace")) for p in peerings] == [
        (name, ns) for ns in namespaces
    ]
    assert "kopf" in r.notes


def test_extra_options(chart_render: Render) -> None:
    args = _container(chart_render(VALUE_SETS["scheduling"]), "operator")["args"]
    assert args[-3:] == ["--verbose", "--resync-interval", "120"]


def test_the_gateway_url_follows_the_ingress_or_the_value(chart_render: Render) -> None:
    args = _container(chart_render(VALUE_SETS["ingress"]), "operator")["args"]
    assert args[args.index("--gateway-url") + 1] == "https://mcp.example.com"
    args = _container(chart_render(VALUE_SETS["scheduling"]), "operator")["args"]
    assert args[args.index("--gateway-url") + 1] == "https://mcp.example.com"


def test_gateway_probes_port_and_state_dir(default_render: Rendered) -> None:
    c = _container(default_render, "gateway")
    assert c["args"] == ["gateway"]
    assert c["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"},
                          {"name": "admin", "containerPort": 9090, "protocol": "TCP"}]
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    # /readyz and /metrics are on the admin port by default, off the public one.
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "admin"}
    env = _env(c)
    assert env["MCPYARD_HOST"] == "0.0.0.0"
    assert env["MCPYARD_PORT"] == "8080"
    assert env["MCPYARD_ADMIN_PORT"] == "9090"
    assert "MCPYARD_REDIS_URL" not in env
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    volumes = {
        v["name"]: v
        for v in default_render.one("Deployment", "mcpyard-gateway")["spec"]["template"]["spec"][
            "volumes"
        ]
    }
    # The root filesystem is read-only: the state dir and /tmp are emptyDirs.
    assert "emptyDir" in volumes[mounts[env["MCPYARD_STATE_DIR"]]]
    assert "emptyDir" in volumes[mounts["/tmp"]]


def test_service_keeps_a_client_on_one_replica(default_render: Rendered) -> None:
    svc = default_render.one("Service", "mcpyard-gateway")
    assert svc["spec"]["sessionAffinity"] == "ClientIP"
    assert svc["spec"]["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"] == 10800
    assert svc["spec"]["ports"] == [
        {"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"},
        {"name": "admin", "port": 9090, "targetPort": "admin", "protocol": "TCP"},
    ]


def test_admin_port_can_be_turned_off(chart_render: Render) -> None:
    r = chart_render({"gateway": {"adminPort": 0}, "metrics": {"serviceMonitor": {
        "enabled": True}}, "networkPolicy": {"enabled": True}})
    c = _container(r, "gateway")
    assert [p["name"] for p in c["ports"]] == ["http"]
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert "MCPYARD_ADMIN_PORT" not in _env(c)
    assert [p["name"] for p in r.one("Service", "mcpyard-gateway")["spec"]["ports"]] == ["http"]
    assert r.one("ServiceMonitor", "mcpyard-gateway")["spec"]["endpoints"][0]["port"] == "http"
    ingress = r.one("NetworkPolicy", "mcpyard-gateway")["spec"]["ingress"]
    assert [rule["ports"] for rule in ingress] == [[{"port": 8080, "protocol": "TCP"}]]


def test_admin_port_in_the_network_policy(chart_render: Render) -> None:
    prometheus = [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}]
    r = chart_render({"networkPolicy": {"enabled": True, "adminFrom": prometheus}})
    ingress = r.one("NetworkPolicy", "mcpyard-gateway")["spec"]["ingress"]
    assert ingress[1] == {"ports": [{"port": 9090, "protocol": "TCP"}], "from": prometheus}


def test_session_affinity_can_be_turned_off(chart_render: Render) -> None:
    svc = chart_render({"gateway": {"service": {"sessionAffinity": "None"}}}).one(
        "Service", "mcpyard-gateway"
    )
    assert svc["spec"]["sessionAffinity"] == "None"
    assert "sessionAffinityConfig" not in svc["spec"]


def test_ingress(chart_render: Render) -> None:
    r = chart_render(VALUE_SETS["ingress"])
    ing = r.one("Ingress", "mcpyard-gateway")
    assert ing["spec"]["ingressClassName"] == "nginx"
    assert ing["spec"]["tls"] == [{"secretName": "mcp-tls", "hosts": ["mcp.example.com"]}]
    (rule,) = ing["spec"]["rules"]
    assert rule["host"] == "mcp.example.com"
    assert rule["http"]["paths"][0]["backend"]["service"] == {
        "name": "mcpyard-gateway",
        "port": {"name": "http"},
    }


def test_hpa(chart_render: Render) -> None:
    r = chart_render(VALUE_SETS["hpa"])
    hpa = r.one("HorizontalPodAutoscaler", "mcpyard-gateway")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "mcpyard-gateway",
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 5)
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu", "memory"]
    # The HPA owns the replica count.
    assert "replicas" not in r.one("Deployment", "mcpyard-gateway")["spec"]


def test_pdb(chart_render: Render) -> None:
    pdb = chart_render(VALUE_SETS["pdb"]).one("PodDisruptionBudget", "mcpyard-gateway")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "gateway"
    pdb = chart_render(VALUE_SETS["pdb-max-unavailable"]).one(
        "PodDisruptionBudget", "mcpyard-gateway"
    )
    assert pdb["spec"] == {"maxUnavailable": "50%", "selector": pdb["spec"]["selector"]}


def test_service_monitor(chart_render: Render) -> None:
    r = chart_render(VALUE_SETS["service-monitor"])
    sm = r.one("ServiceMonitor", "mcpyard-gateway")
    assert sm["metadata"]["labels"]["release"] == "prometheus"
    svc = r.one("Service", "mcpyard-gateway")
    assert sm["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    assert sm["spec"]["endpoints"] == [
        {"port": "admin", "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s"}
    ]


def test_dashboard_configmap(chart_render: Render) -> None:
    cm = chart_render(VALUE_SETS["dashboard"]).one("ConfigMap", "mcpyard-dashboard")
    assert cm["metadata"]["namespace"] == "monitoring"
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(cm["data"]["mcpyard.json"])
    assert dashboard["uid"] == "mcpyard-gateway"
    assert dashboard["panels"]


def test_redis_url_from_a_value_or_a_secret(chart_render: Render) -> None:
    env = _env(_container(chart_render(VALUE_SETS["redis-url"]), "gateway"))
    assert env["MCPYARD_REDIS_URL"] == "redis://redis:6379/0"
    env = _env(_container(chart_render(VALUE_SETS["redis-secret"]), "gateway"))
    assert env["MCPYARD_REDIS_URL"] == {"secretKeyRef": {"name": "mcpyard-redis", "key": "url"}}


@pytest.mark.parametrize(
    ("values", "warned"),
    [
        pytest.param({}, False, id="one-replica"),
        pytest.param(VALUE_SETS["replicas-without-redis"], True, id="replicas-without-redis"),
        pytest.param({"gateway": {"autoscaling": {"enabled": True}}}, True, id="hpa-without-redis"),
        pytest.param(
            {"gateway": {"autoscaling": {"enabled": True, "minReplicas": 1, "maxReplicas": 1}}},
            False,
            id="hpa-max-one",
        ),
        pytest.param(VALUE_SETS["redis-url"], False, id="replicas-with-redis-url"),
        pytest.param(VALUE_SETS["redis-secret"], False, id="replicas-with-redis-secret"),
    ],
)
def test_notes_warn_about_replicas_without_redis(
    chart_render: Render, values: dict[str, Any], warned: bool
) -> None:
    notes = chart_render(values).notes
    assert ("WARNING: more than one gateway replica" in notes) is warned, notes
    assert "/ws/<workspace>/mcp" in notes
    assert "mcpyard-member-<member>" in notes


def test_notes_warn_when_replicas_lose_session_affinity(chart_render: Render) -> None:
    notes = chart_render(
        {
            "gateway": {
                "replicas": 2,
                "redis": {"url": "redis://r:6379"},
                "service": {"sessionAffinity": "None"},
            }
        }
    ).notes
    assert "sessionAffinity=ClientIP" in notes


def test_crds_can_be_left_out(chart_render: Render) -> None:
    assert not chart_render(VALUE_SETS["no-crds"]).of_kind("CustomResourceDefinition")


def test_components_can_be_turned_off(chart_render: Render) -> None:
    r = chart_render(VALUE_SETS["gateway-only"])
    assert {d["metadata"]["name"] for d in r.of_kind("Deployment")} == {"mcpyard-gateway"}
    assert not r.of_kind("ClusterRole")
    r = chart_render(VALUE_SETS["operator-only"])
    assert {d["metadata"]["name"] for d in r.of_kind("Deployment")} == {"mcpyard-operator"}
    assert not r.of_kind("Service")


def test_existing_service_accounts(chart_render: Render) -> None:
    r = chart_render(VALUE_SETS["existing-service-accounts"])
    assert not r.of_kind("ServiceAccount")
    names = {
        d["metadata"]["name"]: d["spec"]["template"]["spec"]["serviceAccountName"]
        for d in r.of_kind("Deployment")
    }
    assert names == {"mcpyard-operator": "ops", "mcpyard-gateway": "gw"}
    subjects = {b["metadata"]["name"]: b["subjects"][0]["name"] for b in r.of_kind("RoleBinding")}
    assert subjects == {"mcpyard-operator": "ops", "mcpyard-gateway": "gw"}


def test_long_release_names_stay_within_63_characters(chart_render: Render) -> None:
    r = chart_render(name="a-very-long-release-name-that-goes-on-and-on-for-ever")
    for d in r.docs:
        if d["kind"] != "CustomResourceDefinition":
            assert len(d["metadata"]["name"]) <= 63, d["metadata"]["name"]


def test_master_key_is_32_random_bytes(default_render: Rendered, chart_render: Render) -> None:
    secret = default_render.one("Secret", "mcpyard-master-key")
    assert secret["metadata"]["namespace"] == NAMESPACE
    assert len(base64.b64decode(secret["data"]["master.key"])) == 32
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    again = chart_render().one("Secret", "mcpyard-master-key")
    assert again["data"] != secret["data"]  # random: without a cluster, lookup finds nothing
    assert not chart_render(VALUE_SETS["no-master-key"]).of_kind("Secret")


@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_lint_is_clean(name: str) -> None:
    report = helm.lint(CHART, VALUE_SETS[name], strict=True, namespace=NAMESPACE)
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert not report["errors"] and not problems, report
