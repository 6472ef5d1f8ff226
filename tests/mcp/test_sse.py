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


async def _sent(steps: list[tuple[str, bytes]]) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []

    async def send(message: dict[str, object]) -> None:
        out.append(message)

    response = sse.Response(send, [(b"x-extra", b"1")])
    for kind, data in steps:
        if kind == "event":
            await response.event(data)
        else:
            await response.finish(data, 404)
    return out


@pytest.mark.anyio
async def test_a_post_response_is_json_until_something_goes_before_the_answer() -> None:
    plain = await _sent([("finish", b'{"id":1}')])
    assert plain[0]["status"] == 404
    assert (b"content-type", b"application/json") in plain[0]["headers"]
    assert plain[1]["body"] == b'{"id":1}'

    streamed = await _sent([("event", b'{"n":1}'), ("event", b'{"n":2}'), ("finish", b'{"id":1}')])
    start, *bodies = streamed
    assert start["status"] == 200  # the status of an answer that ends a stream is the stream's
    assert (b"content-type", b"text/event-stream") in start["headers"]
    assert (b"x-extra", b"1") in start["headers"]
    assert [b["body"] for b in bodies] == [sse.event(b'{"n":1}'), sse.event(b'{"n":2}'),
                                           sse.event(b'{"id":1}')]
    assert [b["more_body"] for b in bodies] == [True, True, False]
