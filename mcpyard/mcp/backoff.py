"""The delays of a loop that retries something that failed: a stream reconnecting, a process
restarting, a watch listing again. One rule for all of them: wait ``first`` seconds, doubling
after each failure up to ``cap``; a success starts again from ``first``."""

from __future__ import annotations

import asyncio


class Backoff:
    __slots__ = ("cap", "delay", "first")

    def __init__(self, first: float = 0.5, cap: float = 30.0) -> None:
        self.first = first
        self.cap = cap
        self.delay = first
        """What the next :meth:`sleep` waits."""

    def reset(self) -> None:
        """It worked: the next failure waits ``first`` again."""
        self.delay = self.first

    async def sleep(self) -> None:
        """Wait the current delay, and double the next one (up to ``cap``)."""
        delay = self.delay
        self.delay = min(delay * 2, self.cap)
        await asyncio.sleep(delay)
