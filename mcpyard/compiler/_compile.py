"""The compile: resources (+ observed state, + ``now``) -> configs, child objects, statuses.

A list of small named steps over one shared :class:`_Run`; each step reads what earlier ones
decided and reports problems against the resource and field at fault. No I/O.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypeVar

from mcpyard.api._problem import Problem
from mcpyard.api.hub import HubEntry
from mcpyard.api.v1alpha1 import conditions as c
from mcpyard.api.v1alpha1._base import Resource, check_slug
from mcpyard.api.v1alpha1.encryptedsecret import EncryptedSecret
from mcpyard.api.v1alpha1.mcpserver import MCPServer, SecretInjection, SecretKeyRef
from mcpyard.api.v1alpha1.member import Member
from mcpyard.api.v1alpha1.workspace import PLAN_REQUESTS_PER_MINUTE, Workspace
from mcpyard.compiler import _held, access, children, naming
from mcpyard.compiler._held import Held
from mcpyard.compiler._status import Report
from mcpyard.compiler.config import (
    Injection,
    MemberConfig,
    OidcConfig,
    SecretRef,
    ServerConfig,
    SignInConfig,
    Source,
    ToolFilter,
    WorkspaceConfig,
)
from mcpyard.jsontypes import JSONObject, JSONValue

Key = tuple[str, str, str]
NsName = tuple[str, str]
Target = Literal["local", "cluster"]
R = TypeVar("R", bound=Resource)
K = TypeVar("K")
MEMBER_TOOLS_MAX = 50
"""How many tool names a Member's status lists at most (``toolsNotListed`` counts the rest):
a status stays small in a workspace of thousands of tools."""


@dataclass(frozen=True)
class Observed:
    """What adapters saw outside the resources; the compiler only reads it."""

    decrypted: frozenset[NsName] = frozenset()
    """EncryptedSecrets (namespace, name) decrypted and verified."""
    secret_failures: Mapping[NsName, str] = field(default_factory=dict)
    """EncryptedSecrets that failed to decrypt, with a reason free of secrets."""
    tools: Mapping[NsName, Sequence[str]] = field(default_factory=dict)
    """Tool names discovered on each MCPServer (namespace, name)."""
    server_health: Mapping[NsName, tuple[bool, str]] = field(default_factory=dict)
    """Whether each MCPServer serves, and why not."""
    minted_token_hashes: Mapping[NsName, str] = field(default_factory=dict)
    """Hashes of tokens the operator minted for Members (namespace, name) without tokenHash;
    the spec's own tokenHash always wins."""


@dataclass(frozen=True)
class Child:
    """A Kubernetes object the cluster needs, owned by the resource ``owner``."""

    owner: Key
    object: JSONObject


@dataclass(frozen=True)
class Compilation:
    workspaces: dict[str, WorkspaceConfig]
    """The configuration of every accepted workspace, by workspace name."""
    problems: tuple[Problem, ...]
    """Every problem found, sorted; warnings included (``severity``)."""
    statuses: dict[Key, JSONObject]
    """The status of each resource, by (namespace, kind, name)."""
    children: tuple[Child, ...] = ()
    """Child objects (cluster target only)."""
    held: tuple[Held, ...] = ()
    """Resources with errors, each kept at its last good version or left out (the
    held-resource rule, :mod:`mcpyard.compiler._held`); everything else applied."""

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity == "error")

    @property
    def failed_workspaces(self) -> frozenset[str]:
        """Workspaces with at least one error (they still apply: see ``held``)."""
        return frozenset(p.workspace for p in self.errors if p.workspace)


