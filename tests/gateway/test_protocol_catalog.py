"""Prompts, resources, resource templates and completion through the gateway, in both eras:
aggregated, namespaced (``slug__prompt``, ``mcpyard://slug/<uri>``), filtered per member,
paged, with the URIs inside results mapped and completion references routed."""

from __future__ import annotations

from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError
from prototools import (
    ALICE,
    BOB,
    CAROL,
    MODES,
    client,
    protocol_gateway,
    quiet_deprecated,
    upstreams,
)

from mcpyard.api.v1alpha1.member import Access
from mcpyard.compiler import naming

__all__ = ["upstreams"]

pytestmark = pytest.mark.anyio


def test_resource_uris_are_reversible_and_stay_uris() -> None:
    for slug, uri in [("one", "note://one/a"), ("fs", "file:///tmp/a%20b?x=1#y"),
                      ("x-1", "relative/path"), ("t", "item://t/{id}")]:
        mapped = naming.resource_uri(slug, uri)
        assert mapped.startswith(f"mcpyard://{slug}/")
        assert naming.split_uri(mapped) == (slug, uri)
    assert naming.split_uri("note://one/a") is None
    assert naming.split_uri("mcpyard://one") is None
    # A Member's access rules can name them (the globs the tests below give bob and carol).
    for glob in ("mcpyard://one/*", "mcpyard://two/note://two/[ab]"):
        assert Access(allow=[glob], deny=[glob]).allow == [glob]


@pytest.mark.parametrize("mode", MODES)
async def test_prompts_resources_templates_are_namespaced(
        settings_for: Any, upstreams: dict[str, str], mode: str) -> None:
    async with protocol_gateway(settings_for, upstreams) as gw, \
            client(gw.url("p"), ALICE, mode) as c:
        prompts = [p.name for p in (await c.list_prompts()).prompts]
        assert prompts == ["one__embedded", "one__greet", "two__embedded", "two__greet"]
        resources = [r.uri for r in (await c.list_resources()).resources]
        assert resources == ["mcpyard://one/note://one/a", "mcpyard://two/note://two/a"]
        templates = [t.uri_template for t in
                     (await c.list_resource_templates()).resource_templates]
        assert templates == ["mcpyard://one/item://one/{id}", "mcpyard://two/item://two/{id}"]

        got = await c.get_prompt("two__greet", {"who": "ann"})
        assert got.messages[0].content.text == "two: hello ann"  # type: ignore[union-attr]
        read = await c.read_resource("mcpyard://one/note://one/a")
        assert read.contents[0].uri == "mcpyard://one/note://one/a"
        assert read.contents[0].text == "one:note a"  # type: ignore[union-attr]
        # A template's expansion reads the upstream's expansion.
        read = await c.read_resource("mcpyard://two/item://two/42")
        assert read.contents[0].text == "two:item 42"  # type: ignore[union-attr]
        assert read.contents[0].uri == "mcpyard://two/item://two/42"


@pytest.mark.parametrize("mode", MODES)
async def test_uris_inside_results_are_mapped(
        settings_for: Any, upstreams: dict[str, str], mode: str) -> None:
    async with protocol_gateway(settings_for, upstreams) as gw, \
            client(gw.url("p"), ALICE, mode) as c:
        result = await c.call_tool("two__linked", {})
        link, embedded = result.content
        assert isinstance(link, types.ResourceLink) and link.uri == "mcpyard://two/note://two/a"
        assert isinstance(embedded, types.EmbeddedResource)
        assert embedded.resource.uri == "mcpyard://two/note://two/a"
        # ... and they can be read back through the gateway as they are.
        read = await c.read_resource(link.uri)
        assert read.contents[0].text == "two:note a"  # type: ignore[union-attr]
        prompt = await c.get_prompt("one__embedded", {"uri": "note://one/a"})
        content = prompt.messages[0].content
        assert isinstance(content, types.EmbeddedResource)
        assert content.resource.uri == "mcpyard://one/note://one/a"


@pytest.mark.parametrize("mode", MODES)
async def test_completion_refs_are_routed(
        settings_for: Any, upstreams: dict[str, str], mode: str) -> None:
    async with protocol_gateway(settings_for, upstreams) as gw, \
            client(gw.url("p"), ALICE, mode) as c:
        done = await c.complete(types.PromptReference(name="two__greet"),
                                {"name": "who", "value": "a"})
        assert done.completion.values == ["two:greet:a"]  # the upstream saw its own name
        done = await c.complete(
            types.ResourceTemplateReference(uri="mcpyard://one/item://one/{id}"),
            {"name": "id", "value": "4"})
        assert done.completion.values == ["one:item://one/{id}:4"]
        with pytest.raises(MCPError):
            await c.complete(types.PromptReference(name="nope__greet"),
                             {"name": "who", "value": "a"})


