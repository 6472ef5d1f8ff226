"""`mcpyard token new`, run as a user runs it."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from mcpyard import cli
from mcpyard.crypto import tokens


def test_token_new_json_prints_exactly_token_and_hash() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mcpyard", "token", "new", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    out = json.loads(done.stdout)
    assert list(out) == ["token", "tokenHash"]
    assert tokens.is_well_formed(out["token"])
    assert out["tokenHash"] == tokens.hash(out["token"])
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", out["tokenHash"])
    assert done.stderr == ""


def test_token_new_prints_the_token_once_and_the_line_to_paste(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["token", "new"]) == 0
    out = capsys.readouterr().out
    found = re.findall(r"mwt_[A-Za-z0-9_-]+", out)
    assert len(found) == 1
    (line,) = [x.strip() for x in out.splitlines() if x.strip().startswith("tokenHash: ")]
    assert line == f"tokenHash: {tokens.hash(found[0])}"
    assert "shown once" in out


def test_each_run_makes_a_new_token(capsys: pytest.CaptureFixture[str]) -> None:
    seen = set()
    for _ in range(3):
        assert cli.main(["token", "new", "--json"]) == 0
        seen.add(json.loads(capsys.readouterr().out)["token"])
    assert len(seen) == 3


def test_token_without_action_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["token"])
    assert exc.value.code == 2
    assert "new" in capsys.readouterr().err
