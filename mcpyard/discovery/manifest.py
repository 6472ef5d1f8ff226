"""Capability manifests: what a server does, generated from what it reports and its config.

:func:`build` turns a server's own lists (tools with their schemas and annotations, prompts,
resources, templates, what its initialize said) and its compiled :class:`ServerConfig` (mode,
transport, the secrets injected and how, its hub entry) into a JSON-ready dict that follows
``docs/schemas/manifest.schema.json``: a one-paragraph summary, each tool's purpose,
arguments, example call, the data types it reads and writes and its effect (read-only,
destructive, additive, or unknown when the server says nothing), what the server needs to run,
and when to use it. :func:`link` adds, across a workspace's manifests, which servers pair
with which (they share data types).

Deterministic and offline: the same input gives the same bytes. Data types come from tool
names (``create_issue`` writes ``issue``, ``list_pull_requests`` reads ``pull request``); an
optional summarizer (an adapter's business) may replace the summary through :func:`enrich`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeAlias

from mcpyard.api.hub import HubEntry
from mcpyard.compiler import access, naming
from mcpyard.compiler.config import ServerConfig
from mcpyard.discovery import pins, search
from mcpyard.jsontypes import JSONObject, JSONValue, obj, objects, seq, text

SCHEMA_VERSION = "mcpyard.io/manifest/v1"

READ_VERBS = frozenset({
    "get", "list", "search", "read", "find", "fetch", "query", "describe", "show", "view",
    "lookup", "look", "check", "count", "download", "export", "inspect", "browse", "retrieve",
    "analyze", "explain", "preview", "resolve", "validate", "lint", "diff", "compare",
    "summarize", "status", "log", "watch", "monitor", "test", "scrape", "crawl", "extract",
    "map", "navigate", "snapshot", "screenshot", "evaluate", "convert", "calculate",
    "geocode", "reverse", "directions", "distance", "echo", "whoami", "current", "explore",
    "take",
})
WRITE_VERBS = frozenset({
    "create", "add", "update", "edit", "set", "delete", "remove", "write", "send", "post",
    "push", "merge", "move", "rename", "upload", "close", "comment", "assign", "run",
    "execute", "start", "stop", "apply", "install", "fork", "publish", "deploy", "cancel",
    "archive", "restore", "invite", "approve", "reject", "reply", "react", "insert", "drop",
    "truncate", "put", "patch", "upsert", "save", "store", "commit", "checkout", "reset",
    "tag", "label", "enable", "disable", "trigger", "scale", "restart", "kill", "click",
    "type", "fill", "press", "drag", "hover", "select", "submit", "open", "schedule",
    "refund", "capture", "pay", "transfer", "generate", "import", "sync", "mark", "pin",
    "unpin", "lock", "unlock", "clear", "increment", "rollback", "branch", "clone", "init",
    "subscribe", "unsubscribe", "share", "copy", "duplicate", "attach", "detach",
})
# Words that qualify an object rather than name it: read_multiple_files reads files.
_QUALIFIERS = frozenset({"multiple", "many", "all", "new", "single", "one", "back", "unsafe",
                         "current", "existing"})
# Nouns without a plural (or named things): "It reads JSON", never "jsons".
_UNCOUNTABLE = frozenset({"json", "yaml", "markdown", "html", "code", "content", "data",
                          "metadata", "info", "information", "knowledge", "children", "env",
                          "health", "status", "feedback", "news", "software", "research"})
_SENTENCE_END = (". ", ".\n", "! ", "? ")


Manifest: TypeAlias = JSONObject
"""A capability manifest (and its tool entries) as built and stored: read with the readers of
:mod:`mcpyard.jsontypes` (a stored one is whatever JSON was stored)."""


@dataclass(frozen=True)
class Reported:
    """What a server reported about itself (its lists as it sent them)."""

    tools: Sequence[JSONObject] = ()
    prompts: Sequence[JSONObject] = ()
    resources: Sequence[JSONObject] = ()
    resource_templates: Sequence[JSONObject] = ()
    server_info: JSONObject = field(default_factory=dict)
    """initialize's serverInfo (name, title, version), when known."""
    instructions: str | None = None


