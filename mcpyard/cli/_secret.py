"""``mcpyard secret encrypt``: an EncryptedSecret manifest, encrypted with sops for age.

The plaintext goes to sops through a pipe only; the manifest comes out on stdout.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from mcpyard import errors
from mcpyard.crypto import sops

RECIPIENT_ENV = ("MCPYARD_AGE_RECIPIENTS", "SOPS_AGE_RECIPIENTS")
"""Where recipients come from when no --age is given (comma-separated, as sops reads them)."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "secret",
        help="encrypted secrets",
        description="EncryptedSecret manifests, encrypted with sops and age.",
    )
    actions = parser.add_subparsers(dest="secret_command", required=True)
    encrypt = actions.add_parser(
        "encrypt",
        help="print an EncryptedSecret manifest, its values encrypted with sops",
        description=(
            "Print an EncryptedSecret manifest whose values are encrypted with sops for the "
            "given age recipients (several allowed: the cluster's key and a break-glass key). "
            f"Without --age, recipients come from {' or '.join(RECIPIENT_ENV)}."
        ),
    )
    encrypt.add_argument("name", metavar="NAME", help="metadata.name of the EncryptedSecret")
    encrypt.add_argument(
        "-n",
        "--namespace",
        default=os.environ.get("MCPYARD_NAMESPACE", "default"),
        help="metadata.namespace (default: $MCPYARD_NAMESPACE or 'default')",
    )
    encrypt.add_argument(
        "--from-literal",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a key and its value (repeatable)",
    )
    encrypt.add_argument(
        "--from-file",
        action="append",
        default=[],
        metavar="KEY=PATH",
        help="a key and the file holding its value, read as UTF-8 text (repeatable)",
    )
    encrypt.add_argument(
        "--age",
        action="append",
        default=[],
        metavar="RECIPIENT",
        help="an age recipient, age1... (repeatable, or comma-separated)",
    )
    encrypt.set_defaults(func=run)


def _split(item: str, option: str, what: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep:
        raise errors.UsageError(f"{option} {item!r}: expected KEY={what}")
    if not key:
        raise errors.UsageError(f"{option}: expected KEY={what}, the key is empty")
    return key, value


def _data(args: argparse.Namespace) -> dict[str, str]:
    data: dict[str, str] = {}

    def add(key: str, value: str, option: str) -> None:
        if key in data:
            raise errors.UsageError(f"{option}: key {key!r} given twice")
        data[key] = value

    for item in args.from_literal:
        if "=" not in item:
            # Never echo the argument: it may be a value typed without its key.
            raise errors.UsageError("--from-literal: expected KEY=VALUE (the '=' is missing)")
        add(*_split(item, "--from-literal", "VALUE"), "--from-literal")
    for item in args.from_file:
        key, path = _split(item, "--from-file", "PATH")
        try:
            value = Path(path).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise errors.UsageError(f"--from-file {key}={path}: not UTF-8 text") from None
        except OSError as exc:
            raise errors.UsageError(f"--from-file {key}={path}: {exc.strerror}") from None
        add(key, value, "--from-file")
    if not data:
        raise errors.UsageError(
            "give at least one --from-literal KEY=VALUE or --from-file KEY=PATH")
    return data


def _recipients(args: argparse.Namespace) -> list[str]:
    given: list[str] = list(args.age)
    if not given:
        for name in RECIPIENT_ENV:
            if os.environ.get(name, "").strip():
                given = [os.environ[name]]
                break
    recipients = [r.strip() for item in given for r in item.split(",") if r.strip()]
    if not recipients:
        raise errors.UsageError(
            f"no age recipient: pass --age age1... or set {' or '.join(RECIPIENT_ENV)}"
        )
    for recipient in recipients:
        try:
            sops.check_recipient(recipient)
        except errors.SecretError as exc:
            raise errors.UsageError(f"--age: {exc}") from None
    return list(dict.fromkeys(recipients))


def run(args: argparse.Namespace) -> int:
    try:
        data = _data(args)
        recipients = _recipients(args)
    except errors.UsageError as exc:
        print(f"mcpyard secret encrypt: {exc}", file=sys.stderr)
        return 2
    try:
        text = sops.encrypt_secret(args.name, args.namespace, data, recipients)
    except errors.InvalidResource as exc:
        for problem in exc.problems:
            print(f"mcpyard secret encrypt: {problem}", file=sys.stderr)
        return 2
    except errors.SecretError as exc:
        print(f"mcpyard secret encrypt: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(text)
    return 0
