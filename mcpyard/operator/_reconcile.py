"""The one place that recompiles a workspace and applies the result.

A reconcile of workspace W reads W's resources from the indexes (the Workspaces named W
in any namespace, the MCPServers and Members that name W, the EncryptedSecrets those servers
use), compiles just them with the same compiler ``mcpyard render`` uses (target ``cluster``),
then applies: member tokens first (their hashes are an input), the gateway config Secret, the
hosted servers' Deployments, Services and env Secrets; every status that changed is written by
a second run, queued behind every configuration. Nothing is written when nothing changed, so
a resync costs reads.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import cast

from mcpyard import compiler, errors, jsontypes, kube
from mcpyard.api import v1alpha1
from mcpyard.api.v1alpha1 import conditions as c
from mcpyard.compiler import children
from mcpyard.jsontypes import JSONObject, JSONValue
from mcpyard.operator import _manifests, _source, _tokens
from mcpyard.operator._runtime import STATUS, Entry, Runtime, WorkKey
from mcpyard.operator._settings import FINALIZER

log = logging.getLogger("mcpyard.operator")

CONFIG_LABEL = kube.CONFIG_LABEL
WORKSPACE_LABEL = kube.WORKSPACE_LABEL
ENV_HASH_ANNOTATION = "mcpyard.io/env-secret-hash"
MANAGED = {"app.kubernetes.io/managed-by": "mcpyard"}


config_secret_name = kube.config_secret_name


async def run(rt: Runtime, key: WorkKey, force: bool) -> None:
    """The reconciler's work function."""
    if key[0] in ("ws", "status"):
        # Its two runs (configuration, statuses) are two keys: never at once on one workspace.
        async with rt.locks.setdefault(key[1], asyncio.Lock()):
            await workspace(rt, key[1], force=force, statuses=key[0] == "status")
    elif key[0] == "secret":
        await encrypted_secret(rt, key[1], key[2], force=force)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


# -- EncryptedSecrets -------------------------------------------------------------------------


async def encrypted_secret(rt: Runtime, namespace: str, name: str, *, force: bool) -> None:
    entries = rt.index("secrets", (namespace, name))
    if not entries:
        rt.store.forget((namespace, name))
    else:
        item: Entry = entries[0]
        if item.resource is not None and not item.deleting:
            if force:
                rt.store.reset_identities()
            state = await rt.store.sync(item.body, force=force)
            observed = compiler.Observed(
                decrypted=frozenset() if state.failure else frozenset({(namespace, name)}),
                secret_failures={(namespace, name): state.failure} if state.failure else {},
            )
            out = compiler.compile(
                [item.resource], now=_now(), catalog=rt.catalog, observed=observed, target="cluster"
            )
            await _patch_status(rt, item, out.statuses[item.key], force=force)
        elif item.resource is None:
            await _patch_status(rt, item, _invalid_status(item), force=force)
    for ws in rt.workspaces_using([(namespace, name)]):
        rt.request(("ws", ws))


# -- workspaces -------------------------------------------------------------------------------


