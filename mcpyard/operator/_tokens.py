"""Member tokens the operator mints: a Secret owned by the Member, its hash into the config.

A Member without ``spec.tokenHash`` gets a token in Secret ``mcpyard-member-NAME`` (key
``token``) in its namespace; only the hash reaches the gateway configuration. Setting the
annotation ``mcpyard.io/rotate-token`` to a new value mints a new token (the value in use is
recorded on the Secret). The token is read back after a restart, never minted twice for the
same rotation value.
"""

from __future__ import annotations

import base64
import hashlib

from mcpyard import jsontypes, kube
from mcpyard.crypto import tokens
from mcpyard.operator._runtime import ROTATE_ANNOTATION, Entry, Runtime

PREFIX = "mcpyard-member-"


def secret_name(member: str) -> str:
    full = f"{PREFIX}{member}"
    if len(full) <= 253:
        return full
    return f"{full[:244]}-{hashlib.sha256(full.encode()).hexdigest()[:8]}"


def _token_of(secret: kube.KubeObject) -> str | None:
    raw = jsontypes.text(secret, "data", "token")
    try:
        token = base64.b64decode(raw, validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    return token if tokens.is_well_formed(token) else None


async def ensure(rt: Runtime, member: Entry) -> str:
    """The hash of the member's minted token, minting (or rotating) it when needed."""
    meta = jsontypes.obj(member.body, "metadata")
    ns, name, uid = member.namespace, member.name, jsontypes.text(meta, "uid")
    rotation = jsontypes.text(meta, "annotations", ROTATE_ANNOTATION)
    cached = rt.tokens.get((ns, name))
    if cached is not None and cached[1:] == (rotation, uid):
        return cached[0]
    sname = secret_name(name)
    current = await rt.client.get("v1", "Secret", ns, sname)
    if current is not None:
        recorded = jsontypes.text(current, "metadata", "annotations", ROTATE_ANNOTATION)
        owners = {r.get("uid") for r in jsontypes.objects(current, "metadata", "ownerReferences")}
        token = _token_of(current)
        if token is not None and recorded == rotation and uid in owners:
            token_hash = tokens.hash(token)
            rt.tokens[(ns, name)] = (token_hash, rotation, uid)
            return token_hash
    token = tokens.new()
    desired: kube.KubeObject = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": sname,
            "namespace": ns,
            "labels": {"app.kubernetes.io/managed-by": "mcpyard", "mcpyard.io/member": name},
            "annotations": {ROTATE_ANNOTATION: rotation},
            "ownerReferences": [kube.owner_reference(member.body)],
        },
        "data": {"token": base64.b64encode(token.encode()).decode()},
    }
    await kube.apply(rt.client, desired, current, known=True)
    token_hash = tokens.hash(token)
    rt.tokens[(ns, name)] = (token_hash, rotation, uid)
    return token_hash