@dataclass(frozen=True)
class HubInfo:
    """What the hub catalog says of the server's entry (passed in by the adapter)."""

    name: str
    title: str = ""
    description: str = ""
    homepage: str | None = None
    license: str | None = None
    secrets: Sequence[Mapping[str, str]] = ()
    """What the entry needs: ``{"name", "as", "description"}`` each."""


def hub_info(entry: HubEntry | None) -> HubInfo | None:
    """What the manifest uses of a hub catalog entry (None when there is none)."""
    if entry is None:
        return None
    return HubInfo(
        name=entry.name, title=entry.title, description=entry.description,
        homepage=str(entry.homepage), license=entry.license,
        secrets=[{"name": s.name, "as": s.as_, "description": s.description}
                 for s in entry.secrets])


def dumps(manifest: Mapping[str, object]) -> str:
    """A manifest's JSON text as it is stored and published (the same bytes for the same
    manifest)."""
    return json.dumps(manifest, indent=2) + "\n"


def purpose(description: str | None) -> str:
    """A description's first sentence (its first line when it has no sentence end); Markdown
    heading lines (``# Server instructions``) are titles, not sentences, and are skipped."""
    lines = [line for line in (description or "").splitlines()
             if not line.lstrip().startswith("#")]
    text = " ".join(" ".join(lines).split())
    if not text:
        return ""
    ends = [i for i in (text.find(e) for e in _SENTENCE_END) if i > 0]
    return text[: min(ends) + 1] if ends else text


def verb_and_object(name: str, prefix: str | None = None) -> tuple[str | None, str | None]:
    """``create_pull_request`` -> ("create", "pull request"); unknown verbs give (None, ...).

    The verb is the name's first word that is a known verb; the object the words after it
    (singular, without qualifiers such as ``multiple``), or the one word before it when none
    follow (``issue_create``). ``prefix``: a first word the server puts on every tool
    (``browser_click``, ``git_status``), which is no object."""
    raw = [w.lower() for w in search._WORD.findall(name)]
    if prefix is not None and len(raw) > 1 and raw[0] == prefix:
        raw = raw[1:]
    words = [search._stem(w) for w in raw]
    for i, word in enumerate(words):
        if word in READ_VERBS or word in WRITE_VERBS:
            rest = raw[i + 1:] or (raw[:i] if i == 1 else [])
            rest = [_singular(w) for w in rest if w not in search.STOP_WORDS
                    and w not in _QUALIFIERS and not w.isdigit()]
            if len(rest) == 1 and rest[0].endswith("ed"):
                return word, None  # git_diff_staged: a state, not a kind of data
            return word, " ".join(rest) or None
    return None, " ".join(_singular(w) for w in raw) or None


def tool_prefix(names: Iterable[str]) -> str | None:
    """The first word that most of a server's tool names share (``browser`` of
    ``browser_click``, ``browser_navigate``, ...), when it is no verb; else None."""
    firsts = [words[0].lower() for words in (search._WORD.findall(n) for n in names)
              if len(words) > 1]
    if len(firsts) < 2:
        return None
    word: str = max(sorted(set(firsts)), key=firsts.count)
    if firsts.count(word) * 2 <= len(firsts) or search._stem(word) in READ_VERBS | WRITE_VERBS:
        return None
    return word


def _singular(word: str) -> str:
    """The singular of a plural English noun (as people spell them, not a search stem)."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("sses", "ches", "shes", "xes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _plural_noun(phrase: str) -> str:
    """``pull request`` -> ``pull requests``: the last word made plural."""
    head, _, last = phrase.rpartition(" ")
    if last in _UNCOUNTABLE or phrase in _UNCOUNTABLE:
        return phrase
    if last.endswith("y") and len(last) > 2 and last[-2] not in "aeiou":
        last = last[:-1] + "ies"
    elif last.endswith(("s", "x", "z", "ch", "sh")):
        last += "es"
    else:
        last += "s"
    return f"{head} {last}" if head else last


def effect(tool: Mapping[str, object]) -> str:
    """read-only, destructive, additive (writes without destroying) or unknown, from the
    tool's annotations only (hints the server gives; absent ones are unknown)."""
    ann = tool.get("annotations")
    if not isinstance(ann, dict):
        return "unknown"
    if ann.get("readOnlyHint") is True:
        return "read-only"
    if ann.get("destructiveHint") is True:
        return "destructive"
    if ann.get("readOnlyHint") is False:
        # The spec's default for a tool that writes is destructive unless it says otherwise.
        return "additive" if ann.get("destructiveHint") is False else "destructive"
    return "unknown"


