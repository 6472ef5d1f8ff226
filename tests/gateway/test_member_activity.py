"""Member activity is one rule (``MemberConfig.active``): the compiler's status and counts, the
gateway's per-request check and its counts all give the same answer at the same moment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mcpyard.compiler.config import MemberConfig
from mcpyard.crypto import tokens
from mcpyard.gateway.downstream import _auth

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
TOKEN = tokens.new()


def member(*, disabled: bool = False, expires: datetime | None = None,
           token: bool = True) -> MemberConfig:
    return MemberConfig(name="alice", user="alice@example.com", role="member",
                        token_hash=tokens.hash(TOKEN) if token else None,
                        requests_per_minute=None, expires=expires, disabled=disabled)


@pytest.mark.parametrize(("config", "active", "signs_in"), [
    pytest.param(member(), True, True, id="plain"),
    pytest.param(member(disabled=True), False, False, id="disabled"),
    pytest.param(member(expires=NOW + timedelta(seconds=1)), True, True, id="expires-later"),
    pytest.param(member(expires=NOW), False, False, id="expires-now"),
    pytest.param(member(expires=NOW - timedelta(days=1)), False, False, id="expired"),
    pytest.param(member(disabled=True, expires=NOW + timedelta(days=1)), False, False,
                 id="disabled-not-expired"),
    pytest.param(member(token=False), True, False, id="waiting-for-a-token"),
])
def test_one_rule_for_compiler_and_gateway(config: MemberConfig, active: bool,
                                           signs_in: bool) -> None:
    assert config.active(NOW) is active
    assert config.can_sign_in(NOW) is signs_in
    indexed = _auth.index("team", [config])
    if config.token_hash is None:
        assert indexed == {}  # nothing to present: the gateway cannot authenticate it
    else:
        assert indexed[config.token_hash].active(NOW.timestamp()) is active
