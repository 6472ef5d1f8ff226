"""The Dockerfiles, checked without building them (no container engine here): base images
pinned, non-root numeric USER, and every mcpyard subcommand the images and the chart call
exists in the package."""

from __future__ import annotations

import argparse
import re
import tomllib
from pathlib import Path

import pytest
from helmrender import CHART, ROOT, Render

DOCKER = ROOT / "docker"
DOCKERFILES = {"mcpyard": DOCKER / "Dockerfile", "runner": DOCKER / "runner.Dockerfile"}


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _args(path: Path) -> dict[str, str]:
    return {k: v for k, _, v in (a.partition("=") for i, a in _instructions(path) if i == "ARG")}


def _base_images(path: Path) -> list[str]:
    """Every FROM image, with ${ARG}s resolved; stage names left out."""
    args, stages, images = _args(path), set(), []
    for instruction, rest in _instructions(path):
        if instruction != "FROM":
            continue
        parts = rest.split()
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], parts[0])
        if image not in stages:
            images.append(image)
        if len(parts) == 3 and parts[1].upper() == "AS":
            stages.add(parts[2])
    return images


@pytest.mark.parametrize("name", list(DOCKERFILES))
def test_base_images_are_pinned_to_an_exact_version(name: str) -> None:
    images = _base_images(DOCKERFILES[name])
    assert images
    for image in images:
        repo, _, tag = image.partition("@")[0].rpartition(":")
        assert repo and tag and tag != "latest", f"{name}: {image} is not pinned"
        assert re.match(r"^\d+\.\d+\.\d+-", tag), f"{name}: {image}: tag is not an exact version"


@pytest.mark.parametrize("name", list(DOCKERFILES))
def test_user_is_non_root_and_numeric(name: str) -> None:
    users = [rest for i, rest in _instructions(DOCKERFILES[name]) if i == "USER"]
    assert users, f"{name}: no USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) != 0, f"{name}: USER {users[-1]} (numeric, not 0)"
    assert not gid or (gid.isdigit() and int(gid) != 0)
    # The chart's pods run as the same uid.
    assert f"runAsUser: {uid}" in (CHART / "values.yaml").read_text()


def test_runner_has_no_mcpyard_entrypoint() -> None:
    # The operator's Deployment passes `mcpyard bridge --port N -- CMD` as args: an ENTRYPOINT
    # of `mcpyard` would turn that into `mcpyard mcpyard bridge ...`.
    (entrypoint,) = [r for i, r in _instructions(DOCKERFILES["runner"]) if i == "ENTRYPOINT"]
    assert "mcpyard" not in entrypoint
    from mcpyard.compiler import children

    (deployment,) = [
        o
        for o in children.hosted(
            _server(),
            image=None,
            command=("uvx", "mcp-server-time"),
            transport="stdio",
            port=8080,
            replicas=1,
            runner_image="runner:test",
        )
        if o["kind"] == "Deployment"
    ]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert "command" not in container and container["args"][:2] == ["mcpyard", "bridge"]


def _server() -> object:
    from mcpyard.compiler.config import ServerConfig

    return ServerConfig(
        slug="time",
        name="time",
        namespace="team",
        mode="hosted",
        transport="stdio",
        command=("uvx", "mcp-server-time"),
    )


def test_runner_has_python_node_and_uv() -> None:
    text = DOCKERFILES["runner"].read_text()
    assert "node:" in text and "npx" in text
    assert "uv==" in text and "UV_VERSION" in text
    assert "python:" in text


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    from mcpyard import cli

    parser = cli.build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def _needs(command: str) -> argparse.ArgumentParser:
    choices = _subcommands()
    assert command in choices, (
        f"`mcpyard {command}` does not exist yet (subcommands: {sorted(choices)}); the images "
        f"and the chart call it"
    )
    return choices[command]


def test_the_image_entrypoint_and_serve_exist() -> None:
    entry = [r for i, r in _instructions(DOCKERFILES["mcpyard"]) if i == "ENTRYPOINT"]
    assert entry == ['["mcpyard"]']
    _needs("serve").parse_args(
        ["/manifests", "--host", "0.0.0.0", "--port", "8080", "--state-dir", "/var/lib/mcpyard"]
    )


def test_operator_command_the_chart_runs_exists(chart_render: Render) -> None:
    parser = _needs("operator")
    for values in (
        {},
        {"operator": {"namespaces": ["a", "b"], "verbose": True}},
        {"operator": {"replicas": 2, "peering": {"enabled": True}}},
    ):
        dep = chart_render(values).one("Deployment", "mcpyard-operator")
        args = dep["spec"]["template"]["spec"]["containers"][0]["args"]
        assert args[0] == "operator"
        parser.parse_args(args[1:])  # exits (SystemExit) on an unknown option


def test_gateway_command_the_chart_runs_exists(chart_render: Render) -> None:
    parser = _needs("gateway")
    parser.parse_args([])
    for values in ({}, {"gateway": {"extraArgs": ["--log-level", "debug"]}}):
        dep = chart_render(values).one("Deployment", "mcpyard-gateway")
        args = dep["spec"]["template"]["spec"]["containers"][0]["args"]
        assert args[0] == "gateway"
        parser.parse_args(args[1:])


@pytest.mark.parametrize("component", ["operator", "gateway"])
def test_every_mcpyard_variable_the_chart_sets_is_read(
    chart_render: Render, component: str
) -> None:
    # A variable the command does not read would be silently ignored: each one the chart
    # sets must be named in the command's help, where every option names its variable.
    values = {
        "gateway": {
            "allowedOrigins": ["https://app.example.com"],
            "redis": {"url": "redis://r:6379/0"},
        }
    }
    dep = chart_render(values).one("Deployment", f"mcpyard-{component}")
    env = dep["spec"]["template"]["spec"]["containers"][0]["env"]
    names = {e["name"] for e in env if e["name"].startswith("MCPYARD_")}
    assert names
    text = _needs(component).format_help()
    assert {n for n in names if n not in text} == set()


def test_bridge_command_the_runner_runs_exists() -> None:
    _needs("bridge").parse_args(["--port", "8080", "--", "uvx", "mcp-server-time"])


def test_the_cluster_extra_the_image_installs_exists() -> None:
    extras = _args(DOCKERFILES["mcpyard"])["MCPYARD_EXTRAS"]
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"].get(
        "optional-dependencies", {}
    )
    assert extras in declared, (
        f"docker/Dockerfile installs mcpyard[{extras}] (kopf, kubernetes, redis for the cluster) "
        f"but pyproject.toml has no such extra: {sorted(declared)}"
    )
