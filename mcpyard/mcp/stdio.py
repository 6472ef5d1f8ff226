"""The stdio transport's read loop: JSON-RPC messages as lines on a process's stdout.

One loop for every stdio client (the gateway's stdio upstream, the bridge's child session):
a line is one message or a batch; objects go to ``dispatch``; what is not JSON is logged and
skipped (a server printing a banner), a line longer than the stream's limit is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import orjson

from mcpyard.mcp.jsonrpc import JSONObject
from mcpyard.mcp.process import STREAM_LIMIT

_MAX_TEXT = 300


async def read(stdout: asyncio.StreamReader, dispatch: Callable[[JSONObject], None], *,
               label: str, log: logging.Logger, noise: int = logging.DEBUG) -> None:
    """Read messages until EOF (then return). ``label`` names the process in log lines;
    ``noise`` is the level at which non-JSON output is logged."""
    while True:
        try:
            line = await stdout.readline()
        except ValueError:
            log.error("%s: a message exceeded %d bytes; dropped", label, STREAM_LIMIT)
            continue
        if not line:
            return
        try:
            message = orjson.loads(line)
        except orjson.JSONDecodeError:
            if not line.isspace():
                text = line.decode("utf-8", "replace").replace("\n", " ").replace("\r", " ")
                if len(text) > _MAX_TEXT:
                    text = text[:_MAX_TEXT] + "..."
                log.log(noise, "%s stdout (not JSON): %s", label, text)
            continue
        for item in message if type(message) is list else (message,):
            if type(item) is dict:
                dispatch(item)


def write(stdin: asyncio.StreamWriter, body: bytes) -> None:
    """Write one encoded message as a line, without waiting; a process that is gone is the
    supervisor's to notice."""
    with contextlib.suppress(ConnectionError, RuntimeError):
        stdin.write(body + b"\n")
