# Podman (Debian's) serves the Docker Engine API that the hub's docker entry needs at startup
# (tests/hub/test_entries_start.py runs `podman system service` on a socket of its own).
scripts/apt-install podman
command -v podman >/dev/null || { echo "podman missing after install" >&2; exit 1; }
