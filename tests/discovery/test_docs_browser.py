"""The docs of examples/workspaces, written by `mcpyard docs` and rendered by a real headless
Chromium (Debian's, installed by tools/setup/40-chromium.sh): the page a member opens shows
the servers, each tool's effect, its argument table and an example call."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--disable-dev-shm-usage"]


def chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    exe = shutil.which("chromium")
    assert exe, "chromium is not installed: run tools/setup/40-chromium.sh"
    return subprocess.run([exe, *FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, timeout=120)


def test_examples_docs_render_in_chromium(tmp_path: Path) -> None:
    out = Path(os.environ.get("MCPYARD_DOCS_OUT", tmp_path / "site"))
    done = subprocess.run(
        [sys.executable, "-m", "mcpyard", "docs", "examples/workspaces", "--out", str(out),
         "--age-key-file", "examples/demo.agekey", "--timeout", "90"],
        capture_output=True, text=True, timeout=240, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    page = out / "eng" / "notes.html"
    dom = chromium(tmp_path / "profile", "--dump-dom", page.as_uri())
    assert dom.returncode == 0, dom.stderr.decode()[-2000:]
    text = dom.stdout.decode()
    assert 'id="tool-notes__word_count"' in text  # parsed into a DOM, not just written
    assert "<th>argument</th>" in text and "notes__fail" not in text  # the filter holds
    index = chromium(tmp_path / "profile", "--dump-dom", (out / "eng" / "index.html").as_uri())
    assert 'href="notes.html"' in index.stdout.decode()
    shot = out / "eng-notes.png"
    taken = chromium(tmp_path / "profile", f"--screenshot={shot}", "--window-size=1100,1400",
                     "--hide-scrollbars", page.as_uri())
    assert taken.returncode == 0, taken.stderr.decode()[-2000:]
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 20_000  # a page, not a blank image