async def workspace(rt: Runtime, ws: str, *, force: bool, statuses: bool = False) -> None:
    """Compile workspace ``ws`` and apply its config Secret and children; its statuses are
    written by a run of their own (``statuses=True``, queued at the ``STATUS`` priority), so
    that at a cold start every workspace's configuration goes out before the first status.
    That run compiles again (a millisecond) and writes what changed since; ``force`` there
    repairs drift in statuses and manifests, the configuration was forced by the first run."""
    now = _now()
    if statuses:
        force, force_status = False, force
    else:
        force_status = False
    workspaces = rt.index("workspaces", ws)
    servers = rt.index("servers", ws)
    members = rt.index("members", ws)
    entries: list[Entry] = [*workspaces, *servers, *members]
    live = [e for e in entries if not e.deleting]
    valid = [e for e in live if e.resource is not None]

    secret_keys = sorted(
        {
            (e.namespace, inj.secret_ref.name)
            for e in valid
            if isinstance(e.resource, v1alpha1.MCPServer)
            for inj in e.resource.spec.secrets
        }
    )
    secrets: list[Entry] = []
    decrypted: set[tuple[str, str]] = set()
    failures: dict[tuple[str, str], str] = {}
    for key in secret_keys:
        found = [e for e in rt.index("secrets", key) if e.resource is not None]
        if not found:
            continue
        secrets.append(found[0])
        state = await rt.store.sync(found[0].body, force=force)
        if state.failure:
            failures[key] = state.failure
        else:
            decrypted.add(key)

    minted: dict[tuple[str, str], str] = {}
    for e in valid:
        if isinstance(e.resource, v1alpha1.Member) and e.resource.spec.token_hash is None:
            minted[(e.namespace, e.name)] = await _tokens.ensure(rt, e)

    server_keys = [
        (e.namespace, e.name) for e in valid if isinstance(e.resource, v1alpha1.MCPServer)
    ]
    observed = compiler.Observed(
        decrypted=frozenset(decrypted),
        secret_failures=failures,
        tools={k: rt.tools[k].names for k in server_keys if k in rt.tools},
        server_health={k: rt.health[k] for k in server_keys if k in rt.health},
        minted_token_hashes=minted,
    )
    resources = [e.resource for e in valid if e.resource is not None]
    resources += [e.resource for e in secrets if e.resource is not None]
    # A resource that broke keeps its last good version, the rest applies (the compiler's
    # held-resource rule): the last good versions are those of the config last applied.
    last_good = await _served(rt, ws)
    source = await _source.find(
        rt.client,
        [e.body for e in valid],
        argocd_namespace=rt.settings.argocd_namespace,
        unreadable=rt.unreadable,
    )
    out = compiler.compile(
        resources,
        now=now,
        catalog=rt.catalog,
        observed=observed,
        target="cluster",
        base_url=rt.settings.gateway_url,
        runner_image=rt.settings.runner_image,
        last_good={ws: last_good} if last_good is not None else None,
        unreadable={
            e.key: "; ".join(str(p) for p in e.problems) or "invalid"
            for e in live
            if e.resource is None
        },
        source=source,
    )
    for held in out.held:
        log.warning("workspace %s: %s", held.workspace, held)

    programmed = await _apply_config(rt, ws, out, workspaces, force=force)
    await _apply_children(rt, ws, out, servers, force=force)
    _remember_servers(rt, ws, out, server_keys)
    if not statuses:
        for e in servers:
            await _release(rt, e)
        for e in workspaces:
            if e.deleting:  # its config Secret is gone (or another Workspace's) by now
                await _release(rt, e)
        rt.request(("status", ws), force=force, priority=STATUS)
        return
    force = force_status

    cfg = out.workspaces.get(ws)
    compiled = {(s.namespace, s.name): s for s in cfg.servers} if cfg is not None else {}
    manifests = _manifests.build(rt, ws, compiled)
    for e in entries:
        if e.deleting:
            continue
        if e.resource is None:
            await _patch_status(rt, e, _invalid_status(e), force=force)
            continue
        status = copy.deepcopy(out.statuses[e.key])
        if isinstance(e.resource, v1alpha1.Member) and (e.namespace, e.name) in minted:
            status["tokenSecret"] = _tokens.secret_name(e.name)
        if isinstance(e.resource, v1alpha1.MCPServer):
            discovered = rt.tools.get((e.namespace, e.name))
            if discovered is not None:
                status["tools"] = [
                    {"name": n, **({"description": d} if d else {})} for n, d in discovered.tools
                ]
                status["lastRefresh"] = discovered.refreshed.isoformat().replace("+00:00", "Z")
                if discovered.protocol is not None:
                    status["protocol"] = dict(discovered.protocol)
                before = status.get("conditions")
                conditions: list[JSONValue] = [
                    *(before if isinstance(before, list) else []),
                    compiler.tools_changed_condition(
                        discovered.refreshed,
                        len(discovered.tools),
                        discovered.changed,
                        discovered.first,
                        e.generation,
                    ),
                ]
                server = compiled.get((e.namespace, e.name))
                pinned = server and _manifests.pinned_condition(e, server, discovered, now)
                if pinned:
                    conditions.append(pinned)
                status["conditions"] = conditions
            built = manifests.get((e.namespace, e.name))
            stored = built and await _manifests.store(rt, e, ws, built, force=force)
            if stored:
                status["manifest"] = {**stored}
        if (
            isinstance(e.resource, v1alpha1.Workspace)
            and programmed is not None
            and e.key == _winner(out, ws)
        ):
            status = compiler.not_programmed(status, *programmed)
        await _patch_status(rt, e, status, force=force)