def json_type(schema: object) -> str:
    """A short human name for a JSON Schema's type."""
    if not isinstance(schema, dict):
        return "any"
    if "enum" in schema and isinstance(schema["enum"], list):
        return " | ".join(repr(v) if isinstance(v, str) else str(v) for v in schema["enum"][:6])
    t = schema.get("type")
    if isinstance(t, list):
        return " | ".join(str(x) for x in t)
    if t == "array":
        return f"array of {json_type(schema.get('items'))}"
    if isinstance(t, str):
        fmt = schema.get("format")
        return f"{t} ({fmt})" if isinstance(fmt, str) else t
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list):
            return " | ".join(json_type(o) for o in options if isinstance(o, dict))
    return "object" if "properties" in schema else "any"


def arguments(schema: object) -> list[JSONObject]:
    """The top-level arguments of an input schema, in their declared order."""
    if not isinstance(schema, dict):
        return []
    props = schema.get("properties")
    if not isinstance(props, dict):
        return []
    found = schema.get("required")
    required = found if isinstance(found, list) else []
    out = []
    for name, prop in props.items():
        prop = prop if isinstance(prop, dict) else {}
        arg: JSONObject = {"name": str(name), "type": json_type(prop),
                               "required": name in required,
                               "description": " ".join(str(prop.get("description", "")).split())}
        if "default" in prop:
            arg["default"] = prop["default"]
        out.append(arg)
    return out


def example_value(schema: object, name: str = "value", depth: int = 0) -> JSONValue:
    """A plausible value for a schema: its example, default, first enum value, or one made
    from its type and format (deterministic)."""
    if not isinstance(schema, dict) or depth > 4:
        return f"<{name}>"
    given: JSONValue  # a value the schema gives (JSON, as the schema was parsed)
    for key in ("examples", "enum"):
        values = schema.get(key)
        if isinstance(values, list) and values:
            given = values[0]
            return given
    for key in ("const", "default"):
        if key in schema:
            given = schema[key]
            return given
    t = schema.get("type")
    if isinstance(t, list):
        t = next((x for x in t if x != "null"), None)
    if t is None:
        for key in ("anyOf", "oneOf"):
            options = schema.get(key)
            if isinstance(options, list) and options:
                usable = [o for o in options if isinstance(o, dict) and o.get("type") != "null"]
                return example_value(usable[0] if usable else options[0], name, depth + 1)
        t = "object" if "properties" in schema else "string"
    if t == "string":
        fmt = schema.get("format")
        return {"date-time": "2025-01-31T12:00:00Z", "date": "2025-01-31",
                "uri": "https://example.com", "email": "someone@example.com"}.get(
                    str(fmt), f"<{name}>")
    if t == "integer":
        return int(schema.get("minimum", 1)) if isinstance(schema.get("minimum", 1),
                                                           (int, float)) else 1
    if t == "number":
        return float(schema.get("minimum", 1.5)) if isinstance(schema.get("minimum", 1.5),
                                                               (int, float)) else 1.5
    if t == "boolean":
        return True
    if t == "array":
        return [example_value(schema.get("items"), name, depth + 1)]
    if t == "object":
        return example_arguments(schema, depth + 1)
    return None


