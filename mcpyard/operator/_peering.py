"""Whether this replica is the one that writes, for work kopf does not schedule itself.

kopf pauses a replica's handlers while a live peer with a higher priority is in the peering
object (and every replica when two share the highest priority). The operator's own loops (the
sweep of config Secrets, retries of failed decryptions) run outside kopf's handlers, so they
ask the same question of the same object before they write.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from mcpyard import jsontypes, kube
from mcpyard.operator._settings import Settings

PEERING_API = "kopf.dev/v1"


def _live(peer: Mapping[object, object], now: datetime) -> bool:
    given = peer.get("lifetime", 60)
    if not isinstance(given, int | float | str):
        return False  # what int() refused with a TypeError
    try:
        seen = datetime.fromisoformat(str(peer["lastseen"]))
        lifetime = timedelta(seconds=int(given))
    except (KeyError, TypeError, ValueError):
        return False
    if seen.tzinfo is None:
        seen = seen.replace(tzinfo=UTC)
    return seen + lifetime > now


def leads(peerings: list[Mapping[str, object]], priority: int, now: datetime) -> bool:
    """True when this replica is in every peering object (a live peer of its ``priority``:
    kopf's keep-alive writes it at start) and no live peer outranks it or shares its
    priority. Until its own record shows, a replica does not know who else is starting: two
    replicas started together would both write (one listing an empty peering each)."""
    if not peerings:
        return False
    for peering in peerings:
        status = peering.get("status") or {}
        peers = status.values() if isinstance(status, Mapping) else ()
        live = [p for p in peers if isinstance(p, Mapping) and _live(p, now)]
        if any(_priority(p) > priority for p in live):
            return False
        if sum(1 for p in live if _priority(p) == priority) != 1:
            return False
    return True


def _priority(peer: Mapping[object, object]) -> int:
    given = peer.get("priority", 0)
    if not isinstance(given, int | float | str):
        raise TypeError(f"a peer's priority is a {type(given).__name__}")  # as int() raised
    return int(given)


async def leading(client: kube.Client, settings: Settings, priority: int | None) -> bool:
    """Whether this replica may write now (always, without peering)."""
    if settings.peering is None or priority is None:
        return True
    if settings.namespaces:
        found = [
            await client.get(PEERING_API, "KopfPeering", ns, settings.peering)
            for ns in settings.namespaces
        ]
    else:
        found = [await client.get(PEERING_API, "ClusterKopfPeering", "", settings.peering)]
    return leads([f for f in found if f is not None], priority, datetime.now(UTC))


def absence(client: kube.Client, settings: Settings) -> str | None:
    """Why this replica cannot peer as ``settings`` ask (None: it can): kopf's peering CRD is
    not installed, or the peering object is missing. kopf itself, told to peer, would wait
    for them without a word; the command line decides before it starts (blocking calls)."""
    if settings.peering is None:
        return None
    kind, plural = (
        ("KopfPeering", "kopfpeerings")
        if settings.namespaces
        else ("ClusterKopfPeering", "clusterkopfpeerings")
    )
    discovery = client.request("GET", f"/apis/{PEERING_API}")
    served = {r.get("name") for r in jsontypes.objects(discovery, "resources")}
    if plural not in served:
        return f"kopf's peering CRD {plural}.kopf.dev is not installed"
    missing = [
        ns
        for ns in settings.namespaces or ("",)
        if client.get_sync(PEERING_API, kind, ns, settings.peering) is None
    ]
    if not missing:
        return None
    where = f" in namespace {', '.join(missing)}" if settings.namespaces else ""
    return f"the {kind} {settings.peering!r} does not exist{where}"
