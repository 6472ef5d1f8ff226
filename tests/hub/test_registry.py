"""Every hub entry's package, pinned version and executable exist in its registry.

Asks the real registries (npm and PyPI, reachable here and in CI): the version the entry pins
is published and not withdrawn, the command runs an executable that the package really
installs (npx's rule for npm bins; a wheel's console scripts for PyPI), and the licence the
entry states agrees with the registry's, where the registry states one.
"""

from __future__ import annotations

import concurrent.futures
import io
import json
import urllib.parse
import urllib.request
import zipfile
from configparser import ConfigParser
from dataclasses import dataclass
from typing import Any

import pytest

from mcpyard import hub
from mcpyard.api import hub as hub_api
from tests.hub import servers

NPM = "https://registry.npmjs.org"
PYPI = "https://pypi.org/pypi"
PACKAGED = sorted(name for name, e in hub.catalog().items() if e.command is not None)
# What a licence field says, by the SPDX identifier an entry uses.
LICENSE_WORDS = {
    "MIT": ("mit",),
    "Apache-2.0": ("apache",),
    "AGPL-3.0": ("agpl", "affero"),
    "GPL-3.0-only": ("gpl", "general public license"),
    "FSL-1.1-ALv2": ("fsl",),
}


@dataclass(frozen=True)
class Published:
    version: str
    executables: frozenset[str]
    """npm: the file npx runs; PyPI: the console scripts of the wheel."""
    license: str
    """What the registry says, lower case ('' when it says nothing usable)."""
    withdrawn: str | None
    """npm deprecation or PyPI yank reason."""


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=60) as response:
        return json.load(response) if url.startswith((NPM, PYPI)) else response.read()


def _npm(launch: hub_api.Launch) -> Published:
    name = urllib.parse.quote(launch.package, safe="@")
    meta = _get(f"{NPM}/{name}/{launch.version}")
    licence = meta.get("license") or ""
    if not isinstance(licence, str) or licence.upper().startswith("SEE LICENSE"):
        licence = ""
    return Published(meta["version"], frozenset({servers.npx_bin(launch.package, meta.get("bin"))}),
                     licence.lower(), meta.get("deprecated"))


def _pypi(launch: hub_api.Launch) -> Published:
    # the project document (the per-release one is not served by every PyPI mirror): its
    # `releases` lists the files of each version; `info` describes the newest release
    project = f"{PYPI}/{launch.package}/json"
    meta = _get(project)
    info = meta["info"]
    files = meta["releases"].get(launch.version)
    assert files, f"{launch.package} has no release {launch.version}"
    wheels = [f for f in files if f["packagetype"] == "bdist_wheel"]
    assert wheels, f"{launch.package} {launch.version} has no wheel"
    wheel = next((f for f in wheels if f["filename"].endswith("-any.whl")), None)
    wheel = wheel or next(f for f in wheels if "x86_64" in f["filename"])
    # a mirror may give file URLs relative to the document
    with zipfile.ZipFile(io.BytesIO(_get(urllib.parse.urljoin(project, wheel["url"])))) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/entry_points.txt"))
        points = ConfigParser(delimiters=("=",))
        points.optionxform = str  # type: ignore[assignment,method-assign]
        points.read_string(archive.read(name).decode())
    scripts = points["console_scripts"] if points.has_section("console_scripts") else {}
    classifiers = " ".join(c for c in info.get("classifiers", []) if c.startswith("License"))
    licence = " ".join(filter(None, [info.get("license_expression"),
                                     (info.get("license") or "")[:200], classifiers]))
    yanked = (files[0].get("yanked_reason") or "yanked") if all(f["yanked"] for f in files) \
        else None
    return Published(launch.version, frozenset(scripts), licence.lower(), yanked)


def _lookup(name: str) -> Published:
    launch = hub.catalog()[name].launch()
    return _npm(launch) if launch.runner == "npx" else _pypi(launch)


@pytest.fixture(scope="module")
def published() -> dict[str, Published | Exception]:
    """One look-up per entry, a few at a time."""
    out: dict[str, Published | Exception] = {}
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        futures = {pool.submit(_lookup, name): name for name in PACKAGED}
        for future in concurrent.futures.as_completed(futures):
            try:
                out[futures[future]] = future.result()
            except Exception as exc:  # reported by the entry's own test below
                out[futures[future]] = exc
    return out


@pytest.mark.parametrize("name", PACKAGED)
def test_the_pinned_package_is_published_with_its_executable(
    name: str, published: dict[str, Published | Exception]
) -> None:
    entry = hub.catalog()[name]
    launch = entry.launch()
    found = published[name]
    if isinstance(found, Exception):
        raise AssertionError(f"{name}: {entry.package}@{launch.version}: {found!r}") from found
    assert found.version == launch.version == entry.version
    assert found.withdrawn is None, f"{name}: withdrawn: {found.withdrawn}"
    if launch.runner == "uvx":
        assert launch.executable in found.executables, (
            f"{name}: {launch.package} has console scripts {sorted(found.executables)}")
    else:
        (script,) = found.executables  # npx_bin raised already if npx could not pick one
        assert script.endswith((".js", ".mjs", ".cjs")) or "/" in script, script
    if found.license:
        words = LICENSE_WORDS[entry.license]
        assert any(w in found.license for w in words), (
            f"{name}: the entry says {entry.license}, the registry {found.license!r}")


def test_every_license_an_entry_uses_is_known_here() -> None:
    assert {e.license for e in hub.catalog().values()} <= set(LICENSE_WORDS)
