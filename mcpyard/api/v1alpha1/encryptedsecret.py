"""EncryptedSecret: SOPS-encrypted credentials the gateway injects into upstream requests."""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal, Self

from pydantic import Field, model_validator

from mcpyard.api.v1alpha1._base import Condition, Model, Resource

_KEY = re.compile(r"[-._a-zA-Z0-9]+")
SOPS_VALUE = re.compile(r"ENC\[AES256_GCM,data:[A-Za-z0-9+/=]*,iv:[A-Za-z0-9+/=]+,"
                        r"tag:[A-Za-z0-9+/=]+,type:[a-z]+\]")


class EncryptedSecretSpec(Model):
    string_data: dict[str, str] = Field(min_length=1)
    """Keys and their sops-encrypted values (ENC[AES256_GCM,...]); plaintext is refused."""

    @model_validator(mode="after")
    def _check(self) -> Self:
        for key, value in self.string_data.items():
            if not _KEY.fullmatch(key) or len(key) > 253:
                raise ValueError(f"stringData: {key!r} is not a valid key")
            if not SOPS_VALUE.fullmatch(value):
                raise ValueError(
                    f"stringData.{key}: not a sops-encrypted value; encrypt the file with "
                    "`mcpyard secret encrypt` (plaintext secrets are refused)"
                )
        return self


class EncryptedSecretStatus(Model):
    observed_generation: int | None = None
    """The metadata.generation the status was computed from."""
    keys: list[str] | None = None
    """The keys the secret holds (never the values)."""
    key_count: int | None = None
    """How many keys the secret holds."""
    conditions: list[Condition] = Field(default_factory=list)
    """Accepted, ResolvedRefs, Programmed and Ready."""


class EncryptedSecret(Resource):
    """Credentials encrypted with sops and age; decrypted only in the gateway's memory."""

    KIND: ClassVar[str] = "EncryptedSecret"
    PLURAL: ClassVar[str] = "encryptedsecrets"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("esec",)

    kind: Literal["EncryptedSecret"] = "EncryptedSecret"
    spec: EncryptedSecretSpec
    # Any, not JSONObject: a pydantic field (the recursive alias is not a schema pydantic builds)
    sops: dict[str, Any] | None = None
    """The metadata block sops writes; kept as-is."""
