"""Member authentication: ``Authorization: Bearer mwt_...`` against the live configuration.

Every request is checked again, so a revocation (member removed or disabled by a reload, or
``expires`` passing) bites on the very next request, also inside an open session. The token is
hashed (SHA-256) and looked up by hash; only hashes are kept, and they are compared in constant
time. The token never leaves this module: it is not logged and not forwarded upstream.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Iterable
from dataclasses import dataclass

from mcpyard.compiler.config import MemberConfig
from mcpyard.crypto import tokens

CHALLENGE_MISSING = b'Bearer realm="mcpyard"'
CHALLENGE_INVALID = b'Bearer realm="mcpyard", error="invalid_token"'


@dataclass(frozen=True, slots=True)
class Member:
    """An authenticated member."""

    config: MemberConfig
    key: str
    """``namespace/name``: how upstream sessions and logs name the member."""
    expires: float | None

    @property
    def name(self) -> str:
        return self.config.name

    def active(self, now: float) -> bool:
        return not self.config.disabled and (self.expires is None or now < self.expires)


def index(namespace: str, members: Iterable[MemberConfig]) -> dict[str, Member]:
    """Members by token hash; members without a token cannot log in."""
    out = {}
    for m in members:
        if m.token_hash:
            out[m.token_hash] = Member(m, f"{namespace}/{m.name}",
                                       m.expires.timestamp() if m.expires else None)
    return out


def authenticate(members: dict[str, Member], authorization: bytes | None) -> Member | bytes:
    """The member presenting ``authorization``, or the ``WWW-Authenticate`` challenge of a 401."""
    if not authorization:
        return CHALLENGE_MISSING
    scheme, _, credential = authorization.partition(b" ")
    if scheme.lower() != b"bearer":
        return CHALLENGE_MISSING if not credential else CHALLENGE_INVALID
    try:
        token = credential.strip().decode("ascii")
    except UnicodeDecodeError:
        return CHALLENGE_INVALID
    if not tokens.is_well_formed(token):
        return CHALLENGE_INVALID
    digest = tokens.hash(token)
    member = members.get(digest)
    if (member is None or not member.config.token_hash
            or not hmac.compare_digest(member.config.token_hash, digest)
            or not member.active(time.time())):
        return CHALLENGE_INVALID
    return member
