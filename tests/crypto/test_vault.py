"""The master key file and the in-memory AES-256-GCM vault."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from mcpyard import errors
from mcpyard.compiler.config import SecretRef
from mcpyard.crypto import vault

VALUE = "sk-live-0123456789abcdef"


@pytest.fixture
def box() -> vault.Vault:
    return vault.Vault(os.urandom(32))


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_seal_then_reveal_round_trip(box: vault.Vault) -> None:
    box.seal("team-eng/github-token/token", VALUE)
    box.seal("team-eng/unicode/key", "pässwörd ✓")
    assert box.reveal("team-eng/github-token/token") == VALUE
    assert box.reveal("team-eng/unicode/key") == "pässwörd ✓"


def test_reveal_accepts_a_secret_ref(box: vault.Vault) -> None:
    ref = SecretRef(namespace="team-eng", name="github-token", key="token")
    box.seal(ref.identity, VALUE)
    assert box.reveal(ref) == VALUE
    assert ref in box
    assert ref.identity in box


def test_values_are_not_kept_in_clear(box: vault.Vault) -> None:
    box.seal("ns/s/k", VALUE)
    nonce, ciphertext = box._sealed["ns/s/k"]
    assert len(nonce) == 12
    assert VALUE.encode() not in ciphertext


def test_sealing_twice_uses_a_fresh_nonce(box: vault.Vault) -> None:
    box.seal("ns/s/k", VALUE)
    first = box._sealed["ns/s/k"]
    box.seal("ns/s/k", VALUE)
    assert box._sealed["ns/s/k"][0] != first[0]
    assert box._sealed["ns/s/k"][1] != first[1]


def test_a_flipped_ciphertext_byte_fails_and_names_only_the_identity(box: vault.Vault) -> None:
    box.seal("ns/s/k", VALUE)
    nonce, ciphertext = box._sealed["ns/s/k"]
    box._sealed["ns/s/k"] = (nonce, bytes([ciphertext[0] ^ 0x01]) + ciphertext[1:])
    with pytest.raises(errors.SecretError, match="ns/s/k") as exc:
        box.reveal("ns/s/k")
    assert VALUE not in str(exc.value)


def test_ciphertext_moved_to_another_identity_fails(box: vault.Vault) -> None:
    box.seal("team-eng/a/token", VALUE)
    box._sealed["team-data/a/token"] = box._sealed["team-eng/a/token"]
    with pytest.raises(errors.SecretError, match="team-data/a/token"):
        box.reveal("team-data/a/token")
    assert box.reveal("team-eng/a/token") == VALUE


def test_another_master_key_cannot_reveal(box: vault.Vault) -> None:
    box.seal("ns/s/k", VALUE)
    thief = vault.Vault(os.urandom(32))
    thief._sealed.update(box._sealed)
    with pytest.raises(errors.SecretError):
        thief.reveal("ns/s/k")


def test_unknown_identity_is_a_secret_error(box: vault.Vault) -> None:
    with pytest.raises(errors.SecretError, match="ns/missing/k: not in the vault"):
        box.reveal("ns/missing/k")


def test_discard_identities_and_contains(box: vault.Vault) -> None:
    box.seal("ns/a/k", "1")
    box.seal("ns/b/k", "2")
    assert box.identities() == frozenset({"ns/a/k", "ns/b/k"})
    box.discard("ns/a/k")
    box.discard("ns/never/k")
    assert "ns/a/k" not in box
    assert "ns/b/k" in box
    assert len(box) == 1
    with pytest.raises(errors.SecretError):
        box.reveal("ns/a/k")


def test_repr_never_shows_values(box: vault.Vault) -> None:
    box.seal("ns/s/k", VALUE)
    assert VALUE not in repr(box)
    assert VALUE not in str(box)
    assert "1 sealed" in repr(box)


def test_a_key_of_the_wrong_size_is_refused() -> None:
    with pytest.raises(errors.SecretError, match="32 bytes"):
        vault.Vault(b"short")


def test_master_key_is_created_0600_in_a_0700_directory(tmp_path: Path) -> None:
    state = tmp_path / "state" / "nested"
    old = os.umask(0)  # the widest umask: the mode must not depend on it
    try:
        key = vault.load_or_create_master_key(state)
    finally:
        os.umask(old)
    assert len(key) == 32
    assert mode(state / "master.key") == 0o600
    assert mode(state) == 0o700
    assert [p.name for p in state.iterdir()] == ["master.key"]  # no temporary left behind


def test_master_key_is_reused_on_the_second_load(tmp_path: Path) -> None:
    first = vault.load_or_create_master_key(tmp_path)
    second = vault.load_or_create_master_key(tmp_path)
    assert first == second
    assert (tmp_path / "master.key").read_bytes() == first


def test_concurrent_first_runs_agree_on_one_key(tmp_path: Path) -> None:
    keys: list[bytes] = []
    barrier = threading.Barrier(8)

    def load() -> None:
        barrier.wait()
        keys.append(vault.load_or_create_master_key(tmp_path))

    threads = [threading.Thread(target=load) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(keys) == 8
    assert len(set(keys)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["master.key"]


@pytest.mark.parametrize("bad_mode", [0o644, 0o640, 0o604, 0o660])
def test_a_key_file_others_can_read_is_refused(tmp_path: Path, bad_mode: int) -> None:
    vault.load_or_create_master_key(tmp_path)
    (tmp_path / "master.key").chmod(bad_mode)
    with pytest.raises(errors.SecretError, match=f"mode {bad_mode:04o}.*chmod 600"):
        vault.load_or_create_master_key(tmp_path)


def test_a_key_file_of_the_wrong_size_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    path.write_bytes(b"x" * 31)
    path.chmod(0o600)
    with pytest.raises(errors.SecretError, match="31 bytes, expected 32"):
        vault.load_or_create_master_key(tmp_path)


def test_a_symlinked_key_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_bytes(os.urandom(32))
    target.chmod(0o600)
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "master.key").symlink_to(target)
    with pytest.raises(errors.SecretError, match="master key"):
        vault.load_or_create_master_key(tmp_path / "state")