@dataclass
class _Run:
    resources: Sequence[Resource]
    now: datetime
    catalog: Mapping[str, HubEntry]
    observed: Observed
    target: Target
    base_url: str
    runner_image: str
    source: Source | None = None
    reports: dict[Key, Report] = field(default_factory=dict)
    workspaces: dict[NsName, Workspace] = field(default_factory=dict)
    """Accepted workspaces by (namespace, name)."""
    taken: dict[NsName, str] = field(default_factory=dict)
    """Workspaces refused for a name conflict -> the namespace that holds the name."""
    secrets: dict[NsName, EncryptedSecret] = field(default_factory=dict)
    servers: dict[NsName, list[ServerConfig]] = field(default_factory=lambda: defaultdict(list))
    members: dict[NsName, list[MemberConfig]] = field(default_factory=lambda: defaultdict(list))
    children: list[Child] = field(default_factory=list)
    last_good: Mapping[str, WorkspaceConfig] = field(default_factory=dict)
    """The configuration each workspace served last, by workspace name."""
    unreadable: Mapping[Key, str] = field(default_factory=dict)
    """Resources whose documents exist but cannot be read now, and why."""
    held: list[Held] = field(default_factory=list)
    synthesized: set[Key] = field(default_factory=set)
    """Workspaces rebuilt from their last good configuration (they have no report)."""

    def of(self, kind: type[R]) -> list[R]:
        return sorted((r for r in self.resources if isinstance(r, kind)),
                      key=lambda r: (r.metadata.namespace, r.metadata.name))

    def report(self, resource: Resource) -> Report:
        return self.reports[resource.key]


def _created(resource: Resource) -> str:
    extra = resource.metadata.model_extra or {}
    return str(extra.get("creationTimestamp") or "")


def _first_wins(items: list[R], key: Callable[[R], K]) -> dict[K, list[R]]:
    """Group by ``key``; in each group the oldest (then alphabetical) comes first, as the
    Gateway API resolves conflicts."""
    groups: dict[K, list[R]] = defaultdict(list)
    for item in sorted(items, key=lambda r: (_created(r), r.metadata.namespace,
                                               r.metadata.name)):
        groups[key(item)].append(item)
    return groups


def _workspaces(run: _Run) -> None:
    for name, group in _first_wins(run.of(Workspace), lambda w: w.metadata.name).items():
        winner, *losers = group
        run.report(winner).workspace = name
        run.workspaces[(winner.metadata.namespace, name)] = winner
        for ws in losers:
            run.taken[(ws.metadata.namespace, name)] = winner.metadata.namespace
            rep = run.report(ws)
            rep.workspace = None  # the name belongs to the winner; don't hold it back
            rep.conflict = True
            rep.problem("metadata.name", f"workspace name {name} is already used in namespace "
                        f"{winner.metadata.namespace}; workspace names are unique across "
                        "namespaces because they are the URL")


def _workspace_ref(run: _Run, resource: MCPServer | Member, rep: Report) -> Workspace | None:
    ns, wanted = resource.metadata.namespace, resource.spec.workspace
    rep.workspace = wanted
    ws = run.workspaces.get((ns, wanted))
    if ws is None:
        rep.unresolved_reason = c.WORKSPACE_NOT_FOUND
        holder = run.taken.get((ns, wanted))
        rep.problem("spec.workspace", f"Workspace {wanted} not found in namespace {ns}"
                    if holder is None else f"Workspace {wanted} in namespace {ns} is not "
                    f"accepted: its name is already used in namespace {holder}", refs=True)
    return ws


def _secrets(run: _Run) -> None:
    for secret in run.of(EncryptedSecret):
        nsname = (secret.metadata.namespace, secret.metadata.name)
        run.secrets[nsname] = secret
        rep = run.report(secret)
        keys = sorted(secret.spec.string_data)
        rep.fields.update(keys=list[JSONValue](keys), keyCount=len(keys))
        rep.programmed = True
        failure = run.observed.secret_failures.get(nsname)
        if failure is not None:
            rep.ready, rep.ready_reason, rep.ready_message = False, c.DECRYPTION_FAILED, failure
        elif nsname in run.observed.decrypted:
            rep.ready, rep.ready_message = True, "decrypted and verified"


def _secret_ref(run: _Run, rep: Report, ns: str, ref: SecretKeyRef,
                where: str) -> SecretRef | None:
    """The identity of an EncryptedSecret key in ``ns``; None (with the problem named at
    ``where``) when the secret or its key is missing."""
    secret = run.secrets.get((ns, ref.name))
    if secret is None:
        rep.unresolved_reason = c.SECRET_NOT_FOUND
        rep.problem(f"{where}.name", f"EncryptedSecret {ref.name} not found in namespace "
                    f"{ns}", refs=True)
        return None
    if ref.key not in secret.spec.string_data:
        rep.unresolved_reason = c.SECRET_NOT_FOUND
        rep.problem(f"{where}.key", f"EncryptedSecret {ref.name} has no key {ref.key} "
                    f"(keys: {', '.join(sorted(secret.spec.string_data))})", refs=True)
        return None
    failure = run.observed.secret_failures.get((ns, ref.name))
    if failure is not None:
        rep.ready, rep.ready_reason = False, c.DECRYPTION_FAILED
        rep.ready_message = f"EncryptedSecret {ref.name}: {failure}"
    return SecretRef(namespace=ns, name=ref.name, key=ref.key)