async def _release(rt: Runtime, e: Entry) -> None:
    """Remove the finalizer older versions put on MCPServers and Workspaces (kopf guarded
    its discovery daemons and its Workspace deletion handler with it; neither exists now,
    and kopf watches neither kind to take it off): without this, deleting one would hang."""
    finalizers = jsontypes.seq(e.body, "metadata", "finalizers")
    if FINALIZER in finalizers:
        kept = [f for f in finalizers if f != FINALIZER]
        patch = {"metadata": {"finalizers": kept}}
        await rt.client.patch(v1alpha1.API_VERSION, e.kind, e.namespace, e.name, patch)


async def preload_served(rt: Runtime) -> None:
    """Read every config Secret with one list at start (instead of a GET per workspace).

    Each workspace found is reconciled once the informers have listed (:func:`orphans`):
    a Workspace deleted while no operator ran has its config Secret deleted then, before
    routine work (Workspaces carry no finalizer: the operator's own list and watch see every
    deletion, and this list every deletion it missed)."""
    ns = rt.settings.operator_namespace
    try:
        found = await rt.client.list("v1", "Secret", ns, labels={CONFIG_LABEL: "true"})
    except kube.ApiError as exc:  # each workspace reads its own at its first reconcile
        log.warning("cannot list the config Secrets in %s: %s", ns, exc)
        return
    for secret in found:
        ws = kube.config_workspace(secret)
        if ws:
            _remember_served(rt, ws, secret)
            # A list's items name no apiVersion and kind; the comparison with what is wanted
            # (:func:`kube.covers`) needs them.
            rt.listed[ws] = {"apiVersion": "v1", "kind": "Secret", **secret}
    rt.served_listed = True


def orphans(rt: Runtime) -> list[str]:
    """Once every kind is listed: the workspaces whose config Secret the start found but
    which no Workspace names (deleted while no operator ran), each requested first."""
    known = set(rt.indexes.keys("workspaces"))
    gone = sorted(ws for ws in rt.listed if ws not in known)
    for ws in gone:
        rt.request(("ws", ws), urgent=True)
    return gone


def _remember_served(rt: Runtime, ws: str, secret: kube.KubeObject) -> None:
    try:
        rt.served[ws] = kube.read_config(secret).config
    except errors.MCPyardError as exc:  # unreadable: nothing to keep
        name = jsontypes.text(secret, "metadata", "name")
        log.warning(
            "workspace %s: config Secret %s/%s: %s", ws, rt.settings.operator_namespace, name, exc
        )


async def _served(rt: Runtime, ws: str) -> compiler.config.WorkspaceConfig | None:
    """The configuration the workspace's config Secret carries (read once per start)."""
    if not rt.served_listed and ws not in rt.served and ws not in rt.served_read:
        rt.served_read.add(ws)  # after that, this operator writes it and remembers it
        ns, name = rt.settings.operator_namespace, config_secret_name(ws)
        current = await rt.client.get("v1", "Secret", ns, name)
        if current is not None:
            _remember_served(rt, ws, current)
    return rt.served.get(ws)


def _winner(out: compiler.Compilation, ws: str) -> tuple[str, str, str] | None:
    cfg = out.workspaces.get(ws)
    return (cfg.namespace, "Workspace", ws) if cfg is not None else None


def _remember_servers(
    rt: Runtime, ws: str, out: compiler.Compilation, keys: list[tuple[str, str]]
) -> None:
    cfg = out.workspaces.get(ws)
    compiled = {(s.namespace, s.name): s for s in cfg.servers} if cfg else {}
    kept: set[tuple[str, str]] = set()
    for key in keys:
        server = compiled.get(key)
        before = rt.servers.get(key)
        if server is None:
            rt.servers.pop(key, None)
            continue
        kept.add(key)
        if before is None or before[1] != server:
            rt.servers[key] = (ws, server)
            rt.wake(key)
    # This workspace's servers of the run before and not of this one (looked up by workspace:
    # a scan of every server per run made a cold start quadratic).
    for key in rt.servers_of.pop(ws, set()) - kept:
        if rt.servers.get(key, ("",))[0] == ws:
            rt.servers.pop(key, None)
    if kept:
        rt.servers_of[ws] = kept


