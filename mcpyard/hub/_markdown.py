"""The catalog as a Markdown page (``docs/hub.md``), generated so that it never drifts.

    python -m mcpyard.hub._markdown > docs/hub.md

A test compares the committed page with this output.
"""

from __future__ import annotations

from collections.abc import Iterable

from mcpyard.api import hub as hub_api
from mcpyard.hub._catalog import catalog

_INTRO = """\
# The hub

The hub is mcpyard's built-in catalog of MCP servers. An MCPServer installs an entry by name
(`spec.hub: {name: NAME, version: VERSION}`): the entry says how the server runs (a pinned
`npx`/`uvx` command, run behind `mcpyard bridge` in a cluster and spawned by `mcpyard serve`,
or a remote URL that the gateway proxies), which secrets it takes and how they are injected,
and which plain settings it reads from `spec.hub.env`. The compiler checks `spec.hub.env`
against the entry's settings schema: a required setting left out or a value outside its
choices makes the MCPServer invalid, with the variable named (`mcpyard validate` prints
`team/MCPServer/prometheus: spec.hub.env.PROMETHEUS_URL: is required (hub entry prometheus)`).

```sh
mcpyard hub list                        # every entry
mcpyard hub search "query a sql database"  # ranked by what servers do (BM25, as find_tools)
mcpyard hub show grafana [-o json]      # one entry, with its settings schema
mcpyard hub manifest grafana -w eng -n team-eng             # an MCPServer on stdout
mcpyard hub add grafana -w eng -n team-eng --dir workspaces/team-eng --age age1...
```

`hub add` writes `NAME.yaml` (the MCPServer) and, for an entry that takes secrets,
`NAME-credentials.yaml`: an EncryptedSecret whose values are sops-encrypted placeholders
(`REPLACE-ME`). Set the real values with `sops edit NAME-credentials.yaml` (or replace the file
with `mcpyard secret encrypt`), then commit both files: installing a server is a commit. It
never overwrites a file; recipients come from `--age`, `MCPYARD_AGE_RECIPIENTS` or
`SOPS_AGE_RECIPIENTS`.

Every entry pins an exact version. The tests check each one against its registry (the version
is published, the command's executable is in the package, the licence agrees), and start each
entry that runs without outside network once to list its tools. This page is generated from
the catalog files (`mcpyard/hub/catalog/*.yaml`): `python -m mcpyard.hub._markdown > docs/hub.md`.

Every entry that runs without outside network is started in CI (`tests/hub/test_entries_start.py`,
33 of them): its pinned package, installed by `tools/setup/30-hub.sh`, starts offline with
placeholder credentials, initializes and lists its tools (`puppeteer` also opens a page in
Debian's Chromium, `tests/hub/test_puppeteer_browser.py`). npm entries run there on Node 22.23
(`sentry` needs Node 22.13 or later); `docker` needs a Docker Engine API at startup (the test
serves Podman's) and declares Python 3.12 or later, which `uvx` fetches where the machine has
none (the test installs it on Python 3.11, which its code runs on). Not started there, as
each needs outside network to start or to list its tools: the remote entries (`github`,
`exa`, `cloudflare-docs`), `aws` (fetches AWS's service reference at startup), `slack`
(calls Slack's `auth.test` at startup), `stripe` (relays to Stripe's remote server) and
`supabase` (lists its tools from Supabase's API).

Left out on purpose: Cloudflare's account servers (they log in with OAuth per user;
`cloudflare-docs` needs no login).
"""


def render(entries: Iterable[hub_api.HubEntry]) -> str:
    """The Markdown page of ``entries``."""
    entries = list(entries)
    out = [_INTRO, f"## The {len(entries)} entries", ""]
    out.append("| Name | Server | Runs | Version | Secrets | Licence |")
    out.append("| --- | --- | --- | --- | --- | --- |")
    for e in entries:
        runs = "remote" if e.url is not None else (e.package or "").replace(":", " ")
        secrets = ", ".join(f"`{s.name}`" for s in e.secrets) or "none"
        out.append(f"| [`{e.name}`](#{e.name}) | {e.title} | {runs} | {e.version} | {secrets} "
                   f"| {e.license} |")
    for e in entries:
        out += ["", _section(e)]
    return "\n".join(out).rstrip() + "\n"


def _section(e: hub_api.HubEntry) -> str:
    lines = [f'<a id="{e.name}"></a>', "", f"### {e.name}: {e.title}", "",
             " ".join(e.description.split()), ""]
    lines.append(f"- Homepage: <{e.homepage}>; licence {e.license}")
    if e.url is not None:
        lines.append(f"- Remote, {e.transport}: `{e.url}` (no version to pin)")
    else:
        lines.append(f"- Package: `{e.package}` {e.version}, {e.transport}")
        if e.command is not None:
            lines.append(f"- Command: `{' '.join(e.command)}`")
    if e.env:
        lines.append("- Environment it sets: " + ", ".join(f"`{k}={v}`" for k, v in e.env.items()))
    if e.secrets:
        lines += ["", "| Secret | Injected as | Required | What it is |",
                  "| --- | --- | --- | --- |"]
        for s in e.secrets:
            how = {"env": "env", "header": "header", "bearer": "bearer token"}[s.as_]
            lines.append(f"| `{s.name}` | {how} | {'yes' if s.required else 'no'} | "
                         f"{_cell(s.description)} |")
    if e.config.properties:
        lines += ["", "| Setting (`spec.hub.env`) | Required | Default | What it changes |",
                  "| --- | --- | --- | --- |"]
        for name, setting in e.config.properties.items():
            values = f" One of: {', '.join(setting.enum)}." if setting.enum else ""
            default = f"`{setting.default}`" if setting.default is not None else ""
            need = "yes" if name in e.config.required else "no"
            lines.append(f"| `{name}` | {need} | {default} | "
                         f"{_cell(setting.description)}{values} |")
    return "\n".join(lines)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


if __name__ == "__main__":
    print(render(catalog().values()), end="")
