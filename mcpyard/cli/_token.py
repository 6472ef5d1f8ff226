"""``mcpyard token new``: a fresh member token and the ``tokenHash`` line for its Member."""

from __future__ import annotations

import argparse
import json
from typing import Any

from mcpyard.crypto import tokens


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "token",
        help="member tokens",
        description="Member tokens (mwt_...). Only the token's hash goes into git.",
    )
    actions = parser.add_subparsers(dest="token_command", required=True)
    new = actions.add_parser(
        "new",
        help="a fresh member token and its tokenHash (the token is shown once)",
        description=(
            "Print a fresh member token and the tokenHash line for the Member's spec. "
            "The token is shown once and cannot be recovered from its hash."
        ),
    )
    new.add_argument(
        "--json",
        action="store_true",
        help='print exactly {"token": ..., "tokenHash": ...}',
    )
    new.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    token = tokens.new()
    token_hash = tokens.hash(token)
    if args.json:
        print(json.dumps({"token": token, "tokenHash": token_hash}))
        return 0
    print("Token (shown once; hand it to the member, it cannot be recovered):")
    print(f"  {token}")
    print()
    print("Put this line in the Member's spec:")
    print(f"  tokenHash: {token_hash}")
    return 0