def _invalid_status(e: Entry) -> JSONObject:
    return compiler.invalid_status(
        e.namespace, e.kind, e.name, e.generation, e.problems, _now(), workspace=e.workspace
    )


# -- the gateway config Secret ----------------------------------------------------------------


def config_secret(rt: Runtime, ws: str, out: compiler.Compilation) -> kube.KubeObject:
    cfg = out.workspaces[ws]
    identities = [
        i.ref.identity for s in cfg.servers for i in s.injections if i.as_ in ("bearer", "header")
    ]
    if cfg.sign_in.oidc is not None:  # the gateway signs members in with it
        identities.append(cfg.sign_in.oidc.client_secret.identity)
    return kube.config_secret(rt.settings.operator_namespace, cfg, rt.store.sealed(identities))


def data_size(secret: kube.KubeObject) -> int:
    """Bytes of a Secret's data as the API server counts them (decoded)."""
    data = jsontypes.obj(secret, "data").values()
    return sum(len(base64.b64decode(v)) for v in data if isinstance(v, str))


async def _apply_config(
    rt: Runtime, ws: str, out: compiler.Compilation, workspaces: list[Entry], *, force: bool
) -> tuple[str, str] | None:
    """Write the config Secret; a (reason, message) when it was held back."""
    ns, name = rt.settings.operator_namespace, config_secret_name(ws)
    ident = ("v1/Secret", ns, name, ws)
    if not any(not e.deleting for e in workspaces):
        # No Workspace of this name (any more): its config goes. Members or servers naming a
        # workspace that never existed cost one DELETE (404) per operator start, no more.
        if ident in rt.applied or ws not in rt.sizes:
            # Not found by the list at start and not written since: nothing to delete.
            absent = _listed(rt) and ident not in rt.applied and rt.listed.pop(ws, None) is None
            rt.applied.pop(ident, None)
            rt.sizes[ws] = 0
            rt.served.pop(ws, None)
            if not absent and await rt.client.delete("v1", "Secret", ns, name):
                log.info("workspace %s is gone: deleted its config Secret %s/%s", ws, ns, name)
        return None
    if ws not in out.workspaces:
        return None
    desired = config_secret(rt, ws, out)
    size, limit = data_size(desired), rt.settings.max_config_bytes
    if size > limit:
        log.warning(
            "workspace %s: config of %d bytes is over the limit of %d; "
            "the last applied config stays",
            ws,
            size,
            limit,
        )
        return (
            c.CONFIG_TOO_LARGE,
            f"the gateway configuration is {size} bytes, over the "
            f"limit of {limit} (a Secret holds at most 1 MiB); split the workspace "
            "(the last applied configuration stays in use)",
        )
    digest = _digest(desired)
    if ident not in rt.applied and _listed(rt):
        # The first write since the start: compared with what the list at start found (or
        # knew absent), not read again; nothing is written when it holds what is wanted.
        await kube.apply(rt.client, desired, rt.listed.pop(ws, None), known=True)
        rt.applied[ident] = digest
    elif force or rt.applied.get(ident) != digest:  # a resync also repairs drift
        await kube.apply(rt.client, desired)
        rt.applied[ident] = digest
    rt.sizes[ws] = size
    rt.served[ws] = out.workspaces[ws]
    return None


def _listed(rt: Runtime) -> bool:
    """Whether the list of config Secrets at start still says what each holds until this
    operator writes it: standalone only (with peering, another replica may have written
    since this one listed)."""
    return rt.served_listed and rt.settings.peering is None


def _digest(obj: Mapping[str, object]) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


# -- children of hosted servers ---------------------------------------------------------------


