"""``mcpyard operator``: run the kopf operator that turns resources into a serving gateway."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys

from mcpyard.compiler import children

DEFAULT_PEERING = "mcpyard"


def _env(name: str, default: str) -> str:
    return os.environ.get(f"MCPYARD_{name}") or default


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "operator",
        help="run the Kubernetes operator",
        description="Watch Workspaces, MCPServers, Members and EncryptedSecrets and keep the "
        "gateway configuration, hosted servers, member tokens and statuses in step "
        "with them. Options also come from MCPYARD_* environment variables.",
    )
    p.add_argument(
        "--namespace",
        "-n",
        action="append",
        default=None,
        metavar="NS",
        help="watch this namespace (repeatable); default: all namespaces "
        "(MCPYARD_WATCH_NAMESPACES, comma-separated)",
    )
    p.add_argument(
        "--operator-namespace",
        default=_env("NAMESPACE", "mcpyard"),
        metavar="NS",
        help="where config Secrets, age identities and the master key live "
        "(MCPYARD_NAMESPACE, default mcpyard)",
    )
    p.add_argument(
        "--age-secret",
        default=_env("AGE_SECRET", "mcpyard-age"),
        metavar="NAME",
        help="the Secret (operator namespace) whose *.agekey entries are the age identities "
        "(MCPYARD_AGE_SECRET, default mcpyard-age)",
    )
    p.add_argument(
        "--master-key-secret",
        default=_env("MASTER_KEY_SECRET", "mcpyard-master-key"),
        metavar="NAME",
        help="the Secret (operator namespace, key master.key) with the gateway's master key; "
        "created when absent (MCPYARD_MASTER_KEY_SECRET, default mcpyard-master-key)",
    )
    p.add_argument(
        "--gateway-url",
        default=_env("GATEWAY_URL", ""),
        metavar="URL",
        help="the gateway's public base URL, for Workspace status.url",
    )
    p.add_argument(
        "--runner-image",
        default=_env("RUNNER_IMAGE", children.RUNNER_IMAGE),
        metavar="IMG",
        help="the image hosted stdio servers run in (MCPYARD_RUNNER_IMAGE, default "
        f"{children.RUNNER_IMAGE}, as the chart)",
    )
    p.add_argument(
        "--discovery-interval",
        type=float,
        default=float(_env("DISCOVERY_INTERVAL", "3600")),
        metavar="SECONDS",
        help="how often to refresh each server's tools (default 3600)",
    )
    p.add_argument(
        "--resync-interval",
        type=float,
        default=float(_env("RESYNC_INTERVAL", "300")),
        metavar="SECONDS",
        help="how often to reconcile every workspace against drift (default 300)",
    )
    p.add_argument(
        "--peering",
        default=None,
        metavar="NAME",
        help="the kopf peering object shared by replicas (MCPYARD_PEERING); named, it must "
        "exist, or the operator exits. Default: peer through `mcpyard` when kopf's peering "
        "CRD and that object exist, else run standalone with a warning",
    )
    p.add_argument(
        "--standalone", action="store_true", help="no peering: only ever run one replica"
    )
    p.add_argument(
        "--priority",
        type=int,
        default=None,
        help="peering priority of this replica (default random)",
    )
    p.add_argument(
        "--argocd-namespace",
        default=_env("ARGOCD_NAMESPACE", "argocd"),
        metavar="NS",
        help="where Argo CD's Applications live, for source revisions (default argocd)",
    )
    p.add_argument("--kubeconfig", default=None, help="a kubeconfig file (outside a pod)")
    p.add_argument("--verbose", "-v", action="store_true", help="log debug messages")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        from mcpyard import kube, operator
    except ModuleNotFoundError as exc:  # kopf and the kubernetes client are the `cluster` extra
        print(
            f"mcpyard operator: {exc.name} is missing: pip install 'mcpyard[cluster]'",
            file=sys.stderr,
        )
        return 2
    from mcpyard import errors

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        # kopf says "Handler ... succeeded" at INFO for every event of every object: 16,000
        # lines at a cold start of 16,000 resources. Its warnings and errors still show.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    explicit = args.peering or _env("PEERING", "") or None
    namespaces = args.namespace or [n for n in _env("WATCH_NAMESPACES", "").split(",") if n]
    settings = operator.Settings(
        namespaces=tuple(namespaces),
        operator_namespace=args.operator_namespace,
        gateway_url=args.gateway_url.rstrip("/"),
        runner_image=args.runner_image,
        discovery_interval=args.discovery_interval,
        resync_interval=args.resync_interval,
        age_secret=args.age_secret,
        master_key_secret=args.master_key_secret,
        peering=None if args.standalone else (explicit or DEFAULT_PEERING),
        priority=args.priority,
        argocd_namespace=args.argocd_namespace,
    )
    kubeconfig = args.kubeconfig

    def connect() -> kube.Client:
        return kube.Client.from_environment(kubeconfig=kubeconfig)

    try:
        client = connect()  # fail early, with a clear message, when there are no credentials
    except errors.DependencyNotReady as exc:
        print(f"mcpyard operator: {exc}", file=sys.stderr)
        return 2
    try:
        why = operator.peering_absence(client, settings)
    except kube.ApiError as exc:
        why = f"the peering object cannot be read ({exc})"
    finally:
        client.close()
    if why and explicit:
        # kopf, told to peer, would wait for the peering CRD and object without a word.
        print(
            f"mcpyard operator: --peering {explicit}: {why}. Install kopf's peering CRDs and "
            "the peering object (docs/kubernetes.md), or run with --standalone",
            file=sys.stderr,
        )
        return 2
    if why:
        logging.getLogger("mcpyard.operator").warning(
            "%s: running standalone; run one replica only, or install kopf's peering CRDs "
            "and object (docs/kubernetes.md)",
            why,
        )
        settings = dataclasses.replace(settings, peering=None)
    operator.run(settings, connect)
    return 0