def example_arguments(schema: object, depth: int = 0) -> JSONObject:
    """Arguments for an example call: the required ones (all, when none is required)."""
    if not isinstance(schema, dict):
        return {}
    props = schema.get("properties")
    if not isinstance(props, dict):
        return {}
    found = schema.get("required")
    required = found if isinstance(found, list) else []
    chosen = [n for n in props if n in required] or list(props)[:3]
    return {str(n): example_value(props[n], str(n), depth) for n in chosen}


def _tool(server: ServerConfig, tool: JSONObject, prefix: str | None) -> Manifest:
    original = str(tool["name"])
    verb, noun = verb_and_object(original, prefix)
    if noun == server.slug:
        noun = None  # mongodb-logs: the server itself is no kind of data it holds
    # the server's own annotations say whether it reads or writes; the verb only guesses
    how = effect(tool)
    reads: list[JSONValue] = [noun] if noun and verb and (
        how == "read-only" or (how == "unknown" and verb in READ_VERBS)) else []
    writes: list[JSONValue] = [noun] if noun and verb and (
        how in ("destructive", "additive") or (how == "unknown" and verb in WRITE_VERBS)) else []
    out: Manifest = {
        "name": naming.namespaced(server.slug, original),
        "originalName": original,
        "purpose": purpose(str(d) if (d := tool.get("description")) else None),
        "description": str(tool.get("description") or ""),
        "effect": how,
        "reads": reads,
        "writes": writes,
        "arguments": list(arguments(tool.get("inputSchema"))),
        "example": {"name": naming.namespaced(server.slug, original),
                    "arguments": example_arguments(tool.get("inputSchema"))},
        "inputSchema": tool.get("inputSchema") or {"type": "object"},
        "hash": pins.digest(tool),
    }
    for key in ("title", "outputSchema", "annotations"):
        if tool.get(key) is not None:
            out[key] = tool[key]
    return out


def _needs(server: ServerConfig, hub: HubInfo | None) -> JSONObject:
    secrets: list[JSONValue] = [
        {"secret": i.ref.name, "key": i.ref.key, "as": i.as_, "target": i.target}
        for i in server.injections]
    out: JSONObject = {"transport": server.transport, "secrets": secrets,
                       "env": list[JSONValue](sorted(server.env))}
    if server.command is not None:
        out["command"] = list(server.command)
    if server.url is not None and server.mode == "proxy":
        out["url"] = _plain_url(server.url)
    if hub is not None and hub.secrets:
        out["hubSecrets"] = [dict(s) for s in hub.secrets]
    return out


def _plain_url(url: str | None) -> str:
    # A query string may carry a key; the manifest is shown to members.
    return (url or "").split("?", 1)[0].split("#", 1)[0]


def _count(tools: Iterable[Manifest], value: str) -> int:
    return sum(1 for t in tools if t.get("effect") == value)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _listing(items: Sequence[str], limit: int = 6, conjunction: str = "and") -> str:
    shown = list(items[:limit])
    more = len(items) - len(shown)
    if more > 0:
        shown.append(f"{more} more")
    if len(shown) <= 1:
        return "".join(shown)
    return ", ".join(shown[:-1]) + f" {conjunction} " + shown[-1]


def _tool_count(tools: list[Manifest]) -> str:
    """``13 tools (9 read-only, 4 additive)``, ``2 tools (all read-only)``, ``1 tool
    (destructive)``, ``7 tools (none declares its effect)``."""
    n = len(tools)
    if not n:
        return "no tools"
    counts = [(word, c) for word, c in (
        ("read-only", _count(tools, "read-only")), ("destructive", _count(tools, "destructive")),
        ("additive", _count(tools, "additive")), ("unknown", _count(tools, "unknown"))) if c]
    if len(counts) == 1:
        word = counts[0][0]
        if word == "unknown":
            return "1 tool (not declaring its effect)" if n == 1 else \
                f"{n} tools (none declares its effect)"
        return f"1 tool ({word})" if n == 1 else f"{n} tools (all {word})"
    return f"{n} tools (" + ", ".join(
        f"{c} {'not declaring their effect' if word == 'unknown' else word}"
        for word, c in counts) + ")"


