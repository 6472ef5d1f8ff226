"""Fuzzing `mcpyard validate` with hypothesis: valid manifests with one field replaced, removed
or added, wrong shapes and kinds. Never a traceback; exit 0 or 1; every line names the file
(and line), and a problem of a resource names the resource and the field."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcpyard import cli

EXAMPLES = int(os.environ.get("MCPYARD_FUZZ_EXAMPLES", "100"))
HASH = "sha256:" + "a" * 64
BASE: list[dict[str, Any]] = [
    {"apiVersion": "mcpyard.io/v1alpha1", "kind": "Workspace",
     "metadata": {"name": "eng", "namespace": "team"},
     "spec": {"displayName": "Eng", "plan": "pro", "rateLimit": {"requestsPerMinute": 100},
              "toolSearch": True}},
    {"apiVersion": "mcpyard.io/v1alpha1", "kind": "MCPServer",
     "metadata": {"name": "gh", "namespace": "team"},
     "spec": {"workspace": "eng", "slug": "gh",
              "proxy": {"url": "https://mcp.example.com/mcp", "transport": "streamable-http",
                        "timeoutSeconds": 30},
              "secrets": [{"secretRef": {"name": "tok", "key": "token"}, "as": "bearer"}],
              "tools": {"include": ["*"], "exclude": ["delete_*"]}}},
    {"apiVersion": "mcpyard.io/v1alpha1", "kind": "Member",
     "metadata": {"name": "alice", "namespace": "team"},
     "spec": {"workspace": "eng", "user": "alice@example.com", "role": "member",
              "tokenHash": HASH, "access": {"allow": ["gh__*"], "deny": ["gh__delete_*"]},
              "rateLimit": {"requestsPerMinute": 10}, "expires": "2030-01-01T00:00:00Z",
              "disabled": False}},
]

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20),
                    st.sampled_from(["", "eng", "gh", "Bad Name!", "a" * 80, "*", "__",
                                     "2020-01-01T00:00:00Z", "sha256:nope", "sse", "stdio"]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


def _mutate(doc: Any, path: tuple[Any, ...], how: str, value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    doc = dict(doc) if isinstance(doc, dict) else list(doc)
    if rest:
        doc[head] = _mutate(doc[head], rest, how, value)
    elif how == "delete":
        del doc[head]
    elif how == "add" and isinstance(doc, dict):
        doc[f"{head}Extra"] = value
    else:
        doc[head] = value
    return doc


LINE = re.compile(r"^(?P<file>.+?):(?P<line>\d+): (?P<rest>.+)$")
RESOURCE = re.compile(r"^[^/:\s]*/[A-Za-z]+/[^:]*: ")


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_validate_never_crashes_and_names_file_resource_and_field(
        data: st.DataObject, tmp_path_factory: pytest.TempPathFactory,
        capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path_factory.mktemp("manifests")
    docs: list[Any] = []
    for doc in BASE:
        for _ in range(data.draw(st.integers(0, 2))):
            paths = _paths(doc)
            path = data.draw(st.sampled_from(paths))
            how = data.draw(st.sampled_from(["replace", "delete", "add"]))
            doc = _mutate(doc, path, how, data.draw(values))
        docs.append(doc)
    if data.draw(st.booleans()):
        docs.append(data.draw(values))  # a document of any shape
    files = []
    for i, doc in enumerate(docs):
        path = folder / f"doc{i}.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        files.append(path)
    code = cli.main(["validate", "--target", "local", str(folder)])
    out = capsys.readouterr().out
    assert code in (0, 1)
    lines = out.splitlines()
    assert (code == 1) == bool(lines), out
    for line in lines:
        match = LINE.match(line)
        assert match is not None, line
        assert Path(match["file"]) in files, line
        rest = match["rest"]
        if RESOURCE.match(rest):  # a resource's problem: ns/Kind/name: field: message
            assert len(rest.split(": ")) >= 2, line