def _injections(run: _Run, server: MCPServer, rep: Report,
                secrets: list[SecretInjection]) -> tuple[Injection, ...]:
    ns = server.metadata.namespace
    out = []
    for i, inj in enumerate(secrets):
        ref = _secret_ref(run, rep, ns, inj.secret_ref, f"spec.secrets[{i}].secretRef")
        if ref is None:
            continue
        target = {"bearer": "Authorization", "header": inj.header, "env": inj.env}[inj.as_]
        out.append(Injection(ref=ref, as_=inj.as_, target=str(target)))
    return tuple(out)


def _sign_in(run: _Run, ws: Workspace, rep: Report) -> SignInConfig:
    """spec.signIn compiled: token sign-in unless turned off; the OIDC client secret by
    identity (a missing secret drops the OIDC method, named at its field)."""
    spec = ws.spec.sign_in
    if spec is None:
        return SignInConfig()
    oidc = None
    if spec.oidc is not None:
        secret = _secret_ref(run, rep, ws.metadata.namespace, spec.oidc.client_secret,
                             "spec.signIn.oidc.clientSecret")
        if secret is not None:
            oidc = OidcConfig(issuer=spec.oidc.issuer.rstrip("/"),
                              client_id=spec.oidc.client_id, client_secret=secret,
                              claim=spec.oidc.claim)
    return SignInConfig(token=spec.token, oidc=oidc)


def _hub_secrets_present(rep: Report, entry: HubEntry, secrets: list[SecretInjection]) -> None:
    for needed in entry.secrets:
        if not needed.required:
            continue
        found = any(
            s.as_ == needed.as_ == "bearer"
            or (s.as_ == needed.as_ == "env" and s.env == needed.name)
            or (s.as_ == needed.as_ == "header"
                and (s.header or "").lower() == needed.name.lower())
            for s in secrets
        )
        if not found:
            how = {"env": f"as: env, env: {needed.name}", "header":
                   f"as: header, header: {needed.name}", "bearer": "as: bearer"}[needed.as_]
            rep.problem("spec.secrets", f"hub entry {entry.name} needs {needed.name} "
                        f"({how}): {needed.description}")


def _hub_settings_valid(rep: Report, entry: HubEntry, env: dict[str, str]) -> None:
    # spec.hub.env against the entry's config schema: a missing required setting, an unknown
    # one (where the entry lists all it reads) or a value outside its enum
    for variable, message in entry.config.problems(env):
        rep.problem(f"spec.hub.env.{variable}", f"{message} (hub entry {entry.name})")