def _summary(title: str, server: ServerConfig, tools: list[Manifest],
             reported: Reported, reads: list[str], writes: list[str],
             hub: HubInfo | None) -> str:
    how = {"proxy": f"proxied to {_plain_url(server.url)}", "hosted": "run by the gateway",
           "hub": f"installed from the hub entry {server.hub_entry}"}[server.mode]
    offers = [_tool_count(tools)]
    offers += [_plural(len(items), word) for items, word in (
        (reported.prompts, "prompt"), (reported.resources, "resource"),
        (reported.resource_templates, "resource template")) if items]
    parts = [f"{title} is an MCP server {how} over {server.transport}, with "
             f"{_listing(offers)}."]
    # one account of what it is for: the catalog's (written for people) or else the server's
    about = purpose(hub.description) if hub is not None and hub.description else \
        purpose(reported.instructions)
    if about:
        parts.append(about)
    read = _listing([_plural_noun(r) for r in reads])
    changed = _listing([_plural_noun(w) for w in writes])
    if reads and writes:
        parts.append(f"It reads {read}, and changes {changed}.")
    elif reads:
        parts.append(f"It reads {read}.")
    elif writes:
        parts.append(f"It changes {changed}.")
    if server.injections:
        parts.append(f"It needs {_plural(len(server.injections), 'secret')}, injected by "
                     "the gateway.")
    return " ".join(parts)


def _base_verb(word: str) -> str:
    """``Fetches`` -> ``fetch``: a description's opening verb in the form that follows "to"."""
    lower = word.lower()
    if len(lower) > 4 and lower.endswith("ies"):
        return lower[:-3] + "y"
    if lower.endswith(("sses", "ches", "shes", "xes")):
        return lower[:-2]
    if len(lower) > 3 and lower.endswith("s") and not lower.endswith(("ss", "us", "is")):
        return lower[:-1]
    return lower[:1] + word[1:]


def _when(slug: str, reads: list[str], writes: list[str], tools: list[Manifest]) -> str:
    if reads or writes:
        kinds = _listing([_plural_noun(k) for k in sorted(set(reads) | set(writes))],
                         conjunction="or")
        return f"Use {slug} when a task involves {kinds}."
    purposes = [p.rstrip(".") for p in (text(t, "purpose") for t in tools) if p][:3]
    if purposes:
        said = []
        for p in purposes:
            first, _, rest = p.partition(" ")
            said.append(f"{_base_verb(first)} {rest}".rstrip())
        return f"Use {slug} to {'; '.join(said)}."
    return f"Use {slug} for the tools listed below."


def build(workspace: str, server: ServerConfig, reported: Reported,
          hub: HubInfo | None = None) -> Manifest:
    """The capability manifest of one server (the tools its filter exposes)."""
    exposed = [t for t in reported.tools if isinstance(t.get("name"), str)
               and access.server_exposes(server.tools, str(t["name"]))]
    prefix = tool_prefix(str(t["name"]) for t in exposed)
    tools = [_tool(server, t, prefix) for t in sorted(exposed, key=lambda t: str(t["name"]))]
    reads = sorted({r for t in tools for r in seq(t, "reads") if isinstance(r, str)})
    writes = sorted({w for t in tools for w in seq(t, "writes") if isinstance(w, str)})
    info = reported.server_info
    title = str(info.get("title") or (hub.title if hub is not None else "") or server.slug)
    about: JSONObject = {"name": server.name, "namespace": server.namespace, "slug": server.slug,
                         "title": title, "mode": server.mode, "transport": server.transport,
                         "hub": server.hub_entry}
    if hub is not None:
        about["homepage"] = hub.homepage
        about["license"] = hub.license
    version = info.get("version")
    if isinstance(version, str):
        about["version"] = version
    return {
        "schemaVersion": SCHEMA_VERSION,
        "workspace": workspace,
        "server": about,
        "summary": _summary(title, server, tools, reported, reads, writes, hub),
        "summarySource": "generated",
        "whenToUse": _when(server.slug, reads, writes, tools),
        "dataTypes": {"reads": list(reads), "writes": list(writes)},
        "needs": _needs(server, hub),
        "tools": list(tools),
        "prompts": [_prompt(server, p) for p in reported.prompts if isinstance(p.get("name"), str)],
        "resources": [_resource(server, r, "uri") for r in reported.resources
                      if isinstance(r.get("uri"), str)],
        "resourceTemplates": [_resource(server, r, "uriTemplate")
                              for r in reported.resource_templates
                              if isinstance(r.get("uriTemplate"), str)],
        "pairsWith": [],
    }


