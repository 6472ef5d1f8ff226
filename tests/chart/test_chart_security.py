"""Every pod meets Pod Security "restricted" and runs with a read-only root filesystem; the
master key is made once and kept."""

from __future__ import annotations

import re
from typing import Any

from helmrender import CHART, Rendered


def _restricted_problems(where: str, pod: dict[str, Any]) -> list[str]:
    """The checks of the "restricted" Pod Security Standard (and readOnlyRootFilesystem)."""
    problems = []
    psc = pod.get("securityContext", {})
    if pod.get("hostNetwork") or pod.get("hostPID") or pod.get("hostIPC"):
        problems.append(f"{where}: host namespaces")
    for v in pod.get("volumes", []):
        allowed = {
            "name",
            "configMap",
            "csi",
            "downwardAPI",
            "emptyDir",
            "ephemeral",
            "persistentVolumeClaim",
            "projected",
            "secret",
        }
        if set(v) - allowed:
            problems.append(f"{where}: volume {v['name']} of a restricted type")
    if psc.get("seccompProfile", {}).get("type") not in ("RuntimeDefault", "Localhost"):
        problems.append(f"{where}: pod seccompProfile is not RuntimeDefault")
    for c in pod.get("initContainers", []) + pod["containers"]:
        csc = c.get("securityContext", {})
        name = f"{where}/{c['name']}"
        if csc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation is not false")
        if csc.get("privileged"):
            problems.append(f"{name}: privileged")
        if csc.get("capabilities", {}).get("drop") != ["ALL"]:
            problems.append(f"{name}: capabilities do not drop ALL")
        if set(csc.get("capabilities", {}).get("add", [])) - {"NET_BIND_SERVICE"}:
            problems.append(f"{name}: adds capabilities")
        if not (csc.get("runAsNonRoot") or psc.get("runAsNonRoot")):
            problems.append(f"{name}: runAsNonRoot is not set")
        if csc.get("runAsUser", psc.get("runAsUser")) == 0:
            problems.append(f"{name}: runs as uid 0")
        if csc.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{name}: root filesystem is writable")
        if "seccompProfile" in csc and csc["seccompProfile"].get("type") not in (
            "RuntimeDefault",
            "Localhost",
        ):
            problems.append(f"{name}: container seccompProfile is unconfined")
        for p in c.get("ports", []):
            if "hostPort" in p:
                problems.append(f"{name}: hostPort")
    return problems


def test_every_pod_is_restricted(option_render: tuple[str, Rendered]) -> None:
    name, r = option_render
    problems = [p for where, pod in r.pod_specs() for p in _restricted_problems(where, pod)]
    assert not problems, f"{name}:\n" + "\n".join(problems)


def test_writable_paths_are_empty_dirs(default_render: Rendered) -> None:
    for where, pod in default_render.pod_specs():
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for c in pod["containers"]:
            for m in c.get("volumeMounts", []):
                assert "emptyDir" in volumes[m["name"]], (where, m)
            assert "/tmp" in {m["mountPath"] for m in c.get("volumeMounts", [])}, where


def test_the_check_catches_a_root_pod() -> None:
    bad = {"containers": [{"name": "c", "securityContext": {"runAsUser": 0}}]}
    assert len(_restricted_problems("x", bad)) >= 5


def test_master_key_template_uses_lookup_and_keep() -> None:
    text = (CHART / "templates" / "master-key-secret.yaml").read_text()
    assert re.search(r'lookup "v1" "Secret" \.Release\.Namespace "mcpyard-master-key"', text)
    assert "helm.sh/resource-policy: keep" in text
    # The existing key wins; a new one is made only when there is none.
    assert text.index("lookup") < text.index("randBytes 32")
    assert re.search(r"if not \$key \}\}\s*\{\{- \$key = randBytes 32", text)