def _server_config(run: _Run, server: MCPServer, rep: Report, slug: str) -> ServerConfig | None:
    spec, ns, name = server.spec, server.metadata.namespace, server.metadata.name
    # ServerConfig's keyword arguments (a ToolFilter among them), not JSON
    base: dict[str, Any] = {"slug": slug, "name": name, "namespace": ns,
                            "tools": ToolFilter(include=tuple(spec.tools.include),
                                                exclude=tuple(spec.tools.exclude),
                                                pin=spec.tools.pin)
                            if spec.tools else ToolFilter(),
                            "protocol_era": spec.protocol_era}
    injections = _injections(run, server, rep, spec.secrets)
    if spec.proxy is not None:
        p = spec.proxy
        return ServerConfig(**base, mode="proxy", transport=p.transport, url=p.url,
                            timeout_seconds=p.timeout_seconds, injections=injections)
    if spec.hub is not None:
        entry = run.catalog.get(spec.hub.name)
        if entry is None:
            rep.unresolved_reason = c.HUB_ENTRY_NOT_FOUND
            rep.problem("spec.hub.name", f"no hub entry {spec.hub.name} "
                        "(see `mcpyard hub list`)", refs=True)
            return None
        if spec.hub.version and spec.hub.version != entry.version:
            rep.unresolved_reason = c.HUB_ENTRY_NOT_FOUND
            rep.problem("spec.hub.version", f"hub entry {entry.name} is at version "
                        f"{entry.version}, not {spec.hub.version}", refs=True)
            return None
        _hub_secrets_present(rep, entry, spec.secrets)
        _hub_settings_valid(rep, entry, spec.hub.env)
        base["hub_entry"] = entry.name
        if entry.url is not None:
            if any(i.as_ == "env" for i in injections):
                rep.problem("spec.secrets", f"hub entry {entry.name} is a remote server; "
                            "pass secrets as bearer or header, not env")
            return ServerConfig(**base, mode="hub", transport=entry.transport, url=entry.url,
                                injections=injections)
        # A stdio entry runs behind the bridge in the runner image: the project's own image
        # (if any) has no `mcpyard bridge` in it.
        return _hosted(run, rep, base, mode="hub",
                       image=entry.image if entry.transport != "stdio" else None,
                       command=tuple(entry.command) if entry.command else None,
                       transport=entry.transport, port=entry.port, path="/mcp",
                       env={**entry.env, **spec.hub.env}, replicas=1, timeout=30,
                       injections=injections)
    assert spec.hosted is not None  # the model guarantees exactly one mode
    h = spec.hosted
    return _hosted(run, rep, base, mode="hosted", image=h.image,
                   command=tuple(h.command) if h.command else None, transport=h.transport,
                   port=h.port, path=h.path, env=dict(h.env), replicas=h.replicas,
                   timeout=h.timeout_seconds, injections=injections)


def _hosted(run: _Run, rep: Report, base: dict[str, Any], *, mode: Literal["hosted", "hub"],
            image: str | None, command: tuple[str, ...] | None, transport: str,
            port: int | None, path: str, env: dict[str, str], replicas: int, timeout: float,
            injections: tuple[Injection, ...]) -> ServerConfig | None:
    name, ns = base["name"], base["namespace"]
    if run.target == "local":
        if command is None:
            rep.programmed = False
            rep.not_programmed_reason = c.UNSUPPORTED
            rep.not_programmed_message = ("`mcpyard serve` runs commands, not images: "
                                          "set spec.hosted.command to run it locally")
            rep.problem("spec.hosted.command", rep.not_programmed_message, warning=True)
            return None
        url = f"http://127.0.0.1:{port}{path}" if transport == "streamable-http" else None
        return ServerConfig(**base, mode=mode, transport=transport,
                            url=url, command=command, env=env, timeout_seconds=timeout,
                            injections=injections)
    # In a cluster a stdio server runs behind `mcpyard bridge`, which speaks streamable HTTP.
    http_port = port if transport == "streamable-http" and port else children.BRIDGE_PORT
    http_path = path if transport == "streamable-http" else "/mcp"
    config = ServerConfig(**base, mode=mode, transport="streamable-http",
                          url=children.service_url(name, ns, http_port, http_path),
                          env=env, timeout_seconds=timeout, injections=injections)
    for obj in children.hosted(config, image=image, command=command, transport=transport,
                                port=http_port, replicas=replicas,
                                runner_image=run.runner_image):
        run.children.append(Child(owner=(ns, "MCPServer", name), object=obj))
    return config


