"""``mcpyard bridge -- CMD ARGS...``: serve one stdio MCP server over streamable HTTP."""

from __future__ import annotations

import argparse
import logging
import os


def _env(name: str, default: str) -> str:
    return os.environ.get(f"MCPYARD_BRIDGE_{name}") or default


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "bridge",
        help="serve a stdio MCP server over streamable HTTP",
        usage="mcpyard bridge [--host H] [--port P] [--path /mcp] -- CMD [ARGS...]",
        description="Run CMD as a supervised stdio MCP server (restarted with backoff when it "
        "exits) and serve it over streamable HTTP at PATH, in both protocol eras, "
        "with /healthz (the process is up) and /readyz (initialized). Options also "
        "come from MCPYARD_BRIDGE_* environment variables.",
    )
    p.add_argument(
        "--host",
        default=_env("HOST", "0.0.0.0"),
        help="address to listen on (MCPYARD_BRIDGE_HOST, default 0.0.0.0)",
    )
    p.add_argument(
        "--port",
        type=int,
        default=int(_env("PORT", "8080")),
        help="port to listen on (MCPYARD_BRIDGE_PORT, default 8080)",
    )
    p.add_argument(
        "--path",
        default=_env("PATH", "/mcp"),
        help="the MCP endpoint (MCPYARD_BRIDGE_PATH, default /mcp)",
    )
    p.add_argument(
        "--grace",
        type=float,
        default=float(_env("GRACE", "10")),
        metavar="SECONDS",
        help="time in-flight requests get after SIGTERM (default 10)",
    )
    p.add_argument(
        "--startup-wait",
        type=float,
        default=float(_env("STARTUP_WAIT", "10")),
        metavar="SECONDS",
        help="how long a request waits for a (re)starting server (default 10)",
    )
    p.add_argument(
        "--init-timeout",
        type=float,
        default=float(_env("INIT_TIMEOUT", "30")),
        metavar="SECONDS",
        help="how long the server gets to answer initialize (default 30)",
    )
    p.add_argument("--verbose", "-v", action="store_true", help="log debug messages")
    p.add_argument(
        "command",
        nargs=argparse.REMAINDER,
        metavar="-- CMD ARGS",
        help="the stdio server's command line",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mcpyard import bridge

    command = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        print("mcpyard bridge: a command is required: mcpyard bridge [OPTIONS] -- CMD ARGS...")
        return 2
    if not args.path.startswith("/"):
        print(f"mcpyard bridge: --path must start with '/': {args.path!r}")
        return 2
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    settings = bridge.Settings(
        command=tuple(command),
        host=args.host,
        port=args.port,
        path=args.path,
        grace=args.grace,
        startup_wait=args.startup_wait,
        timeout=args.init_timeout,
    )
    return bridge.run(settings)
