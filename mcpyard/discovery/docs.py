"""Docs pages from capability manifests, in Markdown and in HTML.

A page is first a list of blocks (headings, paragraphs, tables, code, lists); :func:`markdown`
and :func:`html` render the same blocks, so the two formats never say different things. Per
server: the summary, when to use it, the setup guide (the secrets and settings it needs),
then each tool with its effect, argument table and an example call made from its schema, then
prompts and resources. Per workspace: an index of the servers with their summaries and
links. Every text from a server is escaped (HTML) or kept inside code spans and table cells
(Markdown): a tool's description is data, never markup.
"""

from __future__ import annotations

import html as html_
import json
from collections.abc import Sequence
from dataclasses import dataclass

from mcpyard.jsontypes import JSONObject, obj, objects, text, texts

EFFECT_WORDS = {"read-only": "read-only", "destructive": "destructive",
                "additive": "writes (not destructive)", "unknown": "effect not declared"}


@dataclass(frozen=True)
class Heading:
    level: int
    text: str
    anchor: str | None = None


@dataclass(frozen=True)
class Para:
    text: str
    css: str | None = None


@dataclass(frozen=True)
class Link:
    text: str
    href: str
    after: str = ""
    """Plain text after the link, on the same line."""


@dataclass(frozen=True)
class Table:
    head: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Code:
    text: str
    lang: str = ""


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


Block = Heading | Para | Link | Table | Code | Bullets


def _json(value: object) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


def anchor(name: str) -> str:
    return "tool-" + "".join(c if c.isalnum() or c in "-_" else "-" for c in name)


def _setup(m: JSONObject) -> list[Block]:
    needs = obj(m, "needs")
    namespace = text(m, "server", "namespace")
    blocks: list[Block] = [Heading(2, "Setup")]
    lines = [f"Transport: {text(needs, 'transport')}."]
    if command := texts(needs, "command"):
        lines.append("Command: " + " ".join(command))
    if url := text(needs, "url"):
        lines.append(f"Upstream URL: {url}")
    if hub := text(m, "server", "hub"):
        lines.append(f"Hub entry: {hub}")
    if env := texts(needs, "env"):
        lines.append("Plain environment variables: " + ", ".join(env))
    blocks.append(Bullets(tuple(lines)))
    secrets = objects(needs, "secrets")
    if secrets:
        blocks.append(Para("Secrets the gateway injects on every call (members never see "
                           "them; each is an EncryptedSecret in the server's namespace):"))
        blocks.append(Table(("EncryptedSecret", "key", "injected as", "where"), tuple(
            (text(s, "secret"), text(s, "key"), text(s, "as"), text(s, "target"))
            for s in secrets)))
    else:
        blocks.append(Para("No secret is injected: the server runs without credentials."))
    hub_secrets = objects(needs, "hubSecrets")
    if hub_secrets:
        blocks.append(Para("The hub entry expects:"))
        blocks.append(Table(("name", "as", "what"), tuple(
            (text(s, "name"), text(s, "as"), text(s, "description")) for s in hub_secrets)))
    if secrets or hub_secrets:
        first: JSONObject = secrets[0] if secrets else {"secret": "NAME", "key": "token"}
        secret = text(first, "secret")
        blocks.append(Para("Create an encrypted secret with:"))
        blocks.append(Code(f"mcpyard secret encrypt {secret} --from-literal "
                           f"{text(first, 'key')}=VALUE --age AGE_RECIPIENT -n "
                           f"{namespace} > {secret}.yaml", "sh"))
    return blocks


def _effect(t: JSONObject) -> tuple[str, str]:
    """A tool's effect and the words that say it."""
    effect = text(t, "effect")
    return effect, EFFECT_WORDS.get(effect, effect)


