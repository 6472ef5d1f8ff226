"""`mcpyard operator` as the chart runs it: a process of its own, options from the command line
and MCPYARD_* variables (the age Secret's name from MCPYARD_AGE_SECRET), stopped by SIGTERM."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.operator.conftest import (
    OPERATOR_NS,
    Cluster,
    example_documents,
    wait_for,
    write_kubeconfig,
)


def _ready(cluster: Cluster) -> tuple[str, str] | None:
    c = cluster.condition("EncryptedSecret", "team-eng", "analytics-key", "Ready")
    return (c["status"], c["reason"]) if c else None


def test_the_operator_command_reads_its_options_and_stops_on_sigterm(
    cluster: Cluster, tmp_path: Path
) -> None:
    cluster.seed_age_key(name="team-age")  # not the default name: only the variable finds it
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", cluster.emulator.url)
    log = tmp_path / "operator.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mcpyard",
                "operator",
                "--kubeconfig",
                str(kubeconfig),
                "--operator-namespace",
                OPERATOR_NS,
                "--gateway-url",
                "https://mcp.example.com",
                "--standalone",
            ],
            env={**os.environ, "MCPYARD_AGE_SECRET": "team-age"},
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
    try:
        cluster.create(*example_documents())
        wait_for(lambda: cluster.config("eng"), what="the config of eng", timeout=60)
        wait_for(
            lambda: _ready(cluster) == ("True", "Serving"),
            what="decrypted with the identities of team-age",
            timeout=60,
        )
        wait_for(
            lambda: (
                (cluster.resource("Workspace", "team-eng", "eng").get("status") or {}).get("url")
                == "https://mcp.example.com/ws/eng/mcp"
            ),
            what="eng's URL from --gateway-url",
        )
    finally:
        process.terminate()
        process.wait(60)
    assert process.returncode == 0, log.read_text()[-3000:]
    assert "AGE-SECRET-KEY" not in log.read_text()


def test_the_operator_without_credentials_says_so(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mcpyard", "operator", "--kubeconfig", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert "mcpyard operator: no Kubernetes credentials" in done.stderr
