"""CustomResourceDefinitions generated from the models: structural, no defaults, $refs inlined.

Pure: returns dicts; the ``mcpyard crds`` command and the test that keeps ``crds/`` in sync
turn them into YAML.
"""

from __future__ import annotations

from pydantic import BaseModel

from mcpyard.api.v1alpha1 import GROUP, VERSION, EncryptedSecret, MCPServer, Member, Workspace
from mcpyard.api.v1alpha1._base import Resource
from mcpyard.api.v1alpha1.encryptedsecret import EncryptedSecretStatus
from mcpyard.api.v1alpha1.mcpserver import MCPServerStatus
from mcpyard.api.v1alpha1.member import MemberStatus
from mcpyard.api.v1alpha1.workspace import WorkspaceStatus
from mcpyard.jsontypes import JSONObject, JSONValue

_READY = '.status.conditions[?(@.type=="Ready")].status'
_AGE: JSONObject = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}


def _col(name: str, path: str, type_: str = "string", priority: int = 0,
         description: str = "") -> JSONObject:
    col: JSONObject = {"name": name, "type": type_, "jsonPath": path}
    if priority:
        col["priority"] = priority
    if description:
        col["description"] = description
    return col


# kind -> (status model, printer columns, CEL rules on spec)
_KINDS: dict[type[Resource], tuple[type[BaseModel], list[JSONValue], list[JSONValue]]] = {
    Workspace: (WorkspaceStatus, [
        _col("URL", ".status.url"),
        _col("Plan", ".spec.plan"),
        _col("Servers", ".status.servers", "integer"),
        _col("Members", ".status.members", "integer"),
        _col("Tools", ".status.tools", "integer"),
        _col("Ready", _READY),
        _AGE,
    ], []),
    MCPServer: (MCPServerStatus, [
        _col("Workspace", ".spec.workspace"),
        _col("Slug", ".status.slug"),
        _col("Mode", ".status.mode"),
        _col("Tools", ".status.toolCount", "integer"),
        _col("Ready", _READY),
        _col("Endpoint", ".status.endpoint", priority=1),
        _col("Protocol", ".status.protocol.version", priority=1),
        _AGE,
    ], [{"rule": "[has(self.proxy), has(self.hosted), has(self.hub)]"
                 ".filter(x, x).size() == 1",
         "message": "set exactly one of proxy, hosted, hub"}]),
    Member: (MemberStatus, [
        _col("Workspace", ".spec.workspace"),
        _col("User", ".spec.user"),
        _col("Role", ".spec.role"),
        _col("Active", ".status.active", "boolean"),
        _col("Tools", ".status.tools", "integer", priority=1),
        _col("Ready", _READY),
        _AGE,
    ], []),
    EncryptedSecret: (EncryptedSecretStatus, [
        _col("Keys", ".status.keyCount", "integer"),
        _col("Ready", _READY),
        _AGE,
    ], []),
}


def _inline(schema: JSONValue, defs: JSONObject) -> JSONValue:
    """Resolve $refs, drop what structural schemas forbid or the API server would rewrite."""
    if isinstance(schema, list):
        return [_inline(s, defs) for s in schema]
    if not isinstance(schema, dict):
        return schema
    ref = schema.get("$ref")
    if isinstance(ref, str):
        target = defs[ref.rsplit("/", 1)[-1]]
        if not isinstance(target, dict):
            raise TypeError(f"$defs entry of {ref} is not a schema")
        merged: JSONObject = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        return _inline(merged, defs)
    any_of = schema.get("anyOf")
    if isinstance(any_of, list):
        non_null = [s for s in any_of if isinstance(s, dict) and s.get("type") != "null"]
        if len(non_null) == 1:  # `X | None`: optional, not nullable
            rest = {k: v for k, v in schema.items() if k != "anyOf"}
            return _inline({**non_null[0], **rest}, defs)
    out: JSONObject = {}
    for key, value in schema.items():
        if key in ("title", "default", "$defs", "additionalProperties") and not (
            key == "additionalProperties" and isinstance(value, dict)
        ):
            continue
        if key == "const":
            out["enum"] = [value]
            continue
        if key in ("exclusiveMinimum", "exclusiveMaximum"):  # JSON Schema -> OpenAPI 3.0
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            out[key] = True
            continue
        if key == "description":
            out[key] = " ".join(str(value).split())
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {k: _inline(v, defs) for k, v in value.items()}
        else:
            out[key] = _inline(value, defs)
    if out.get("type") == "object" and "properties" not in out \
            and "additionalProperties" not in out:
        out["x-kubernetes-preserve-unknown-fields"] = True
    if not out:  # Any
        out["x-kubernetes-preserve-unknown-fields"] = True
    if out.get("format") == "date-time" and out.get("type") is None:
        out["type"] = "string"
    return out


def _schema(model: type[BaseModel]) -> JSONObject:
    raw: JSONObject = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.get("$defs", {})
    inlined = _inline(raw, defs if isinstance(defs, dict) else {})
    if not isinstance(inlined, dict):
        raise TypeError(f"the JSON schema of {model.__name__} is not an object")
    return inlined


def definition(kind: type[Resource]) -> JSONObject:
    status_model, columns, rules = _KINDS[kind]
    spec_model = kind.model_fields["spec"].annotation
    if not (isinstance(spec_model, type) and issubclass(spec_model, BaseModel)):
        raise TypeError(f"{kind.KIND}.spec is not a model")
    spec = _schema(spec_model)
    if rules:
        spec["x-kubernetes-validations"] = rules
    properties: JSONObject = {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": spec,
        "status": _schema(status_model),
    }
    if kind is EncryptedSecret:
        properties["sops"] = {
            "type": "object",
            "description": "The metadata block that sops writes; kept as-is.",
            "x-kubernetes-preserve-unknown-fields": True,
        }
    schema: JSONObject = {"type": "object", "description": (kind.__doc__ or "").strip(),
              "properties": properties, "required": ["spec"]}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{kind.PLURAL}.{GROUP}",
                     "labels": {"app.kubernetes.io/part-of": "mcpyard"}},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind.KIND,
                "listKind": f"{kind.KIND}List",
                "plural": kind.PLURAL,
                "singular": kind.KIND.lower(),
                "shortNames": list(kind.SHORT_NAMES),
                "categories": ["mcpyard"],
            },
            "versions": [{
                "name": VERSION,
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": columns,
                "schema": {"openAPIV3Schema": schema},
            }],
        },
    }


def definitions() -> list[JSONObject]:
    """Every CRD, in a stable order."""
    return [definition(kind) for kind in (Workspace, MCPServer, Member, EncryptedSecret)]
