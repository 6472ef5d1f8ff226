"""Redaction of injected secret values from everything that leaves the gateway.

The gateway knows every value it injects on an upstream hop (bearer, header and ``env``
secrets). An upstream may echo one back (``invalid API key sk_live_...``: real APIs do), in
a JSON-RPC error, a tool result, a log message or a progress note. :class:`Redactor` finds
each value, and its common encodings, and blanks it with :data:`MARK`:

- the value as is, and as JSON escapes it;
- URL-encoded (``quote`` with and without ``/`` kept, ``quote_plus``);
- base64 and base64url, at each of the three byte alignments, so that the value is found
  inside a longer encoded string too (``Basic base64(user:key)``): only the characters that
  depend on the value's bytes alone are searched for;
- hex (both cases: matching ignores ASCII case throughout).

Values shorter than :data:`MIN_LENGTH` characters (and encodings that would be shorter than
that) are not searched for: they would blank ordinary text, and no real credential is that
short.

This is the one rule; the router applies it where replies and call records leave it, the
relay where an upstream's notes and requests reach a client, ``/readyz`` to its body, and
:class:`LogFilter` to the gateway's log lines. The matcher holds the plaintext values (as
the vault reveals them for injection) for as long as a serving server uses them.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, TypeVar, cast
from urllib.parse import quote, quote_plus

import orjson

from mcpyard.mcp import jsonrpc as rpc

if TYPE_CHECKING:
    from mcpyard.gateway import _relay

MARK = "[redacted]"
MIN_LENGTH = 6
"""Shortest value (and shortest encoded form) searched for."""


def forms(value: str) -> set[str]:
    """Every form of ``value`` that is searched for (plus their JSON escapes, for bytes)."""
    raw = value.encode()
    out = {value, quote(value, safe=""), quote(value), quote_plus(value), raw.hex()}
    for pad in range(3):
        encoded = base64.b64encode(b"\0" * pad + raw).decode()
        first = -(-8 * pad // 6)  # the first character made of the value's bits only
        last = 8 * (pad + len(raw)) // 6  # one past the last such character
        core = encoded[first:last]
        out.add(core)
        out.add(core.replace("+", "-").replace("/", "_"))
    return {f for f in out if len(f) >= MIN_LENGTH}


J = TypeVar("J", bound=rpc.JSONLike)

class Redactor:
    """Finds the given secret values (and their encodings) in text, bytes and messages.

    Finding is a plain substring search of each form in the lowered text (C speed, no regex):
    what holds no secret, nearly everything, costs that alone. The regex that blanks runs
    only on a string where a form was found."""

    __slots__ = ("_bytes", "_pattern", "_text", "size")

    def __init__(self, values: Iterable[str] = ()) -> None:
        needles: set[str] = set()
        for value in values:
            if len(value) >= MIN_LENGTH:
                needles |= forms(value)
        self.size = len(needles)
        """How many forms are searched for (0: this redactor changes nothing)."""
        lowered = {n.lower() for n in needles}
        self._text = tuple(sorted(lowered))
        self._bytes = tuple(sorted({n.encode() for n in lowered}
                                   | {orjson.dumps(n)[1:-1] for n in lowered}))
        # Longest first, so that a form is never cut short by one of its prefixes.
        ordered = sorted(needles, key=lambda n: (-len(n), n))
        self._pattern = (re.compile("|".join(map(re.escape, ordered)), re.IGNORECASE)
                         if needles else None)

    def __repr__(self) -> str:
        return f"<Redactor: {self.size} forms>"

    def text(self, text: str) -> str:
        """``text`` with every secret form blanked."""
        if self._pattern is None:
            return text
        lowered = text.lower()
        if not any(n in lowered for n in self._text):
            return text
        return self._pattern.sub(MARK, text)

    def found(self, data: bytes) -> bool:
        """Whether encoded JSON ``data`` holds a secret form (no decoding)."""
        if not self._bytes:
            return False
        lowered = data.lower()
        return any(n in lowered for n in self._bytes)

    def value(self, obj: J) -> J:
        """``obj`` (decoded JSON: dicts, lists, strings...) with every string redacted,
        keys included; what holds no secret is returned as the same object."""
        if self._pattern is None:
            return obj
        return cast(J, self._walk(obj))

    def _walk(self, obj: object) -> object:
        """``obj``: anything orjson encodes (a Fragment included); the same shape back."""
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, dict):
            return {self.text(k) if isinstance(k, str) else k: self._walk(v)
                    for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return [self._walk(v) for v in obj]
        if isinstance(obj, orjson.Fragment):
            return self._walk(orjson.loads(obj.contents))
        return obj

    def message(self, msg: rpc.Message) -> rpc.Message:
        """A JSON-RPC message with every secret form blanked (the same dict when clean)."""
        if self._pattern is None or not self.found(orjson.dumps(msg)):
            return msg
        return cast(rpc.Message, self._walk(msg))

    def encode(self, obj: object) -> bytes:
        """``obj`` encoded as JSON, with every secret form blanked (one search when clean)."""
        data = orjson.dumps(obj)
        if self._pattern is None or not self.found(data):
            return data
        return orjson.dumps(self._walk(obj))


class Reply:
    """A request's way back (``_relay.Reply``) that blanks secret forms from what an upstream
    sends the client during the call: progress, log messages, and its own requests."""

    __slots__ = ("_inner", "_redactor")

    def __init__(self, inner: _relay.Reply, redactor: Redactor) -> None:
        self._inner = inner
        self._redactor = redactor

    @property
    def log_level(self) -> int | None:
        level: int | None = self._inner.log_level
        return level

    @property
    def capabilities(self) -> rpc.JSONObject | None:
        caps: rpc.JSONObject | None = self._inner.capabilities
        return caps

    @property
    def forward_headers(self) -> dict[str, str] | None:
        headers: dict[str, str] | None = self._inner.forward_headers
        return headers

    @property
    def modern(self) -> bool:
        return bool(self._inner.modern)

    def notify(self, message: rpc.Message) -> None:
        self._inner.notify(self._redactor.message(message))

    def ask(self, method: str, params: rpc.JSONObject | None) -> Awaitable[rpc.JSONObject]:
        cleaned = params if params is None else self._redactor.message(params)
        answer: Awaitable[rpc.JSONObject] = self._inner.ask(method, cleaned)
        return answer

    @property
    def standing(self) -> Reply:
        """The session's own way back, blanked alike."""
        return Reply(self._inner.standing, self._redactor)


NONE = Redactor()
"""A redactor without values: changes nothing."""


class LogFilter(logging.Filter):
    """Blanks secret forms from log records (message, arguments and traceback text).

    ``current`` is called per record, so the filter always uses the live configuration's
    redactor."""

    def __init__(self, current: Callable[[], Redactor]) -> None:
        super().__init__()
        self._current = current

    def filter(self, record: logging.LogRecord) -> bool:
        redactor: Redactor = self._current()
        if redactor.size == 0:
            return True
        message = record.getMessage()
        cleaned = redactor.text(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redactor.text(record.exc_text)
        if record.stack_info:
            record.stack_info = redactor.text(record.stack_info)
        return True


LOGGERS = ("mcpyard.gateway", "mcpyard.gateway.upstream", "mcpyard.gateway.upstream.process",
           "uvicorn.error", "mcpyard.cli")
"""The loggers whose lines may carry what an upstream said (filters do not propagate to child
loggers, so each one is named)."""