def _tool(t: JSONObject) -> list[Block]:
    name = text(t, "name")
    effect, words = _effect(t)
    blocks: list[Block] = [Heading(3, name, anchor(name))]
    facts = [words]
    if reads := texts(t, "reads"):
        facts.append("reads " + ", ".join(reads))
    if writes := texts(t, "writes"):
        facts.append("writes " + ", ".join(writes))
    blocks.append(Para(" · ".join(facts), css=f"effect {effect}"))
    if description := text(t, "description"):
        blocks.append(Para(description))
    if args := objects(t, "arguments"):
        blocks.append(Table(("argument", "type", "required", "description"), tuple(
            (text(a, "name"), text(a, "type"), "yes" if a.get("required") else "no",
             text(a, "description") + (f" (default: {json.dumps(a['default'])})"
                                       if "default" in a else ""))
            for a in args)))
    else:
        blocks.append(Para("No arguments."))
    blocks.append(Para("Example call:"))
    blocks.append(Code(_json(t.get("example")), "json"))
    return blocks


def server_page(m: JSONObject) -> list[Block]:
    """The blocks of one server's docs page."""
    server = obj(m, "server")
    blocks: list[Block] = [Heading(1, f"{text(server, 'title')} ({text(server, 'slug')})"),
                           Para(text(m, "summary")), Para(text(m, "whenToUse"))]
    if homepage := text(server, "homepage"):
        blocks.append(Link("Homepage", homepage))
    if pairs := objects(m, "pairsWith"):
        blocks.append(Para("Pairs well with: " + "; ".join(
            f"{text(p, 'server')} (shares {', '.join(texts(p, 'shared'))})" for p in pairs)))
    blocks += _setup(m)
    tools = objects(m, "tools")
    blocks.append(Heading(2, f"Tools ({len(tools)})"))
    if tools:
        blocks.append(Table(("tool", "effect", "purpose"), tuple(
            (text(t, "name"), _effect(t)[1], text(t, "purpose")) for t in tools)))
    for t in tools:
        blocks += _tool(t)
    if prompts := objects(m, "prompts"):
        blocks.append(Heading(2, f"Prompts ({len(prompts)})"))
        for p in prompts:
            blocks.append(Heading(3, text(p, "name")))
            if description := text(p, "description"):
                blocks.append(Para(description))
            if args := objects(p, "arguments"):
                blocks.append(Table(("argument", "required", "description"), tuple(
                    (text(a, "name"), "yes" if a.get("required") else "no",
                     text(a, "description"))
                    for a in args)))
    resources = [(text(r, "uri") or text(r, "uriTemplate"), r) for r in
                 [*objects(m, "resources"), *objects(m, "resourceTemplates")]]
    if resources:
        blocks.append(Heading(2, f"Resources ({len(resources)})"))
        blocks.append(Table(("URI", "name", "description"), tuple(
            (uri, text(r, "name"), text(r, "description")) for uri, r in resources)))
    return blocks


def index_page(title: str, manifests: Sequence[JSONObject], *, link_suffix: str,
               link_prefix: str = "", mcp_url: str | None = None) -> list[Block]:
    """The blocks of a workspace's index: each server, its summary, a link to its page."""
    tools = sum(len(objects(m, "tools")) for m in manifests)
    blocks: list[Block] = [Heading(1, title), Para(
        f"{len(manifests)} servers, {tools} tools.")]
    if mcp_url:
        blocks.append(Para(f"Connect your MCP client to {mcp_url} with your personal token "
                           "(Authorization: Bearer mwt_...)."))
    for m in manifests:
        slug = text(m, "server", "slug")
        blocks.append(Heading(2, f"{text(m, 'server', 'title')} ({slug})"))
        blocks.append(Para(text(m, "summary")))
        blocks.append(Link(f"{len(objects(m, 'tools'))} tools: docs of {slug}",
                           f"{link_prefix}{slug}{link_suffix}"))
    return blocks


# -- rendering ---------------------------------------------------------------------------

