"""The gateway in a cluster: the operator's config Secrets, followed with a watch.

``mcpyard gateway`` reads, in its namespace, the master key Secret (written by the chart or the
operator; waited for until it exists) and every config Secret (label ``mcpyard.io/config``):
one list, then a watch from the list's resourceVersion, so that a change (a revocation too)
is served within a second of the operator writing it, not at the kubelet's volume refresh. A
watch the API server closes is resumed from the last resourceVersion seen; 410 Gone lists
again; any other failure reconnects with backoff (0.5 s doubling to 30 s).

Each Secret is parsed (:func:`mcpyard.kube.read_config`) and its sealed values checked against
the master key before anything of it is used; a Secret that fails keeps its workspace's last
good configuration (:meth:`mcpyard.gateway._runtime.Runtime.publish`, the rule of every source),
logged and shown in /readyz. Sealed values are imported into the vault as they are: the
gateway never sees an age key or a plaintext it does not inject.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import hashlib
import json
import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from mcpyard import errors, jsontypes, kube
from mcpyard.compiler.config import SecretRef, WorkspaceConfig
from mcpyard.crypto.vault import KEY_BYTES, KEY_FILE, Vault
from mcpyard.gateway._runtime import Runtime, SecretState, digest_value
from mcpyard.gateway.services._metrics import Metrics
from mcpyard.mcp.backoff import Backoff

log = logging.getLogger("mcpyard.gateway")

CHUNK = 25
"""Workspaces applied per step of a publication (see ``ClusterSource._publish``)."""


@dataclass(frozen=True)
class _Parsed:
    """One config Secret as last read: its config and sealed values, or why it failed."""

    fingerprint: str
    version: str = ""
    """The Secret's resourceVersion when it was read: the same version is not read again."""
    config: WorkspaceConfig | None = None
    sealed: Mapping[str, str] | None = None
    failure: str | None = None