def _servers(run: _Run) -> None:
    candidates: list[tuple[MCPServer, ServerConfig]] = []
    for server in run.of(MCPServer):
        rep = run.report(server)
        ws = _workspace_ref(run, server, rep)
        slug = server.slug
        try:
            check_slug(slug)
        except ValueError as exc:
            rep.problem("spec.slug" if server.spec.slug else "metadata.name",
                        f"{exc}; set spec.slug" if not server.spec.slug else str(exc))
        mode = "proxy" if server.spec.proxy else "hub" if server.spec.hub else "hosted"
        rep.fields.update(slug=slug, mode=mode)
        config = _server_config(run, server, rep, slug)
        if config is not None:
            rep.fields.update(endpoint=config.url or "stdio", transport=config.transport)
        if ws is not None and config is not None and rep.ok:
            candidates.append((server, config))
    groups = _first_wins([s for s, _ in candidates],
                         lambda s: (s.metadata.namespace, s.spec.workspace, s.slug))
    configs = {s.key: cfg for s, cfg in candidates}
    for (ns, ws_name, slug), (winner, *losers) in groups.items():
        rep = run.report(winner)
        rep.programmed = True
        run.servers[(ns, ws_name)].append(configs[winner.key])
        health = run.observed.server_health.get((ns, winner.metadata.name))
        if health is not None and rep.ready is not False:
            rep.ready, rep.ready_message = health
            rep.ready_reason = c.SERVING if health[0] else c.DEGRADED
        known = run.observed.tools.get((ns, winner.metadata.name))
        if known is not None:
            rep.fields["toolCount"] = sum(
                1 for t in known if access.server_exposes(configs[winner.key].tools, t))
        for server in losers:
            lrep = run.report(server)
            lrep.conflict = True
            lrep.problem("spec.slug" if server.spec.slug else "metadata.name",
                         f"slug {slug} is already used by MCPServer {winner.metadata.name} "
                         f"in workspace {ws_name}")


def _members(run: _Run) -> None:
    candidates: list[tuple[Member, MemberConfig]] = []
    for member in run.of(Member):
        rep = run.report(member)
        spec = member.spec
        ws = _workspace_ref(run, member, rep)
        rep.fields["expires"] = spec.expires.isoformat().replace("+00:00", "Z") \
            if spec.expires else None
        if ws is None or not rep.ok:
            continue
        if spec.token_hash is None and run.target == "local":
            rep.problem("spec.tokenHash", "no tokenHash: `mcpyard serve` cannot authenticate "
                        "this member (create one with `mcpyard token new`)", warning=True)
        limits = ws.spec.rate_limit
        rpm = spec.rate_limit.requests_per_minute if spec.rate_limit else \
            limits.per_member_requests_per_minute if limits else None
        if spec.rate_limit is None and (ws.metadata.namespace, "Workspace",
                                        ws.metadata.name) in run.synthesized:
            rpm = _held.member_limit(run, ws.metadata.namespace, ws.metadata.name,
                                     member.metadata.name)
        config = MemberConfig(
            name=member.metadata.name, user=spec.user, role=spec.role,
            token_hash=spec.token_hash or run.observed.minted_token_hashes.get(
                (member.metadata.namespace, member.metadata.name)),
            allow=tuple(spec.access.allow) if spec.access else ("*",),
            deny=tuple(spec.access.deny) if spec.access else (),
            requests_per_minute=rpm, expires=spec.expires, disabled=spec.disabled)
        candidates.append((member, config))
    hashed = [m for m, cfg in candidates if cfg.token_hash]
    groups = _first_wins(hashed, lambda m: (m.metadata.namespace, m.spec.workspace,
                                            m.spec.token_hash))
    for (_, ws_name, _hash), (winner, *losers) in groups.items():
        for member in losers:
            run.report(member).problem(
                "spec.tokenHash", f"the same token as Member {winner.metadata.name} in "
                f"workspace {ws_name}; every member needs a token of their own")
    for member, config in candidates:
        rep = run.report(member)
        if not rep.ok:
            continue
        rep.programmed = True
        active = config.active(run.now)
        rep.fields["active"] = active
        if config.disabled:
            rep.ready, rep.ready_reason, rep.ready_message = False, c.DISABLED, "disabled"
        elif not active:
            rep.ready, rep.ready_reason = False, c.EXPIRED
            rep.ready_message = f"expired at {rep.fields['expires']}"
        elif config.token_hash is None:
            rep.ready, rep.ready_message = None, "waiting for a token"
        else:
            rep.ready, rep.ready_message = True, "token accepted"
        # Inactive members stay in the configuration (marked) so that the gateway can say why
        # it refuses them and a diff can say "deactivated"; the gateway checks on every request.
        run.members[(member.metadata.namespace, member.spec.workspace)].append(config)


def _known_tools(run: _Run, servers: list[ServerConfig]) -> list[str]:
    names = []
    for s in servers:
        for tool in run.observed.tools.get((s.namespace, s.name), ()):
            if access.server_exposes(s.tools, tool):
                names.append(naming.namespaced(s.slug, tool))
    return names


