"""``mcpyard gateway``: the gateway in a cluster, serving the operator's config Secrets."""

from __future__ import annotations

import argparse
import logging
import sys

from mcpyard.cli._serve import _env, add_serving_options, records_options, serving_settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "gateway", help="run the gateway in a cluster, on the operator's config Secrets",
        description="Serve every workspace whose config Secret the operator wrote in NAMESPACE "
                    "at http://HOST:PORT/ws/NAME/mcp (and the legacy /ws/NAME/sse), following "
                    "changes with a Kubernetes watch: a revocation is served within seconds. "
                    "In a pod it uses its service account; elsewhere the kubeconfig. Options "
                    "fall back to MCPYARD_* environment variables.")
    p.add_argument("--namespace", "-n", default=_env("MCPYARD_NAMESPACE", "mcpyard"),
                   metavar="NS", help="where the operator writes the config Secrets and the "
                                      "master key (MCPYARD_NAMESPACE, default mcpyard)")
    p.add_argument("--master-key-secret",
                   default=_env("MCPYARD_MASTER_KEY_SECRET", "mcpyard-master-key"),
                   metavar="NAME", help="the Secret (key master.key) with the gateway's master "
                                        "key (MCPYARD_MASTER_KEY_SECRET)")
    p.add_argument("--kubeconfig", default=_env("MCPYARD_KUBECONFIG"), metavar="FILE",
                   help="a kubeconfig file, outside a pod (MCPYARD_KUBECONFIG; else KUBECONFIG)")
    add_serving_options(p, state_dir="where the call log (calls.db) lives")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        from mcpyard import kube
        from mcpyard.gateway.sources._cluster import ClusterSource
    except ModuleNotFoundError as exc:  # the kubernetes client is the `cluster` extra
        print(f"mcpyard gateway: {exc.name} is missing: pip install 'mcpyard[cluster]'",
              file=sys.stderr)
        return 2
    from mcpyard import __version__, errors
    from mcpyard.gateway import Settings
    from mcpyard.gateway._server import run as serve

    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    kubeconfig = args.kubeconfig

    def connect() -> kube.Client:
        return kube.Client.from_environment(
            kubeconfig=kubeconfig, user_agent=f"mcpyard-gateway/{__version__}")

    try:
        connect().close()  # fail early, with a clear message, when there are no credentials
    except errors.DependencyNotReady as exc:
        print(f"mcpyard gateway: {exc}", file=sys.stderr)
        return 2
    source = ClusterSource(connect, args.namespace, master_key_secret=args.master_key_secret)
    settings = Settings(source=source, **serving_settings(args), **records_options(args))
    log = logging.getLogger("mcpyard.gateway")
    try:
        serve(settings, log_level=args.log_level, on_ready=lambda app: log.info(
            "mcpyard gateway on %s: workspaces at /ws/NAME/mcp, from the config Secrets in "
            "namespace %s; health at %s/readyz", settings.base_url, args.namespace,
            settings.admin_url))
    except OSError as exc:
        print(f"mcpyard gateway: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0
