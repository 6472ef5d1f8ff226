"""Member authentication: ``Authorization: Bearer mwt_...`` against the live configuration.

Every request is checked again, so a revocation (member removed or disabled by a reload, or
``expires`` passing) bites on the very next request, also inside an open session. The token is
hashed (SHA-256) and looked up by hash; only hashes are kept, and they are compared in constant
time. The token never leaves this module: it is not logged and not forwarded upstream.
"""

from __future__ import annotations

import hmac
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

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
    client: str | None = None
    """The OAuth client acting for the member (its client_id); None for an ``mwt_`` token."""
    grant: str | None = None
    """The OAuth grant whose access token this is; None for an ``mwt_`` token."""

    @property
    def name(self) -> str:
        return self.config.name

    def active(self, now: float) -> bool:
        """The compiler's rule (:meth:`MemberConfig.active`) at the epoch time ``now``."""
        return self.config.active(datetime.fromtimestamp(now, UTC))


def index(namespace: str, members: Iterable[MemberConfig]) -> dict[str, Member]:
    """Members by token hash; members without a token cannot log in."""
    out = {}
    for m in members:
        if m.token_hash:
            out[m.token_hash] = Member(m, f"{namespace}/{m.name}")
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


class Failures:
    """Failed authentications per client address: a limit, and aggregated call records.

    Tokens carry 256 random bits, so the limit is not about guessing: it keeps anyone who
    can reach the port from costing the gateway a record, a log line and a body read per
    request. Each address may fail ``per_minute`` times a minute (a token bucket); beyond
    that its failures are answered 429 with ``Retry-After``. A valid token from the same
    address is always served: a member behind the same NAT is never locked out.

    Records are aggregated per (workspace, address): the first failure of a window of
    ``record_seconds`` is recorded at once, the rest of the window is folded into the next
    record (or the one :meth:`drain` hands over at shutdown) as a count. Metrics count every
    failure. ``clock`` is monotonic seconds (tests inject one).
    """

    MAX_ADDRESSES = 10_000
    """Addresses tracked at most; the ones whose bucket has refilled are forgotten first."""

    def __init__(self, per_minute: int = 30, record_seconds: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(max(1, per_minute))
        self.rate = self.capacity / 60.0
        self.record_seconds = record_seconds
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        """address -> (tokens left, when counted)."""
        self._windows: dict[tuple[str, str], tuple[float, int]] = {}
        """(workspace, address) -> (when its window opened, failures folded since)."""

    def throttled(self, address: str) -> int | None:
        """Count one failure of ``address``: None while within its limit, else the seconds
        until it may fail again."""
        now = self.clock()
        tokens, then = self._buckets.get(address, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - then) * self.rate)
        if tokens >= 1.0:
            self._buckets[address] = (tokens - 1.0, now)
            if len(self._buckets) > self.MAX_ADDRESSES:
                self._forget(now)
            return None
        self._buckets[address] = (tokens, now)
        return max(1, math.ceil((1.0 - tokens) / self.rate))

    def due(self, workspace: str, address: str) -> int | None:
        """How many failures to record now (this one and those folded since the last
        record), or None when this one is folded into the next record."""
        now = self.clock()
        key = (workspace, address)
        window = self._windows.get(key)
        if window is not None and now - window[0] < self.record_seconds:
            self._windows[key] = (window[0], window[1] + 1)
            return None
        self._windows[key] = (now, 0)
        if len(self._windows) > self.MAX_ADDRESSES:
            self._windows = {k: w for k, w in self._windows.items()
                             if w[1] or now - w[0] < self.record_seconds}
        return 1 + (window[1] if window is not None else 0)

    def drain(self) -> list[tuple[str, str, int]]:
        """(workspace, address, count) of the failures folded and not yet recorded."""
        out = [(ws, addr, n) for (ws, addr), (_, n) in sorted(self._windows.items()) if n]
        self._windows = {k: (t, 0) for k, (t, _) in self._windows.items()}
        return out

    def _forget(self, now: float) -> None:
        full = [a for a, (t, at) in self._buckets.items()
                if t + (now - at) * self.rate >= self.capacity]
        for address in full or list(self._buckets)[: len(self._buckets) // 2]:
            del self._buckets[address]