async def _apply_children(
    rt: Runtime, ws: str, out: compiler.Compilation, servers: list[Entry], *, force: bool
) -> None:
    owners = {(e.namespace, e.name): e for e in servers if not e.deleting}
    wanted: set[tuple[str, str, str, str]] = set()
    hosted: set[tuple[str, str]] = set()
    env_values: dict[tuple[str, str], dict[str, str]] = {}
    for child in out.children:  # env Secrets first: the Deployment carries a hash of them
        obj: kube.KubeObject = child.object
        if obj["kind"] != "Secret":
            continue
        refs: dict[str, str] = json.loads(  # variable -> identity, as the compiler wrote it
            jsontypes.text(obj, "metadata", "annotations", children.SECRET_REFS_ANNOTATION)
        )
        values = {
            var: v for var, identity in refs.items() if (v := rt.store.reveal(identity)) is not None
        }
        env_values[child.owner[0], child.owner[2]] = values
    for child in out.children:
        owner = owners.get((child.owner[0], child.owner[2]))
        if owner is None:
            continue
        obj = copy.deepcopy(child.object)
        # Built by the compiler (compiler.children.hosted): its metadata and labels, and a
        # Deployment's pod template annotations, are objects to write into.
        meta = cast(JSONObject, obj["metadata"])
        cast(JSONObject, meta["labels"])[WORKSPACE_LABEL] = ws
        meta["ownerReferences"] = [kube.owner_reference(owner.body)]
        values = env_values.get((owner.namespace, owner.name), {})
        if obj["kind"] == "Secret":
            obj["data"] = {
                k: base64.b64encode(v.encode()).decode() for k, v in sorted(values.items())
            }
        elif obj["kind"] == "Deployment":
            hosted.add((owner.namespace, owner.name))
            if values:
                template = jsontypes.at(obj, "spec", "template", "metadata", "annotations")
                cast(JSONObject, template)[ENV_HASH_ANNOTATION] = rt.store.digest(values)
        namespace, name = jsontypes.text(meta, "namespace"), jsontypes.text(meta, "name")
        ident = (f"{obj['apiVersion']}/{obj['kind']}", namespace, name, ws)
        wanted.add(ident)
        digest = _digest(obj)
        if force or rt.applied.get(ident) != digest:
            outcome, _ = await kube.apply(rt.client, obj)
            rt.applied[ident] = digest
            rt.children_of.setdefault(ws, set()).add(ident)
            if outcome is not kube.Outcome.UNCHANGED:
                log.info("%s %s/%s %s", obj["kind"], namespace, name, outcome.value)
    # What this workspace applied before and wants no more: servers deleted, or no longer
    # hosted, or without env secrets. (Owner references let a real cluster collect the first
    # kind too; deleting here also covers the others.)
    stale = {i for i in rt.children_of.pop(ws, set()) if i not in wanted}
    if wanted:
        rt.children_of[ws] = set(wanted)
    for ns, server in rt.indexes.deployments.get(ws):
        if (ns, server) not in hosted:
            stale.add(("apps/v1/Deployment", ns, children.object_name(server), ws))
            stale.add(("v1/Service", ns, children.object_name(server), ws))
            stale.add(("v1/Secret", ns, children.object_name(server, "env"), ws))
    for ident in sorted(stale - wanted):
        api_version, kind = ident[0].rsplit("/", 1)
        rt.applied.pop(ident, None)
        if await rt.client.delete(api_version, kind, ident[1], ident[2]):
            log.info("%s %s/%s deleted: no longer wanted", kind, ident[1], ident[2])


# -- statuses ---------------------------------------------------------------------------------


async def _patch_status(rt: Runtime, e: Entry, status: JSONObject, *, force: bool) -> None:
    key = e.key
    written = None if force else rt.written.get(key)
    # What this wrote (compact JSON of a status), else what the index holds.
    previous: JSONObject = (
        json.loads(written) if written is not None else jsontypes.obj(e.body, "status")
    )
    # A null is how a merge patch removes a field: the stored status never holds one, so
    # one kept here (a Member's `expires: null`) made every resync patch every status.
    status = {
        **{k: v for k, v in status.items() if v is not None},
        "conditions": [
            *compiler.merge_conditions(
                jsontypes.objects(previous, "conditions"), jsontypes.objects(status, "conditions")
            )
        ],
    }
    if status == previous:
        return
    patch: JSONObject = {k: None for k in previous if k not in status}
    patch.update(status)
    api_version = jsontypes.text(e.body, "apiVersion") or v1alpha1.API_VERSION
    if await rt.client.patch_status(api_version, e.kind, e.namespace, e.name, patch):
        rt.written[key] = json.dumps(status, separators=(",", ":")).encode()
