"""``mcpyard hub``: browse the built-in catalog and start a manifest from an entry."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from typing import Any

import yaml

from mcpyard import errors, hub
from mcpyard.api import hub as hub_api
from mcpyard.api.v1alpha1 import API_VERSION, MCPServer


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "hub",
        help="browse the built-in catalog of MCP servers",
        description="Browse the built-in catalog of community MCP servers (spec.hub).",
    )
    parser.set_defaults(func=run)
    sub = parser.add_subparsers(dest="hub_command", metavar="COMMAND", required=True)

    sub.add_parser("list", help="list every entry", description="List every catalog entry.")

    show = sub.add_parser("show", help="show one entry", description="Show one catalog entry.")
    show.add_argument("name", metavar="NAME")
    show.add_argument("-o", "--output", choices=("yaml", "json"), default="yaml")

    search = sub.add_parser(
        "search",
        help="find entries by words",
        description="Entries matching every word, best first (name, title, tags, description).",
    )
    search.add_argument("query", metavar="QUERY", nargs="+")

    manifest = sub.add_parser(
        "manifest",
        help="print an MCPServer manifest for an entry",
        description="Print a ready-to-edit MCPServer manifest that installs a catalog entry.",
    )
    manifest.add_argument("name", metavar="NAME")
    manifest.add_argument("--workspace", "-w", required=True, help="the Workspace to add it to")
    manifest.add_argument("-n", "--namespace", help="metadata.namespace of the manifest")


def run(args: argparse.Namespace) -> int:
    try:
        if args.hub_command == "list":
            _print_table(hub.catalog().values())
            return 0
        if args.hub_command == "search":
            query = " ".join(args.query)
            found = hub.search(query)
            if not found:
                print(f"No hub entries match {query!r}.", file=sys.stderr)
                return 1
            _print_table(found)
            return 0
        entry = hub.get(args.name)
        if entry is None:
            print(
                f"error: no hub entry named {args.name!r} (see `mcpyard hub list`)",
                file=sys.stderr,
            )
            return 1
        if args.hub_command == "show":
            _print_entry(entry, args.output)
        else:
            sys.stdout.write(manifest(entry, workspace=args.workspace, namespace=args.namespace))
        return 0
    except errors.ManifestError as exc:  # a broken catalog file in the installed package
        print(f"error: {exc}", file=sys.stderr)
        return 1


def manifest(entry: hub_api.HubEntry, *, workspace: str, namespace: str | None = None) -> str:
    """An MCPServer manifest (YAML text, with explaining comments) installing ``entry``."""
    secret_name = f"{entry.name}-credentials"
    metadata: dict[str, Any] = {"name": entry.name}
    if namespace:
        metadata["namespace"] = namespace
    spec: dict[str, Any] = {
        "workspace": workspace,
        "hub": {"name": entry.name, "version": _Quoted(entry.version)},
    }
    secrets = []
    for secret in entry.secrets:
        injection: dict[str, Any] = {
            "secretRef": {"name": secret_name, "key": secret.name.lower()},
            "as": secret.as_,
        }
        if secret.as_ == "env":
            injection["env"] = secret.name
        elif secret.as_ == "header":
            injection["header"] = secret.name
        secrets.append(injection)
    if secrets:
        spec["secrets"] = secrets
    doc = {"apiVersion": API_VERSION, "kind": MCPServer.KIND, "metadata": metadata, "spec": spec}

    lines = [f"# {entry.title} ({entry.name} {entry.version}) from the mcpyard hub."]
    if entry.secrets:
        literals = " ".join(f"--from-literal {s.name.lower()}=..." for s in entry.secrets)
        ns = f" -n {namespace}" if namespace else ""
        lines.append(f"# Secrets it takes, from the EncryptedSecret {secret_name}:")
        for s in entry.secrets:
            need = "required" if s.required else "optional"
            lines.append(f"#   {s.name} ({need}): {' '.join(s.description.split())}")
        command = f"mcpyard secret encrypt {secret_name} {literals} --age AGE_RECIPIENT{ns}"
        lines.append(f"# Create it with: {command}")
    header = "\n".join(lines) + "\n"
    return header + yaml.dump(doc, Dumper=_Dumper, sort_keys=False, default_flow_style=False)


class _Quoted(str):
    """A string written in double quotes, so that an edited version stays a string."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(
    _Quoted, lambda dumper, value: dumper.represent_scalar("tag:yaml.org,2002:str", value, '"')
)


def _print_entry(entry: hub_api.HubEntry, output: str) -> None:
    data = entry.model_dump(mode="json", by_alias=True, exclude_none=True)
    if output == "json":
        print(json.dumps(data, indent=2))
    else:
        sys.stdout.write(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def _print_table(entries: Iterable[hub_api.HubEntry]) -> None:
    rows = [("NAME", "TITLE", "TRANSPORT", "VERSION", "SECRETS")]
    for e in entries:
        secrets = ",".join(s.name for s in e.secrets) or "<none>"
        rows.append((e.name, e.title, e.transport, e.version, secrets))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
        print("   ".join(cells).rstrip())
