"""Member tokens: format, checksum, hash format and constant-time matching."""

from __future__ import annotations

import hashlib
import re

import pytest

from mcpyard.api.v1alpha1 import member
from mcpyard.crypto import tokens

TOKEN = re.compile(r"mwt_[A-Za-z0-9_-]{43}[A-Za-z0-9]{6}")
BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def test_new_token_has_prefix_random_body_and_checksum() -> None:
    token = tokens.new()
    assert TOKEN.fullmatch(token), token
    assert tokens.is_well_formed(token)


def test_new_tokens_are_unique() -> None:
    made = {tokens.new() for _ in range(2000)}
    assert len(made) == 2000


def test_checksum_catches_every_single_changed_character() -> None:
    token = tokens.new()
    for i in range(len(tokens.PREFIX), len(token)):
        for replacement in (BASE64URL[(BASE64URL.index(token[i]) + 1) % 62], "x", "Q"):
            if replacement == token[i]:
                continue
            changed = token[:i] + replacement + token[i + 1 :]
            assert not tokens.is_well_formed(changed), (i, changed)


def test_checksum_catches_swapped_neighbours() -> None:
    token = tokens.new()
    body = len(tokens.PREFIX)
    swaps = [
        token[:i] + token[i + 1] + token[i] + token[i + 2 :]
        for i in range(body, len(token) - 1)
        if token[i] != token[i + 1]
    ]
    assert swaps
    assert not any(tokens.is_well_formed(s) for s in swaps)


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda t: "mwx_" + t[4:], id="wrong-prefix"),
        pytest.param(lambda t: t[4:], id="no-prefix"),
        pytest.param(lambda t: t[:-1], id="truncated"),
        pytest.param(lambda t: t[:20] + t[-6:], id="short-body"),
        pytest.param(lambda t: t + "A", id="extra-character"),
        pytest.param(lambda t: t[:10] + "+" + t[11:], id="not-url-safe"),
        pytest.param(lambda t: t[:-6] + "!!!!!!", id="bad-checksum-charset"),
        pytest.param(lambda t: t.upper(), id="upper-case"),
        pytest.param(lambda t: " " + t, id="leading-space"),
        pytest.param(lambda t: "", id="empty"),
    ],
)
def test_malformed_tokens_are_refused(mangle: object) -> None:
    assert callable(mangle)
    assert not tokens.is_well_formed(mangle(tokens.new()))


def test_hash_is_the_member_token_hash_format() -> None:
    token_hash = tokens.hash(tokens.new())
    assert re.fullmatch(member.TOKEN_HASH_PATTERN, token_hash)
    assert re.fullmatch(r"^sha256:[0-9a-f]{64}$", token_hash)


def test_hash_is_sha256_of_the_token() -> None:
    expected = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert tokens.hash("abc") == expected
    token = tokens.new()
    assert tokens.hash(token) == "sha256:" + hashlib.sha256(token.encode()).hexdigest()


def test_matches_only_its_own_hash() -> None:
    token, other = tokens.new(), tokens.new()
    assert tokens.matches(token, tokens.hash(token))
    assert not tokens.matches(other, tokens.hash(token))
    assert not tokens.matches(token, tokens.hash(token).upper())
    assert not tokens.matches(token, "")


@pytest.mark.parametrize("token_hash", ["sha256:é", "sha256:\ud800", "garbage"])
def test_matches_is_false_not_an_error_for_odd_hashes(token_hash: str) -> None:
    assert tokens.matches(tokens.new(), token_hash) is False


def test_hash_of_odd_strings_does_not_raise_and_stays_distinct() -> None:
    assert tokens.hash("mwt_\ud800") != tokens.hash("mwt_?")
