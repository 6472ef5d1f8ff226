"""Fixtures for the crypto tests: age keys made here and the real sops binary."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from mcpyard.crypto import sops

SopsEncrypt = Callable[..., str]


class AgeKey:
    """An age identity made for one test session, and its recipient."""

    def __init__(self) -> None:
        self.identity, self.recipient = sops.age_keygen()

    def write(self, path: Path) -> Path:
        path.write_text(f"# public key: {self.recipient}\n{self.identity}\n")
        path.chmod(0o600)
        return path


@pytest.fixture(scope="session")
def age_key() -> AgeKey:
    return AgeKey()


@pytest.fixture(scope="session")
def other_age_key() -> AgeKey:
    return AgeKey()


@pytest.fixture
def no_age_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No age identity anywhere sops looks: env, ~/.config/sops/age/keys.txt, ~/.ssh."""
    for name in (*sops.AGE_ENV, "SOPS_AGE_RECIPIENTS", "MCPYARD_AGE_RECIPIENTS"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))


@pytest.fixture
def plain_sops(tmp_path: Path) -> SopsEncrypt:
    """Encrypt a YAML text with plain ``sops --encrypt`` (whole-document MAC), as a user would."""

    def encrypt(text: str, *recipients: str) -> str:
        path = tmp_path / "plain-secret.yaml"
        path.write_text(text)
        done = subprocess.run(
            [
                sops.binary(),
                "--disable-version-check",
                "--encrypt",
                "--encrypted-regex",
                sops.ENCRYPTED_REGEX,
                "--age",
                ",".join(recipients),
                str(path),
            ],
            capture_output=True,
            text=True,
            check=True,
            cwd=tmp_path,
            env=dict(os.environ, SOPS_DISABLE_VERSION_CHECK="true"),
        )
        return done.stdout

    return encrypt
