"""``mcpyard serve DIR``: run the gateway on a folder of manifests, reloading on change."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from mcpyard.gateway import Settings
    from mcpyard.gateway._runtime import Runtime


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value else default


def add_serving_options(p: argparse.ArgumentParser, *, state_dir: str) -> None:
    """The options every command that runs the gateway takes (``serve``, ``gateway``)."""
    p.add_argument("--host", default=_env("MCPYARD_HOST", "127.0.0.1"),
                   help="listen address (MCPYARD_HOST, default 127.0.0.1)")
    p.add_argument("--port", type=int, default=int(_env("MCPYARD_PORT", "8080") or 8080),
                   help="listen port (MCPYARD_PORT, default 8080)")
    p.add_argument("--state-dir", type=Path,
                   default=Path(_env("MCPYARD_STATE_DIR", ".mcpyard") or ".mcpyard"),
                   help=f"{state_dir} (MCPYARD_STATE_DIR, default ./.mcpyard)")
    p.add_argument("--redis-url", default=_env("MCPYARD_REDIS_URL"), metavar="URL",
                   help="keep rate limits in this Redis, shared by every gateway replica that "
                        "uses it (redis://host:6379/0; MCPYARD_REDIS_URL); default: in memory")
    p.add_argument("--audit-log", default=_env("MCPYARD_AUDIT_LOG"), metavar="PATH|-",
                   help="also write every call record as one JSON line to PATH, or to stdout "
                        "with - (MCPYARD_AUDIT_LOG)")
    p.add_argument("--records-url", default=_env("MCPYARD_RECORDS_URL"), metavar="URL",
                   help="keep the call records in this PostgreSQL database, shared by every "
                        "gateway that uses it (postgresql://user:password@host/db; "
                        "MCPYARD_RECORDS_URL; needs the postgres extra); default: "
                        "STATE_DIR/calls.db (SQLite)")
    p.add_argument("--retention-days", type=float, metavar="DAYS",
                   default=float(_env("MCPYARD_RETENTION_DAYS", "90") or 90),
                   help="delete call records older than DAYS, hourly; 0 keeps them forever "
                        "(MCPYARD_RETENTION_DAYS, default 90)")
    p.add_argument("--no-records", action="store_true",
                   default=(_env("MCPYARD_NO_RECORDS") or "").lower() in ("1", "true", "yes"),
                   help="keep no call log (STATE_DIR/calls.db); metrics stay "
                        "(MCPYARD_NO_RECORDS=1)")
    p.add_argument("--allow-origin", action="append", metavar="ORIGIN",
                   default=[o for o in (_env("MCPYARD_ALLOWED_ORIGINS") or "").split(",") if o],
                   help="a browser origin allowed besides loopback ones; repeatable "
                        "(MCPYARD_ALLOWED_ORIGINS, comma-separated)")
    p.add_argument("--allow-host", action="append", metavar="HOST",
                   default=[h for h in (_env("MCPYARD_ALLOWED_HOSTS") or "").split(",") if h],
                   help="a Host header name allowed besides loopback ones when listening on "
                        "loopback (DNS-rebinding guard); repeatable (MCPYARD_ALLOWED_HOSTS, "
                        "comma-separated)")
    p.add_argument("--admin-port", type=int, metavar="PORT",
                   default=int(_env("MCPYARD_ADMIN_PORT") or 0) or None,
                   help="serve /readyz and /metrics on this port only, not on --port: they "
                        "name workspaces, servers and upstream errors (MCPYARD_ADMIN_PORT; "
                        "default: on --port)")
    p.add_argument("--drain-seconds", type=float, metavar="S",
                   default=float(_env("MCPYARD_DRAIN_SECONDS", "10") or 10),
                   help="on SIGTERM, how long calls in flight may still finish; the rest are "
                        "answered with a JSON-RPC error (MCPYARD_DRAIN_SECONDS, default 10)")
    p.add_argument("--max-json-depth", type=int, metavar="N",
                   default=int(_env("MCPYARD_MAX_JSON_DEPTH", "64") or 64),
                   help="deepest nesting a request body may have (MCPYARD_MAX_JSON_DEPTH, "
                        "default 64)")
    p.add_argument("--auth-failures-per-minute", type=int, metavar="N",
                   default=int(_env("MCPYARD_AUTH_FAILURES_PER_MINUTE", "30") or 30),
                   help="failed authentications allowed per client address and minute; more "
                        "get 429 (MCPYARD_AUTH_FAILURES_PER_MINUTE, default 30)")
    p.add_argument("--public-url", default=_env("MCPYARD_PUBLIC_URL"), metavar="URL",
                   help="the gateway's public base URL behind an ingress "
                        "(https://mcp.example.com): OAuth issuers, resource URLs and metadata "
                        "name it (MCPYARD_PUBLIC_URL; default: each request's own)")
    p.add_argument("--no-oauth", action="store_true",
                   default=(_env("MCPYARD_NO_OAUTH") or "").lower() in ("1", "true", "yes"),
                   help="no MCP authorization (OAuth) for any workspace: mwt_ bearer tokens "
                        "only (MCPYARD_NO_OAUTH=1)")
    p.add_argument("--oauth-metadata-ca", default=_env("MCPYARD_OAUTH_METADATA_CA"),
                   metavar="FILE",
                   help="verify OAuth clients' metadata document servers with this CA bundle "
                        "(MCPYARD_OAUTH_METADATA_CA; default: the system's)")
    p.add_argument("--oidc-ca", default=_env("MCPYARD_OIDC_CA"), metavar="FILE",
                   help="verify the workspaces' OpenID Connect providers with this CA bundle "
                        "(MCPYARD_OIDC_CA; default: the system's)")
    p.add_argument("--oauth-private-metadata", action="store_true",
                   default=(_env("MCPYARD_OAUTH_PRIVATE_METADATA") or "").lower()
                   in ("1", "true", "yes"),
                   help="also fetch OAuth clients' metadata documents from loopback and "
                        "private addresses (tests, closed networks; MCPYARD_OAUTH_PRIVATE_"
                        "METADATA=1)")
    p.add_argument("--log-level", default=_env("MCPYARD_LOG_LEVEL", "info"),
                   choices=["debug", "info", "warning", "error"],
                   help="(MCPYARD_LOG_LEVEL, default info)")


def needs_extra(option: str, module: str, extra: str) -> None:
    """A usage error naming the extra to install when ``option`` needs a module that is not
    installed (an optional backend), before anything starts."""
    try:
        importlib.import_module(module)
    except ImportError:
        raise SystemExit(f"mcpyard: {option} needs the {extra} extra: "
                         f"pip install 'mcpyard[{extra}]'") from None


def serving_settings(args: argparse.Namespace) -> dict[str, Any]:  # Settings' keywords
    """The :class:`~mcpyard.gateway.Settings` fields of :func:`add_serving_options`."""
    if args.redis_url:
        needs_extra("--redis-url", "redis", "redis")
    return {
        "host": args.host, "port": args.port, "state_dir": args.state_dir,
        "redis_url": args.redis_url or None, "records": not args.no_records,
        "audit_log": args.audit_log or None, "allowed_origins": tuple(args.allow_origin),
        "allowed_hosts": tuple(args.allow_host), "admin_port": args.admin_port,
        "drain_seconds": args.drain_seconds, "max_json_depth": args.max_json_depth,
        "auth_failures_per_minute": args.auth_failures_per_minute,
        "public_url": _public_url(args.public_url), "oauth": not args.no_oauth,
        "oauth_metadata_ca_file": args.oauth_metadata_ca or None,
        "oauth_private_metadata": args.oauth_private_metadata,
        "oidc_ca_file": args.oidc_ca or None,
    }


def _public_url(url: str | None) -> str | None:
    if not url:
        return None
    if not url.startswith(("https://", "http://")) or "?" in url or "#" in url:
        raise SystemExit(f"mcpyard: --public-url: not an http(s) base URL: {url}")
    return url.rstrip("/")
def records_options(args: argparse.Namespace) -> dict[str, Any]:  # Settings' keywords
    """The Settings fields of --records-url and --retention-days (checked here, so that a
    wrong URL is a usage error naming the option, never echoing a password)."""
    from mcpyard.gateway.services import _pgrecords

    url = args.records_url or None
    if url is not None and not _pgrecords.is_postgres(url):
        raise SystemExit("mcpyard: --records-url: not a PostgreSQL URL (postgresql://...): "
                         f"{_pgrecords.safe_url(url)}")
    if url is not None:
        needs_extra("--records-url", "psycopg", "postgres")
    if args.retention_days < 0:
        raise SystemExit("mcpyard: --retention-days: must be 0 (keep forever) or more")
    return {"records_url": url, "retention_days": args.retention_days}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "serve", help="run the gateway on a folder of manifests",
        description="Serve every workspace of DIR at http://HOST:PORT/ws/NAME/mcp (and the "
                    "legacy /ws/NAME/sse), reloading when a manifest changes. Options fall back "
                    "to MCPYARD_* environment variables; the age identity for EncryptedSecrets "
                    "also comes from SOPS_AGE_KEY_FILE or SOPS_AGE_KEY, as with sops.")
    p.add_argument("folder", type=Path, metavar="DIR", nargs="?",
                   default=_env("MCPYARD_DIR"), help="folder of manifests (MCPYARD_DIR)")
    p.add_argument("--age-key-file", type=Path,
                   default=_env("MCPYARD_AGE_KEY_FILE") or _env("SOPS_AGE_KEY_FILE"),
                   help="age identity file (MCPYARD_AGE_KEY_FILE, SOPS_AGE_KEY_FILE)")
    add_serving_options(p, state_dir="where the vault's master key and the call log "
                                          "(calls.db) live")
    p.add_argument("--no-watch", action="store_true", help="do not reload on change")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mcpyard.gateway import Settings
    from mcpyard.gateway._server import run as serve

    if args.folder is None:
        print("mcpyard serve: a folder of manifests is required (DIR or MCPYARD_DIR)",
              file=sys.stderr)
        return 2
    if not args.folder.is_dir():
        print(f"mcpyard serve: {args.folder}: not a folder", file=sys.stderr)
        return 2
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings(
        manifests=args.folder, age_key_file=args.age_key_file,
        age_key=None if args.age_key_file else os.environ.get("SOPS_AGE_KEY") or None,
        watch=not args.no_watch, **serving_settings(args),
        **records_options(args))
    try:
        serve(settings, log_level=args.log_level, on_ready=lambda app: _banner(app, settings))
    except OSError as exc:
        print(f"mcpyard serve: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


def _banner(app: Starlette, settings: Settings) -> None:
    runtime: Runtime = app.state.runtime  # Starlette's State is untyped
    lines = [f"mcpyard gateway on {settings.base_url} (manifests: {settings.manifests})"]
    if not runtime.live:
        lines.append("  no workspace is serving yet; see /readyz and the log for why")
    for _, live in sorted(runtime.live.items()):
        members = live.active_members()
        lines.append(f"  {live.config.display_name}: {settings.base_url}{live.config.path}"
                     f"   ({len(live.config.servers)} servers, {members} members)")
    lines += [
        "Clients send 'Authorization: Bearer mwt_...'. To get a token: run `mcpyard token new`,",
        "put its tokenHash in your Member manifest (spec.tokenHash), and give the token to the",
        "member. OAuth clients (MCP authorization) sign members in with that token"
        + ("." if settings.oauth else ": off (--no-oauth)."),
        f"Health: {settings.admin_url}/readyz",
    ]
    if settings.records:
        from mcpyard.gateway.services import _pgrecords

        store = (_pgrecords.safe_url(settings.records_url) if settings.records_url
                 else settings.records_path)
        lines.append(f"Call log: {store} (`mcpyard analytics`); console: "
                     f"{settings.base_url}/console (admins)")
    print("\n".join(lines), flush=True)