def _prompt(server: ServerConfig, prompt: Mapping[str, object]) -> JSONObject:
    found = prompt.get("arguments")
    args: list[object] = found if isinstance(found, list) else []
    return {"name": naming.namespaced(server.slug, str(prompt["name"])),
            "description": str(prompt.get("description") or ""),
            "arguments": [{"name": str(a.get("name")), "required": bool(a.get("required")),
                           "description": str(a.get("description") or "")}
                          for a in args if isinstance(a, dict)]}


def _resource(server: ServerConfig, item: Mapping[str, object], key: str) -> JSONObject:
    out: JSONObject = {key: naming.resource_uri(server.slug, str(item[key])),
           "name": str(item.get("name") or ""),
           "description": str(item.get("description") or "")}
    mime = item.get("mimeType")
    if isinstance(mime, str):
        out["mimeType"] = mime
    return out


def link(manifests: Sequence[Manifest]) -> list[Manifest]:
    """The manifests of one workspace, each with ``pairsWith``: the other servers that work
    on a data type it works on (one writes what the other reads, or both touch it)."""
    types = {text(m, "server", "slug"): _data_types(m) for m in manifests}
    out: list[Manifest] = []
    for m in manifests:
        slug = text(m, "server", "slug")
        pairs: list[JSONValue] = [{"server": other, "shared": list(sorted(types[slug] & theirs))}
                                  for other, theirs in sorted(types.items())
                                  if other != slug and types[slug] & theirs]
        out.append({**m, "pairsWith": pairs})
    return out


def _data_types(manifest: Manifest) -> set[str]:
    """The data types a server reads or writes."""
    return {t for key in ("reads", "writes") for t in seq(manifest, "dataTypes", key)
            if isinstance(t, str)}


def enrich(manifest: Manifest, summary: str) -> Manifest:
    """The manifest with a summarizer's summary (kept only when it is a usable paragraph)."""
    text = " ".join(summary.split())
    if not text or len(text) > 2000:
        return manifest
    return {**manifest, "summary": text, "summarySource": "summarizer"}


def visible(manifest: Manifest, may_use: Callable[[str], bool]) -> Manifest | None:
    """The manifest as a member sees it: only the tools and prompts ``may_use(name)`` admits,
    the resources whose URIs it admits; None when nothing is left."""
    tools: list[JSONValue] = [t for t in objects(manifest, "tools") if may_use(text(t, "name"))]
    prompts: list[JSONValue] = [p for p in objects(manifest, "prompts")
                                if may_use(text(p, "name"))]
    resources: list[JSONValue] = [r for r in objects(manifest, "resources")
                                  if may_use(text(r, "uri"))]
    templates: list[JSONValue] = [r for r in objects(manifest, "resourceTemplates")
                                  if may_use(text(r, "uriTemplate"))]
    if not (tools or prompts or resources or templates):
        return None
    return {**manifest, "tools": tools, "prompts": prompts, "resources": resources,
            "resourceTemplates": templates}


def prompt_for_summary(manifest: Manifest) -> str:
    """What a summarizer is asked (the facts it may use, nothing secret: no URL, no env)."""
    server = obj(manifest, "server")
    lines = [f"Server {text(server, 'slug')} ({text(server, 'title')}).", "Tools:"]
    lines += [f"- {text(t, 'originalName')}: {text(t, 'purpose')} ({text(t, 'effect')})"
              for t in objects(manifest, "tools")]
    lines.append("Write one paragraph (at most 80 words) saying what this MCP server does "
                 "and when an agent should use it. Plain text, no lists.")
    return "\n".join(lines)
