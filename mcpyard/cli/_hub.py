"""``mcpyard hub``: browse the built-in catalog, print or write the manifests of an entry.

``hub add`` writes the files a GitOps repository keeps (installing an entry is a commit): the
MCPServer, and for an entry that takes secrets an EncryptedSecret skeleton whose values are
sops-encrypted placeholders, to be set with ``sops edit`` or replaced by ``mcpyard secret
encrypt``. It never overwrites a file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import yaml

from mcpyard import errors, hub
from mcpyard.api import hub as hub_api
from mcpyard.api.v1alpha1 import API_VERSION, MCPServer
from mcpyard.api.v1alpha1._base import check_dns_label, check_dns_subdomain
from mcpyard.cli import _secret
from mcpyard.crypto import sops

PLACEHOLDER = "REPLACE-ME"
"""The value of each key of a secret skeleton, until the user sets the real one."""


def _checked(what: str, check: Callable[[str], str]) -> Callable[[str], str]:
    """An argparse type: the API's own rule for a name, as a usage error (exit 2)."""

    def parse(value: str) -> str:
        try:
            return check(value)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"invalid {what}: {exc}") from None

    return parse


_WORKSPACE = _checked("Workspace name", check_dns_subdomain)
_NAMESPACE = _checked("namespace", check_dns_label)


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
    manifest.add_argument("--workspace", "-w", required=True, type=_WORKSPACE,
                          help="the Workspace to add it to")
    manifest.add_argument("-n", "--namespace", type=_NAMESPACE,
                          help="metadata.namespace of the manifest")

    add = sub.add_parser(
        "add",
        help="write an entry's MCPServer and secret skeleton into a folder",
        description=(
            "Write NAME.yaml (the MCPServer) into DIR and, when the entry takes secrets, "
            "NAME-credentials.yaml: an EncryptedSecret whose values are sops-encrypted "
            f"placeholders ({PLACEHOLDER}) to set with `sops edit` before committing. Never "
            "overwrites a file. Recipients come from --age, else "
            f"{' or '.join(_secret.RECIPIENT_ENV)}."
        ),
    )
    add.add_argument("name", metavar="NAME")
    add.add_argument("--workspace", "-w", required=True, type=_WORKSPACE,
                     help="the Workspace to add it to")
    add.add_argument("-n", "--namespace", type=_NAMESPACE,
                     default=os.environ.get("MCPYARD_NAMESPACE", "default"),
                     help="metadata.namespace (default: $MCPYARD_NAMESPACE or 'default')")
    add.add_argument("--dir", type=Path, default=Path("."), help="where to write (default: .)")
    add.add_argument("--age", action="append", default=[], metavar="RECIPIENT",
                     help="an age recipient of the secret skeleton (repeatable)")


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
        elif args.hub_command == "add":
            return _add(entry, args)
        else:
            sys.stdout.write(manifest(entry, workspace=args.workspace, namespace=args.namespace))
        return 0
    except errors.ManifestError as exc:  # a broken catalog file in the installed package
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _add(entry: hub_api.HubEntry, args: argparse.Namespace) -> int:
    directory: Path = args.dir
    server_file = directory / f"{entry.name}.yaml"
    secret_file = directory / f"{_secret_name(entry)}.yaml"
    files = [server_file, secret_file] if entry.secrets else [server_file]
    existing = [str(f) for f in files if f.exists()]
    if existing:
        print(f"error: {', '.join(existing)} already exists; not overwriting it "
              "(remove it, or choose another --dir)", file=sys.stderr)
        return 1
    if directory.exists() and not directory.is_dir():
        print(f"error: --dir {directory}: not a directory", file=sys.stderr)
        return 1
    texts = {server_file: manifest(entry, workspace=args.workspace, namespace=args.namespace)}
    if entry.secrets:
        try:
            # the same recipients, from the same places, as `mcpyard secret encrypt`
            recipients = _secret._recipients(args)
        except errors.UsageError as exc:
            print(f"mcpyard hub add: {exc} (the secret skeleton of {entry.name} is encrypted "
                  "for them)", file=sys.stderr)
            return 2
        try:
            texts[secret_file] = _skeleton(entry, args.namespace, recipients, secret_file)
        except errors.SecretError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    directory.mkdir(parents=True, exist_ok=True)
    for path, text in texts.items():
        with path.open("x", encoding="utf-8") as out:  # "x": never overwrite, even in a race
            out.write(text)
        print(f"wrote {path}")
    if entry.secrets:
        print(f"next: set the real values with `sops edit {secret_file}` (replace each "
              f"{PLACEHOLDER}), then commit both files")
    else:
        print("next: commit it")
    return 0


def _secret_name(entry: hub_api.HubEntry) -> str:
    return f"{entry.name}-credentials"


def _skeleton(entry: hub_api.HubEntry, namespace: str, recipients: list[str],
              path: Path) -> str:
    """An EncryptedSecret with one placeholder per secret of the entry, encrypted by sops."""
    data = {s.name.lower(): PLACEHOLDER for s in entry.secrets}
    text = sops.encrypt_secret(_secret_name(entry), namespace, data, recipients)
    lines = [f"# Secrets of {entry.title} ({entry.name} {entry.version}) from the mcpyard hub.",
             f"# Every value is the placeholder {PLACEHOLDER}: set the real ones with",
             f"#   sops edit {path}",
             "# (or replace this file with `mcpyard secret encrypt`) before committing."]
    for s in entry.secrets:
        need = "required" if s.required else (
            f"optional: unused, delete it here and from spec.secrets in {entry.name}.yaml")
        lines.append(f"#   {s.name.lower()} ({need}): {' '.join(s.description.split())}")
    return "\n".join(lines) + "\n" + text


def manifest(entry: hub_api.HubEntry, *, workspace: str, namespace: str | None = None) -> str:
    """An MCPServer manifest (YAML text, with explaining comments) installing ``entry``."""
    secret_name = _secret_name(entry)
    metadata: dict[str, object] = {"name": entry.name}
    if namespace:
        metadata["namespace"] = namespace
    source: dict[str, object] = {"name": entry.name, "version": _Quoted(entry.version)}
    required = {name: entry.config.properties[name] for name in entry.config.required}
    if required:  # a value to edit, the documented example where there is one
        source["env"] = {name: (s.examples or [PLACEHOLDER])[0] for name, s in required.items()}
    spec: dict[str, object] = {"workspace": workspace, "hub": source}
    secrets = []
    for secret in entry.secrets:
        injection: dict[str, object] = {
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
    if entry.config.properties:
        lines.append("# Settings it reads (spec.hub.env):")
        for name, setting in entry.config.properties.items():
            need = "required" if name in entry.config.required else "optional"
            default = f" (default {setting.default})" if setting.default is not None else ""
            about = " ".join(setting.description.split())
            lines.append(f"#   {name} ({need}): {about}{default}")
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
