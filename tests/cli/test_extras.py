"""An option whose backend is an extra that is not installed fails at once, naming the extra.

The extra is made missing the way Python sees a package that is not installed: its import
fails (``sys.modules[name] = None``), in the real command run as a user runs it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mcpyard import errors
from mcpyard.gateway.services import _limits

_RUN = ("import sys; sys.modules[{module!r}] = None; from mcpyard import cli; "
        "sys.exit(cli.main({argv!r}))")


def _without(module: str, *argv: str) -> subprocess.CompletedProcess[str]:
    code = _RUN.format(module=module, argv=list(argv))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)


@pytest.mark.parametrize(("module", "option", "value", "extra"), [
    pytest.param("redis", "--redis-url", "redis://127.0.0.1:1/0", "redis", id="redis"),
    pytest.param("psycopg", "--records-url", "postgresql://u:hunter2@127.0.0.1:1/db", "postgres",
                 id="postgres"),
])
def test_serve_names_the_extra_an_option_needs(tmp_path: Path, module: str, option: str,
                                               value: str, extra: str) -> None:
    done = _without(module, "serve", str(tmp_path), "--no-watch", option, value)
    assert done.returncode != 0
    assert f"{option} needs the {extra} extra: pip install 'mcpyard[{extra}]'" in done.stderr
    assert "hunter2" not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


def test_the_redis_limiter_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)
    monkeypatch.setitem(sys.modules, "redis.asyncio", None)
    with pytest.raises(errors.MCPyardError, match=r"pip install 'mcpyard\[redis\]'"):
        _limits.create_limiter("redis://127.0.0.1:1/0")
