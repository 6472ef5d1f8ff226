# Headless Chromium (Debian's) for the tests that render pages in a real browser
# (tests/cli/test_docs_browser.py renders the generated docs of examples/workspaces).
scripts/apt-install chromium
command -v chromium >/dev/null || { echo "chromium missing after install" >&2; exit 1; }
