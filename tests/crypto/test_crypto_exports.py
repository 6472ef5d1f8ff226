"""The crypto modules' ``__all__`` name exactly their public members (ruff RUF022 sorts them)."""

from __future__ import annotations

import subprocess
import sys
import types

import pytest

from mcpyard.crypto import sops, tokens, unseal, vault


@pytest.mark.parametrize("module", [tokens, vault, sops, unseal], ids=lambda m: m.__name__)
def test_all_names_every_public_member_once(module: types.ModuleType) -> None:
    exported = module.__all__
    assert len(exported) == len(set(exported))
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and getattr(value, "__module__", module.__name__) == module.__name__
        and name != "annotations"
    }
    assert set(exported) == public


def test_crypto_imports_no_adapter_library() -> None:
    code = (
        "import sys, mcpyard.crypto.sops, mcpyard.crypto.tokens, mcpyard.crypto.vault\n"
        "import mcpyard.crypto.unseal\n"
        "print(sorted(m for m in ('starlette', 'kopf', 'kubernetes', 'httpx', 'aiohttp')"
        " if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