def _md_cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def markdown(blocks: Sequence[Block]) -> str:
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            out.append(f"{'#' * b.level} {b.text}")
        elif isinstance(b, Para):
            out.append(b.text)
        elif isinstance(b, Link):
            out.append(f"[{b.text}]({b.href}){b.after}")
        elif isinstance(b, Table):
            out.append("| " + " | ".join(b.head) + " |")
            out.append("|" + "---|" * len(b.head))
            out.extend("| " + " | ".join(_md_cell(c) if c else " " for c in row) + " |"
                       for row in b.rows)
        elif isinstance(b, Code):
            fence = "````" if "```" in b.text else "```"
            out.append(f"{fence}{b.lang}\n{b.text}\n{fence}")
        else:
            out.extend(f"- {item}" for item in b.items)
        out.append("")
    return "\n".join(out)


_CSS = """
body{font:15px/1.5 system-ui,-apple-system,Segoe UI,sans-serif;max-width:60rem;margin:2rem auto;
padding:0 1rem;color:#1f2328}
h1{border-bottom:1px solid #d0d7de;padding-bottom:.3rem}
h2{margin-top:2rem;border-bottom:1px solid #eaeef2}
h3{margin-top:1.5rem;font-family:ui-monospace,monospace;font-size:1rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0}
th,td{border:1px solid #d0d7de;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}
pre{background:#f6f8fa;padding:.6rem;overflow-x:auto;border-radius:6px}
.effect{display:inline-block;padding:.05rem .5rem;border-radius:1rem;font-size:.85rem;
background:#eaeef2}
.read-only{background:#dafbe1}.destructive{background:#ffebe9}.additive{background:#fff8c5}
nav{font-size:.9rem;margin-bottom:1rem}
"""


def html(blocks: Sequence[Block], title: str, *, nav: str | None = None,
         nav_href: str | None = None) -> str:
    esc = html_.escape
    body: list[str] = []
    if nav and nav_href:
        body.append(f'<nav><a href="{esc(nav_href)}">{esc(nav)}</a></nav>')
    for b in blocks:
        if isinstance(b, Heading):
            ident = f' id="{esc(b.anchor)}"' if b.anchor else ""
            body.append(f"<h{b.level}{ident}>{esc(b.text)}</h{b.level}>")
        elif isinstance(b, Para):
            css = f' class="{esc(b.css)}"' if b.css else ""
            tag = "span" if b.css else "p"
            body.append(f"<p><{tag}{css}>{esc(b.text)}</{tag}></p>" if b.css
                        else f"<p>{esc(b.text)}</p>")
        elif isinstance(b, Link):
            body.append(f'<p><a href="{esc(_safe_href(b.href))}">{esc(b.text)}</a>'
                        f"{esc(b.after)}</p>")
        elif isinstance(b, Table):
            head = "".join(f"<th>{esc(h)}</th>" for h in b.head)
            rows = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>"
                           for row in b.rows)
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif isinstance(b, Code):
            body.append(f"<pre><code>{esc(b.text)}</code></pre>")
        else:
            body.append("<ul>" + "".join(f"<li>{esc(i)}</li>" for i in b.items) + "</ul>")
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
            f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def _safe_href(href: str) -> str:
    # A homepage comes from the catalog, a page link from a slug: only web and relative
    # links are kept (never javascript: or data:).
    lower = href.strip().lower()
    if ":" in lower.split("/", 1)[0] and not lower.startswith(("http://", "https://")):
        return "#"
    return href


def server_markdown(m: JSONObject) -> str:
    return markdown(server_page(m))


def server_html(m: JSONObject, *, index_href: str = "index.html") -> str:
    workspace = text(m, "workspace")
    return html(server_page(m), f"{text(m, 'server', 'title')} — {workspace}",
                nav=f"← {workspace}", nav_href=index_href)


def index_markdown(title: str, manifests: Sequence[JSONObject],
                   mcp_url: str | None = None, *, link_prefix: str = "") -> str:
    return markdown(index_page(title, manifests, link_suffix=".md", link_prefix=link_prefix,
                               mcp_url=mcp_url))


def index_html(title: str, manifests: Sequence[JSONObject], *, link_suffix: str,
               link_prefix: str = "", mcp_url: str | None = None) -> str:
    return html(index_page(title, manifests, link_suffix=link_suffix, link_prefix=link_prefix,
                           mcp_url=mcp_url), title)
