"""The format of a hub catalog entry (``mcpyard/hub/catalog/*.yaml``).

An entry says how a community MCP server runs, which secrets it needs and which plain settings
it reads (a JSON Schema of ``MCPServer.spec.hub.env``); the compiler expands
``MCPServer.spec.hub`` through it into a hosted or proxied server.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Self

from pydantic import Field, model_validator

from mcpyard.api.v1alpha1._base import Model, Slug
from mcpyard.api.v1alpha1.mcpserver import HttpUrl
from mcpyard.jsontypes import JSONObject

ENV_NAME = r"^[A-Z_][A-Z0-9_]*$"
"""An environment variable name, as the entries use them."""


@dataclass(frozen=True)
class Launch:
    """What an entry's ``uvx``/``npx`` command runs, read from the command itself."""

    runner: Literal["uvx", "npx"]
    package: str
    """The registry package name."""
    version: str
    """The exact version the command pins."""
    executable: str | None
    """uvx: the console script it runs; npx: None (npx picks the package's own bin)."""
    requirements: tuple[str, ...]
    """Extra requirements installed beside it (``uvx --with``)."""
    args: tuple[str, ...]
    """The server's own arguments."""


def launch(command: Sequence[str]) -> Launch:
    """Read a ``uvx [--with REQ]... [--from PKG==V] PKG==V|EXE ARGS...`` or
    ``npx -y PKG@V ARGS...`` command; ValueError says what is wrong with it."""
    runner, *rest = command
    if runner == "npx":
        if not rest or rest[0] != "-y":
            raise ValueError("an npx command starts with -y, so that it runs unattended")
        if len(rest) < 2:
            raise ValueError("npx -y needs a package")
        package, at, version = rest[1].rpartition("@")
        if not at or not package or not _EXACT.fullmatch(version):
            raise ValueError(f"npx runs {rest[1]!r}: pin an exact version, PKG@1.2.3")
        return Launch("npx", package, version, None, (), tuple(rest[2:]))
    if runner != "uvx":
        raise ValueError(f"a command runs uvx or npx, not {runner!r}")
    requirements: list[str] = []
    source: str | None = None
    while rest and rest[0] in ("--with", "--from"):
        if len(rest) < 2:
            raise ValueError(f"uvx {rest[0]} needs a value")
        option, value, *rest = rest
        if option == "--with":
            requirements.append(value)
        else:
            source = value
    if not rest:
        raise ValueError("uvx needs a package")
    spec = source if source is not None else rest[0]
    package, eq, version = spec.partition("==")
    if not eq or not package or not _EXACT.fullmatch(version):
        raise ValueError(f"uvx runs {spec!r}: pin an exact version, PKG==1.2.3")
    executable = rest[0] if source is not None else package
    return Launch("uvx", package, version, executable, tuple(requirements), tuple(rest[1:]))


_EXACT = re.compile(r"\d+(\.\d+)+")


class HubSecret(Model):
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_-]*$")
    """The environment variable (as: env) or header (as: header) that carries it."""
    as_: Literal["env", "header", "bearer"] = Field(alias="as")
    """How the server expects it."""
    description: str
    """What the value is and where a user gets one."""
    required: bool = True
    """Whether the server refuses to work without it."""


class HubSetting(Model):
    """One plain (non-secret) environment variable of the server, as a JSON Schema property."""

    type: Literal["string"] = "string"
    """Environment values are strings."""
    description: str
    """What it changes."""
    default: str | None = None
    """The value the server (or the entry's own env) uses when it is not set."""
    enum: list[str] | None = None
    """The only values it accepts, when it has a fixed set."""
    examples: list[str] | None = None
    """Typical values."""

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.enum is not None and self.default is not None and self.default not in self.enum:
            raise ValueError(f"default {self.default!r} is not one of enum {self.enum}")
        return self


