"""The protocol layer's text/event-stream parser and emitter (moved from the upstream tests)."""

from __future__ import annotations

import orjson
import pytest

from mcpyard.mcp import sse


@pytest.mark.parametrize(
    ("chunks", "events"),
    [
        pytest.param([b"event: message\ndata: {}\n\n"], [(b"message", b"{}")], id="one"),
        pytest.param([b"data: a\r\ndata: b\r\n\r\n"], [(b"message", b"a\nb")], id="crlf-multiline"),
        pytest.param(
            [b"ev", b"ent: endpoint\nda", b"ta: /messages?x=1", b"\n", b"\n"],
            [(b"endpoint", b"/messages?x=1")],
            id="split-anywhere",
        ),
        pytest.param([b": keep-alive\n\ndata:x\n\n"], [(b"message", b"x")], id="comment-no-space"),
        pytest.param([b"id: 7\nretry: 100\n\n"], [], id="no-data-no-event"),
    ],
)
def test_sse_parser(chunks: list[bytes], events: list[tuple[bytes, bytes]]) -> None:
    parser = sse.Parser()
    got = [event for chunk in chunks for event in parser.feed(chunk)]
    assert got == events


def test_sse_parser_keeps_id_and_retry_and_handles_a_large_event() -> None:
    parser = sse.Parser()
    assert parser.feed(b"id: 7\nretry: 100\n\n") == []
    assert (parser.last_id, parser.retry_ms) == ("7", 100)
    big = b"x" * 5_000_000
    got = []
    data = b"data: " + big + b"\n\n"
    for i in range(0, len(data), 65536):
        got += parser.feed(data[i : i + 65536])
    assert got == [(b"message", big)]


def test_an_event_escapes_the_line_separators_that_splitlines_takes_for_line_ends() -> None:
    data = orjson.dumps({"text": "a\u2028b\u2029c\u0085d"})
    framed = sse.event(data)
    assert len(framed.decode().splitlines()) == 3  # event, data, the blank line
    ((name, got),) = sse.Parser().feed(framed)
    assert name == b"message" and orjson.loads(got) == orjson.loads(data)