@pytest.mark.parametrize("mode", MODES)
async def test_access_rules_hide_prompts_and_resources(
        settings_for: Any, upstreams: dict[str, str], mode: str) -> None:
    async with protocol_gateway(settings_for, upstreams) as gw:
        async with client(gw.url("p"), BOB, mode) as c:
            assert [p.name for p in (await c.list_prompts()).prompts] == [
                "one__embedded", "one__greet"]
            assert [r.uri for r in (await c.list_resources()).resources] == [
                "mcpyard://one/note://one/a"]
            hidden = await _errors(c, "two__greet", "mcpyard://two/note://two/a")
            unknown = await _errors(c, "two__nothing", "mcpyard://two/note://two/zzz")
            # A hidden item answers exactly like one that does not exist.
            assert [(e.code, e.message.split(":")[0]) for e in hidden] == \
                [(e.code, e.message.split(":")[0]) for e in unknown]
        async with client(gw.url("p"), CAROL, mode) as c:
            assert [p.name for p in (await c.list_prompts()).prompts] == [
                "one__embedded", "one__greet"]
            templates = (await c.list_resource_templates()).resource_templates
            assert [t.uri_template for t in templates] == ["mcpyard://one/item://one/{id}"]
            with pytest.raises(MCPError):
                await c.read_resource("mcpyard://two/item://two/1")


async def _errors(c: Any, prompt: str, uri: str) -> list[Any]:
    out = []
    for call in (lambda: c.get_prompt(prompt, {"who": "x"}), lambda: c.read_resource(uri)):
        with pytest.raises(MCPError) as err:
            await call()
        out.append(err.value.error)
    return out


async def test_lists_page_with_opaque_cursors(settings_for: Any,
                                              upstreams: dict[str, str]) -> None:
    async with protocol_gateway(settings_for, upstreams, page_size=1) as gw, \
            client(gw.url("p"), ALICE, "legacy") as c:
        seen: list[str] = []
        cursor = None
        while True:
            page = await c.list_prompts(cursor=cursor)
            seen += [p.name for p in page.prompts]
            cursor = page.next_cursor
            if cursor is None:
                break
            assert "one__" not in cursor  # opaque
        assert seen == ["one__embedded", "one__greet", "two__embedded", "two__greet"]
        with pytest.raises(MCPError):
            await c.list_resources(cursor=cursor or "bogus")


async def test_subscriptions_forward_updates_to_subscribers_only(
        settings_for: Any, upstreams: dict[str, str]) -> None:
    updates: list[str] = []
    got = anyio.Event()

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ResourceUpdatedNotification):
            updates.append(str(message.params.uri))
            got.set()

    others: list[Any] = []

    async def other_messages(message: Any) -> None:
        if isinstance(message, types.ResourceUpdatedNotification):
            others.append(message)

    async with protocol_gateway(settings_for, upstreams) as gw, \
            client(gw.url("p"), ALICE, "legacy", message_handler=on_message) as c, \
            client(gw.url("p"), CAROL, "legacy", message_handler=other_messages) as other:
        await c.call_tool("one__progress", {})  # opens the session's GET stream first
        with quiet_deprecated():
            await c.subscribe_resource("mcpyard://one/note://one/a")
        result = await c.call_tool("one__touch", {})
        assert result.content[0].text == "one:touched:True"  # type: ignore[union-attr]
        with anyio.fail_after(10):
            await got.wait()
        assert updates == ["mcpyard://one/note://one/a"]
        await other.call_tool("one__progress", {})
        assert others == []
        with quiet_deprecated():
            await c.unsubscribe_resource("mcpyard://one/note://one/a")
        # A 2026-07-28 upstream learns of it when the gateway's old listen stream closes,
        # which it notices asynchronously (a handshake upstream answered the unsubscribe).
        with anyio.fail_after(10):
            while True:
                result = await c.call_tool("one__touch", {})
                text = result.content[0].text  # type: ignore[union-attr]
                if text == "one:touched:False" or upstreams["era"] == "handshake":
                    break
                await anyio.sleep(0.05)
        assert text == "one:touched:False"


async def test_capabilities_follow_the_upstreams(settings_for: Any,
                                                 upstreams: dict[str, str]) -> None:
    async with protocol_gateway(settings_for, upstreams) as gw, \
            client(gw.url("p"), ALICE, "legacy") as c:
        caps = c.server_capabilities
        assert caps.prompts is not None and caps.resources is not None
        assert caps.completions is not None and caps.resources.subscribe