class HubConfig(Model):
    """A JSON Schema (a small subset: an object of string properties) of spec.hub.env."""

    type: Literal["object"] = "object"
    """spec.hub.env is an object."""
    properties: dict[str, HubSetting] = Field(default_factory=dict)
    """The settings the server reads, by environment variable name."""
    required: list[str] = Field(default_factory=list)
    """Settings without which the server cannot work."""
    additional_properties: bool = True
    """Whether spec.hub.env may hold variables not listed (servers read more than they list)."""

    @model_validator(mode="after")
    def _check(self) -> Self:
        for name in self.properties:
            if not re.fullmatch(ENV_NAME, name):
                raise ValueError(f"properties: {name!r} is not an environment variable name")
        missing = [name for name in self.required if name not in self.properties]
        if missing:
            raise ValueError(f"required names settings not in properties: {', '.join(missing)}")
        return self

    def json_schema(self) -> JSONObject:
        """The schema as JSON Schema (draft 2020-12) data."""
        schema: JSONObject = {"$schema": "https://json-schema.org/draft/2020-12/schema"}
        schema.update(self.model_dump(mode="json", by_alias=True, exclude_none=True))
        return schema

    def problems(self, env: Mapping[str, str]) -> list[tuple[str, str]]:
        """(variable, message) for each way ``env`` (spec.hub.env) breaks this schema."""
        out = [(name, "is required") for name in self.required if name not in env]
        for name, value in env.items():
            setting = self.properties.get(name)
            if setting is None:
                if not self.additional_properties:
                    known = ", ".join(sorted(self.properties)) or "none"
                    out.append((name, f"is not a setting of this entry (settings: {known})"))
            elif setting.enum is not None and value not in setting.enum:
                out.append((name, f"must be one of {', '.join(setting.enum)}, not {value!r}"))
        return out


class HubEntry(Model):
    name: Slug
    """The catalog name used in MCPServer.spec.hub.name."""
    title: str
    """A short human-readable name."""
    description: str
    """What the server does, in one or two sentences."""
    homepage: HttpUrl
    """Where the server's source and docs live."""
    license: str = Field(pattern=r"^[A-Za-z0-9.+-]+( (AND|OR|WITH) [A-Za-z0-9.+-]+)*$")
    """The server's licence, as an SPDX expression (from its registry metadata or LICENSE)."""
    version: str
    """The version this entry pins (``remote`` for a server its maker runs)."""
    package: str | None = Field(default=None, pattern=r"^(pypi|npm):\S+$")
    """The package that provides it, ``pypi:NAME`` or ``npm:NAME``."""
    transport: Literal["stdio", "streamable-http", "sse"]
    """How the gateway talks to it."""
    command: list[str] | None = Field(default=None, min_length=1)
    """How to start a stdio (or local HTTP) server; runs behind `mcpyard bridge` in a cluster."""
    image: str | None = None
    """A container image, when the project publishes one."""
    port: int | None = Field(default=None, ge=1, le=65535)
    """The port of a hosted streamable-http server."""
    url: HttpUrl | None = None
    """A remote endpoint the project runs itself; the entry is then proxied."""
    env: dict[str, str] = Field(default_factory=dict)
    """Plain environment the server needs."""
    secrets: list[HubSecret] = Field(default_factory=list)
    """Credentials the server takes."""
    config: HubConfig = Field(default_factory=HubConfig)
    """The plain settings it reads (spec.hub.env), as a JSON Schema."""
    tags: list[str] = Field(default_factory=list)
    """Words for search."""

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.url is None and self.command is None and self.image is None:
            raise ValueError("an entry needs url (remote), command or image")
        if self.url is not None and self.transport == "stdio":
            raise ValueError("a remote (url) entry needs transport streamable-http or sse")
        if self.url is not None and any(s.as_ == "env" for s in self.secrets):
            raise ValueError("a remote (url) entry cannot take secrets as env")
        if self.url is None and self.package is None:
            raise ValueError("an entry that runs here names its package (pypi:NAME or npm:NAME)")
        if self.command is not None and self.package is not None:
            how = self.launch()
            registry = {"uvx": "pypi", "npx": "npm"}[how.runner]
            if self.package != f"{registry}:{how.package}":
                raise ValueError(f"command runs {registry}:{how.package}, but package is "
                                 f"{self.package}")
            if how.version != self.version:
                raise ValueError(f"command pins {how.version}, but version is {self.version}")
        secret_env = {s.name for s in self.secrets if s.as_ == "env"}
        clash = sorted(secret_env & set(self.config.properties))
        if clash:
            raise ValueError(f"config: {', '.join(clash)} is a secret, not a plain setting")
        clash = sorted(secret_env & set(self.env))
        if clash:
            raise ValueError(f"env: {', '.join(clash)} is a secret; never give it a value here")
        return self

    def launch(self) -> Launch:
        """What the command runs (ValueError when there is no uvx/npx command to read)."""
        if self.command is None:
            raise ValueError(f"{self.name} has no command")
        return launch(self.command)
