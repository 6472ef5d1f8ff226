"""The shared base model, object metadata, conditions and field types of v1alpha1."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from mcpyard.api._problem import resource_ref
from mcpyard.jsontypes import JSONObject

GROUP = "mcpyard.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

SLUG_MAX = 32
_SLUG = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")
_DNS_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?")
# Globs match tool names (MCP: letters, digits, `_`, `-`, `.`, `/`) with `*`, `?` and `[...]`.
_GLOB = re.compile(r"(?:[A-Za-z0-9_.\-/:*?]|\[!?[A-Za-z0-9_.\-/:]+\])+")


class Model(BaseModel):
    """Snake case in Python, camelCase on the wire; unknown fields are typos, so refused."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
    )


def check_slug(value: str) -> str:
    if len(value) > SLUG_MAX:
        raise ValueError(f"must be at most {SLUG_MAX} characters, got {len(value)}")
    if not _SLUG.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a slug: lowercase letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return value


def check_dns_label(value: str) -> str:
    if len(value) > 63 or not _DNS_LABEL.fullmatch(value):
        raise ValueError(f"{value!r} is not a valid name (RFC 1123 label, at most 63 characters)")
    return value


def check_dns_subdomain(value: str) -> str:
    if len(value) > 253 or not _DNS_SUBDOMAIN.fullmatch(value):
        raise ValueError(f"{value!r} is not a valid name (RFC 1123 subdomain)")
    return value


def check_glob(value: str) -> str:
    if not _GLOB.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a valid glob: use name or URI characters with '*', '?' and '[...]'"
        )
    return value


def _schema(pattern: re.Pattern[str], max_length: int | None = None) -> Any:
    # Any: pydantic's Field() is typed Any (it stands for a field's default)
    extra: JSONObject = {"pattern": f"^{pattern.pattern}$"}
    if max_length:
        extra["maxLength"] = max_length
    return Field(json_schema_extra=extra)


# The validators give the messages; the schema extras put the same rule into the CRDs.
Slug = Annotated[str, AfterValidator(check_slug), _schema(_SLUG, SLUG_MAX)]
DnsLabel = Annotated[str, AfterValidator(check_dns_label), _schema(_DNS_LABEL, 63)]
Name = Annotated[str, AfterValidator(check_dns_subdomain), _schema(_DNS_SUBDOMAIN, 253)]
Glob = Annotated[str, AfterValidator(check_glob), _schema(_GLOB)]


class ObjectMeta(BaseModel):
    """The part of Kubernetes object metadata mcpyard reads; the rest is kept untouched."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    name: Name
    namespace: DnsLabel = "default"
    generation: int | None = None
    uid: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


ConditionStatus = Literal["True", "False", "Unknown"]


class Condition(Model):
    """A standard Kubernetes condition (``metav1.Condition``)."""

    type: str
    """The aspect this condition is about: Accepted, ResolvedRefs, Programmed or Ready."""
    status: ConditionStatus
    """True, False or Unknown."""
    reason: str
    """A CamelCase word for the programmatic cause of the last transition."""
    message: str = ""
    """What happened, in plain words."""
    last_transition_time: datetime
    """When the status last changed."""
    observed_generation: int | None = None
    """The metadata.generation this condition was computed from."""


class Resource(Model):
    """Fields every mcpyard resource has; ``kind`` picks the subclass."""

    KIND: ClassVar[str]
    PLURAL: ClassVar[str]
    SHORT_NAMES: ClassVar[tuple[str, ...]]

    api_version: Literal["mcpyard.io/v1alpha1"] = "mcpyard.io/v1alpha1"
    """Always mcpyard.io/v1alpha1."""
    kind: str
    metadata: ObjectMeta
    # Any, not JSONObject: a pydantic field (the recursive alias is not a schema pydantic builds)
    status: dict[str, Any] | None = None
    """Written by the operator; ignored on input."""

    @property
    def key(self) -> tuple[str, str, str]:
        """(namespace, kind, name): unique among all resources."""
        return (self.metadata.namespace, self.kind, self.metadata.name)

    @property
    def ref(self) -> str:
        """``namespace/Kind/name``, how problems name a resource."""
        return resource_ref(self.metadata.namespace, self.kind, self.metadata.name)
