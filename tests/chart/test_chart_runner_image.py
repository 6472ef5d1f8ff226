"""One runner image name: the operator's default (command line and settings), the compiler's
default (`mcpyard render`) and the chart's `runnerImage` are the same image."""

from __future__ import annotations

import pytest
from helmrender import Rendered

from mcpyard import __version__, operator
from mcpyard.cli import build_parser
from mcpyard.compiler import children


def test_operator_and_chart_default_to_the_same_runner_image(
    default_render: Rendered, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MCPYARD_RUNNER_IMAGE", raising=False)
    (deployment,) = [
        d for d in default_render.of_kind("Deployment") if "operator" in d["metadata"]["name"]
    ]
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    chart_image = args[args.index("--runner-image") + 1]
    assert chart_image == f"ghcr.io/mcpyard/mcpyard-runner:{__version__}"
    assert operator.Settings().runner_image == chart_image
    assert chart_image == children.RUNNER_IMAGE
    assert build_parser().parse_args(["operator"]).runner_image == chart_image