def _configs(run: _Run) -> dict[str, WorkspaceConfig]:
    out = {}
    for (ns, name), ws in sorted(run.workspaces.items()):
        rep = run.report(ws)
        spec = ws.spec
        rpm = (spec.rate_limit.requests_per_minute if spec.rate_limit else None) \
            or PLAN_REQUESTS_PER_MINUTE[spec.plan]
        servers = sorted(run.servers.get((ns, name), []), key=lambda s: s.slug)
        members = sorted(run.members.get((ns, name), []), key=lambda m: m.name)
        config = WorkspaceConfig(name=name, namespace=ns, display_name=spec.display_name or name,
                                 plan=spec.plan, requests_per_minute=rpm,
                                 tool_search=spec.tool_search, servers=tuple(servers),
                                 members=tuple(members), sign_in=_sign_in(run, ws, rep),
                                 source=run.source)
        digest = hashlib.sha256(config.model_dump_json().encode()).hexdigest()[:16]
        out[name] = config.model_copy(update={"revision": digest})
        tools = _known_tools(run, servers)
        rep.programmed = True
        active = [m for m in members if m.can_sign_in(run.now)]
        rep.fields.update(url=f"{run.base_url}{config.path}", servers=len(servers),
                          members=len(active))
        if run.source is not None:
            rep.fields["source"] = run.source.model_dump()
        if any((s.namespace, s.name) in run.observed.tools for s in servers) or not servers:
            rep.fields["tools"] = len(tools)
        health = [run.observed.server_health.get((s.namespace, s.name)) for s in servers]
        degraded = [s.slug for s, h in zip(servers, health, strict=True) if h and not h[0]]
        if degraded:
            rep.ready, rep.ready_reason = False, c.DEGRADED
            rep.ready_message = f"servers not serving: {', '.join(degraded)}"
        elif all(health):
            rep.ready, rep.ready_message = True, f"serving {len(servers)} servers"
        if any((s.namespace, s.name) in run.observed.tools for s in servers):
            for member_cfg in members:
                usable = sorted(t for t in tools if access.member_may_use(member_cfg, t))
                run.reports[(ns, "Member", member_cfg.name)].fields.update(
                    tools=len(usable), toolNames=list[JSONValue](usable[:MEMBER_TOOLS_MAX]),
                    toolsNotListed=max(0, len(usable) - MEMBER_TOOLS_MAX))
    return out


STEPS = (_workspaces, _held.workspaces, _secrets, _servers, _members, _held.hold)


def compile_resources(
    resources: Sequence[Resource],
    *,
    now: datetime,
    catalog: Mapping[str, HubEntry],
    observed: Observed | None = None,
    target: Target = "local",
    base_url: str = "",
    runner_image: str = children.RUNNER_IMAGE,
    last_good: Mapping[str, WorkspaceConfig] | None = None,
    unreadable: Mapping[Key, str] | None = None,
    source: Source | None = None,
) -> Compilation:
    """Compile ``resources``; hold back only what is broken (:mod:`._held`).

    ``last_good`` is the configuration each workspace served last (the adapter's, by
    workspace name) and ``unreadable`` the resources whose documents exist but cannot be
    read now, with why: together they let a broken resource keep its last good version
    while the rest of its workspace, revocations first, applies. ``source`` is where
    ``resources`` came from (its revision); copied into every workspace's configuration,
    for the call records.
    """
    run = _Run(resources, now, catalog, observed or Observed(), target, base_url, runner_image,
               source, last_good=last_good or {}, unreadable=unreadable or {})
    for r in resources:
        run.reports[r.key] = Report(r.metadata.namespace, r.kind, r.metadata.name,
                                    r.metadata.generation)
    for step in STEPS:
        step(run)
    workspaces = _configs(run)
    problems = sorted(p for rep in run.reports.values() for p in rep.problems)
    statuses = {key: rep.status(now) for key, rep in sorted(run.reports.items())
                if key not in run.synthesized}
    return Compilation(workspaces, tuple(problems), statuses, tuple(run.children),
                       tuple(sorted(run.held)))
