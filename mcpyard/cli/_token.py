"""``mcpyard token new``: a fresh member token and the ``tokenHash`` line for its Member;
``mcpyard token revoke``: end a member's OAuth grants (the tokens OAuth clients hold)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from mcpyard.crypto import tokens


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    revoke = actions.add_parser(
        "revoke",
        help="revoke a member's OAuth grants (what OAuth clients hold for them)",
        description=(
            "Revoke the OAuth grants of a member of WORKSPACE: every grant, those of one "
            "client (--client) or one grant (--grant, as the console and the call records "
            "name it). Their access and refresh tokens stop working at once on this "
            "gateway's database (every replica within seconds). An mwt_ token is revoked in "
            "git instead: disable the Member or change its tokenHash."
        ),
    )
    revoke.add_argument("workspace", metavar="WORKSPACE")
    revoke.add_argument("member", metavar="MEMBER", help="the Member's metadata.name")
    revoke.add_argument("--client", metavar="CLIENT_ID", help="only this client's grants")
    revoke.add_argument("--grant", metavar="ID", help="only this grant")
    revoke.add_argument("--state-dir", type=Path,
                        default=Path(os.environ.get("MCPYARD_STATE_DIR") or ".mcpyard"),
                        help="the gateway's state directory, whose calls.db holds the "
                             "grants (MCPYARD_STATE_DIR, default ./.mcpyard)")
    revoke.add_argument("--records-url", default=os.environ.get("MCPYARD_RECORDS_URL"),
                        metavar="URL", help="the gateway's PostgreSQL records database "
                                            "instead (MCPYARD_RECORDS_URL)")
    revoke.add_argument("--redis-url", default=os.environ.get("MCPYARD_REDIS_URL"),
                        metavar="URL", help="the gateway's Redis, when it keeps the grants "
                                            "there (no --records-url; MCPYARD_REDIS_URL)")
    revoke.add_argument("--json", action="store_true", help='print {"revoked": [ids]}')
    revoke.set_defaults(func=run_revoke)


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


def run_revoke(args: argparse.Namespace) -> int:
    from mcpyard.gateway.oauth._store import open_store
    from mcpyard.gateway.services import _pgrecords, _records

    where: str | Path
    if args.records_url:
        if not _pgrecords.is_postgres(args.records_url):
            print("mcpyard token revoke: --records-url: not a PostgreSQL URL "
                  f"(postgresql://...): {_pgrecords.safe_url(args.records_url)}",
                  file=sys.stderr)
            return 2
        where = args.records_url
    elif args.redis_url:
        where = args.state_dir / "calls.db"  # unused: the grants are in Redis
    else:
        path: Path = args.state_dir / "calls.db"
        if not path.is_file():
            print(f"mcpyard token revoke: {path}: no gateway database here (--state-dir)",
                  file=sys.stderr)
            return 2
        where = path
    try:
        store = open_store(where, None if args.records_url else args.redis_url)
    except Exception as exc:  # the database's own error: redacted, never a password
        print(f"mcpyard token revoke: {_records.redact(str(exc))}", file=sys.stderr)
        return 1
    try:
        ids = store.call(lambda: store.revoke(
            grant_id=args.grant, workspace=args.workspace, member=args.member,
            client_id=args.client))
    finally:
        store.close()
    if args.json:
        print(json.dumps({"revoked": ids}))
    elif ids:
        print(f"revoked {len(ids)} OAuth grant(s) of {args.workspace}/{args.member}: "
              + ", ".join(ids))
    else:
        print(f"no OAuth grant of {args.workspace}/{args.member} to revoke")
    return 0