class ClusterSource:
    """Config Secrets of one namespace -> the gateway's runtime (see the module docstring)."""

    def __init__(
        self,
        connect: Callable[[], kube.Client],
        namespace: str,
        *,
        master_key_secret: str = "mcpyard-master-key",
        watch_timeout: int = 300,
    ) -> None:
        self.connect = connect
        self.namespace = namespace
        self.master_key_secret = master_key_secret
        self.watch_timeout = watch_timeout
        self._secrets: dict[str, kube.KubeObject] = {}
        """Secret name -> the Secret as last listed or watched."""
        self._parsed: dict[str, _Parsed] = {}
        self._digest_key = secrets.token_bytes(32)
        self._changed = asyncio.Event()
        self._key = b""
        self.vault: Vault | None = None

    @property
    def master_key(self) -> bytes | None:
        """The master key once read from its Secret (the console derives its cookie key)."""
        return self._key or None

    def reveal(self, ref: SecretRef) -> str:
        """A value of the vault; none before the master key was read."""
        if self.vault is None:
            raise errors.SecretError("the vault is not open yet")
        return self.vault.reveal(ref)

    async def open(self, runtime: Runtime, metrics: Metrics) -> None:
        """Nothing before serving: the master key and the configuration come in :meth:`run`
        (the gateway serves /healthz and /readyz while it waits for them)."""

    def __repr__(self) -> str:
        return f"<ClusterSource {self.namespace}: {len(self._secrets)} config Secrets>"

    async def run(self, runtime: Runtime, metrics: Metrics) -> None:
        client = await asyncio.to_thread(self.connect)
        try:
            self._key = await self._master_key(client, runtime)
            self.vault = Vault(self._key)
            publisher = asyncio.create_task(self._publisher(runtime, metrics))
            try:
                await self._follow(client, runtime, metrics)
            finally:
                publisher.cancel()
        finally:
            client.close()

    async def _publisher(self, runtime: Runtime, metrics: Metrics) -> None:
        # One publication per burst: the watch loop drains every event already received
        # before it waits (and lets this run), so a cold start of 1,000 config Secrets costs
        # a few publications, not 1,000 of all 1,000. A publication yields between steps and
        # starts over when a Secret changed meanwhile: what removes access goes first.
        while True:
            await self._changed.wait()
            self._changed.clear()
            try:
                await self._publish(runtime, metrics)
            except Exception:  # the next change publishes again; never stop following
                log.exception("config Secrets: publishing failed")

    # -- the master key -----------------------------------------------------------------------

    async def _master_key(self, client: kube.Client, runtime: Runtime) -> bytes:
        """The master key from its Secret; waits (with backoff) until it is there and good."""
        where = f"Secret {self.namespace}/{self.master_key_secret}"
        delay = Backoff()
        while True:
            try:
                found = await client.get("v1", "Secret", self.namespace, self.master_key_secret)
            except kube.ApiError as exc:
                problem = f"{where}: cannot read it: {exc}"
            else:
                if found is None:
                    problem = f"{where} does not exist yet (the chart or the operator makes it)"
                else:
                    raw = jsontypes.text(found, "data", KEY_FILE)
                    try:
                        key = base64.b64decode(raw, validate=True)
                    except (binascii.Error, ValueError):
                        key = b""
                    if len(key) == KEY_BYTES:
                        runtime.note_problems([])
                        return key
                    problem = f"{where}: {KEY_FILE} must hold {KEY_BYTES} bytes"
            if runtime.reload_errors != [problem]:
                log.warning("%s; retrying", problem)
                runtime.note_problems([problem])
            await delay.sleep()

    # -- list, then watch ---------------------------------------------------------------------

    async def _follow(self, client: kube.Client, runtime: Runtime, metrics: Metrics) -> None:
        labels = {kube.CONFIG_LABEL: "true"}
        version: str | None = None
        delay = Backoff()
        while True:
            try:
                if version is None:
                    items, version = await client.list_versioned(
                        "v1", "Secret", self.namespace, labels
                    )
                    self._secrets = {jsontypes.text(i, "metadata", "name"): i for i in items}
                    self._changed.set()
                    log.info("listed %d config Secrets in %s", len(items), self.namespace)
                async for kind, obj in client.watch(
                    "v1",
                    "Secret",
                    self.namespace,
                    labels=labels,
                    resource_version=version,
                    timeout_seconds=self.watch_timeout,
                ):
                    delay.reset()
                    meta = jsontypes.obj(obj, "metadata")
                    version = jsontypes.text(meta, "resourceVersion") or version
                    name = jsontypes.text(meta, "name")
                    if kind in ("ADDED", "MODIFIED") and name:
                        self._secrets[name] = obj
                    elif kind == "DELETED" and name in self._secrets:
                        del self._secrets[name]
                    else:
                        continue  # BOOKMARK (only the version moves on), or not ours
                    self._changed.set()
                continue  # the API server ended the watch (timeoutSeconds): resume at once
            except kube.ApiError as exc:
                if exc.status == 410:
                    log.info("config Secrets: resourceVersion expired (410 Gone), listing again")
                    version = None
                    continue
                log.warning("config Secrets: %s; reconnecting in %.1fs", exc, delay.delay)
            except Exception:  # never let the source die: the gateway would serve stale config
                log.exception("config Secrets: unexpected failure; listing again in %.1fs",
                              delay.delay)
                version = None
            await delay.sleep()

    # -- from Secrets to the runtime ----------------------------------------------------------

    def _parse(self, name: str, secret: kube.KubeObject) -> _Parsed:
        data = secret.get("data") or {}
        meta = jsontypes.obj(secret, "metadata")
        version = jsontypes.text(meta, "resourceVersion")
        known = self._parsed.get(name)
        if known is not None and version and known.version == version:
            return known
        labels = meta.get("labels")
        fingerprint = hashlib.sha256(
            json.dumps([data, labels], sort_keys=True, default=str).encode()
        ).hexdigest()
        if known is not None and known.fingerprint == fingerprint:
            known = self._parsed[name] = dataclasses.replace(known, version=version)
            return known
        assert self.vault is not None
        try:
            read = kube.read_config(secret)
            # Every sealed value must open under our key before any of them is used: a
            # Secret sealed under another master key holds its workspace back as a whole.
            scratch = Vault(self._key)
            for identity, sealed in read.sealed.items():
                scratch.import_sealed(identity, sealed)
        except (errors.ManifestError, errors.SecretError) as exc:
            parsed = _Parsed(fingerprint, version, failure=str(exc))
            log.error("%s (workspace %s keeps its last good configuration)", exc,
                      kube.config_workspace(secret))
        else:
            parsed = _Parsed(fingerprint, version, config=read.config, sealed=dict(read.sealed))
        self._parsed[name] = parsed
        return parsed

    async def _publish(self, runtime: Runtime, metrics: Metrics) -> None:
        """Serve what the Secrets say, revocations first.

        Workspaces deleted go at once, then the served workspaces whose members or servers
        changed (a member disabled, expired, deleted or narrowed; a server removed), then the
        other edits, then the workspaces not served yet, ``CHUNK`` at a time: between steps
        the loop runs (requests, the watch), and a Secret changed meanwhile ends this
        publication, so that the next one starts with it, not after 1,000 first sightings.
        """
        assert self.vault is not None
        configs: dict[str, WorkspaceConfig] = {}
        problems: dict[str, list[str]] = {}
        sealed: dict[str, str] = {}
        for name in [n for n in self._parsed if n not in self._secrets]:
            del self._parsed[name]
        for name, secret in sorted(self._secrets.items()):
            workspace = kube.config_workspace(secret)
            parsed = self._parse(name, secret)
            if parsed.config is None:
                problems.setdefault(workspace, []).append(str(parsed.failure))
                continue
            configs[workspace] = parsed.config
            sealed.update(parsed.sealed or {})
        for identity, text in sealed.items():
            self.vault.import_sealed(identity, text)  # checked in _parse: cannot fail
        digests = {i: digest_value(self._digest_key, i, t) for i, t in sealed.items()}
        state = SecretState(digests=digests)
        # What serves now stays as it is until its turn; what is not served yet waits.
        serving = {n: runtime.live[n].config for n in configs if n in runtime.live}
        steps = _steps(serving, configs)
        for number, step in enumerate(steps):
            if number:
                await asyncio.sleep(0)  # requests and the watch run between steps
                if self._changed.is_set():
                    return  # a newer change: the next publication starts with it
            serving.update((n, configs[n]) for n in step)
            runtime.publish(serving, problems, [], secrets=state)
        keep = runtime.secrets_in_use() | set(sealed)
        for identity in self.vault.identities() - keep:
            self.vault.discard(identity)
        metrics.config_reloaded("failure" if problems else "success")


def _steps(serving: Mapping[str, WorkspaceConfig],
           configs: Mapping[str, WorkspaceConfig]) -> list[list[str]]:
    """The workspaces to apply, in order, each list one publication: first (with the
    deletions) the served workspaces whose access changed, then the other edits, then the
    new workspaces ``CHUNK`` at a time; no empty step but one when there is nothing else (a
    deletion alone)."""
    changed = [n for n, c in configs.items() if n in serving and serving[n] is not c
               and serving[n] != c]
    access = [n for n in changed if _access_changed(serving[n], configs[n])]
    urgent = frozenset(access)
    edits = [n for n in changed if n not in urgent]
    new = [n for n in configs if n not in serving]
    steps = [access]
    for names in (edits, new):
        steps.extend(names[i:i + CHUNK] for i in range(0, len(names), CHUNK))
    # Every publication applies one step at least before it can be cut short (Secrets that
    # change all the time, as at a cold start, must not starve the new workspaces).
    return [step for step in steps if step] or [[]]


def _access_changed(old: WorkspaceConfig, new: WorkspaceConfig) -> bool:
    """Whether an edit may take access away: its members or servers changed."""
    return old.members != new.members or old.servers != new.servers


__all__ = ["ClusterSource"]
