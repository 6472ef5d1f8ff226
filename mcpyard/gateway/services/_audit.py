"""The audit log: every call record as one JSON line, for a log pipeline (stdout) or a file.

The fields are the :class:`~mcpyard.gateway.services._records.CallRecord`'s, in its order, with
``time`` as RFC 3339 in UTC. Lines are written and flushed once per batch on a worker
thread, so a slow pipe or disk never stalls the event loop.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import orjson

from mcpyard.gateway.services import _records


def line(record: _records.CallRecord) -> bytes:
    """One record as a JSON line (with its newline)."""
    data = {name: getattr(record, name) for name in _records.FIELDS}
    data["time"] = _records.iso(record.time)
    return orjson.dumps(data, option=orjson.OPT_APPEND_NEWLINE)


class AuditSink:
    """A :class:`~mcpyard.gateway.services._records.RecordSink` writing JSON lines.

    ``target`` is ``-`` for standard output, or a file path opened for appending (its folder
    is created).
    """

    def __init__(self, target: str | Path) -> None:
        self.target = str(target)
        self._owned: BinaryIO | None = None
        if self.target == "-":
            self._stream: BinaryIO = sys.stdout.buffer
        else:
            path = Path(target)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._stream = self._owned = path.open("ab")

    def _write(self, records: Sequence[_records.CallRecord]) -> None:
        data = b"".join(map(line, records))
        if self._owned is None:
            sys.stdout.flush()  # what print() buffered goes first: lines never interleave
        self._stream.write(data)
        self._stream.flush()

    async def write(self, records: Sequence[_records.CallRecord]) -> None:
        await asyncio.to_thread(self._write, records)

    async def close(self) -> None:
        if self._owned is not None:
            self._owned.close()
            self._owned = None
