#!/usr/bin/env bash
# A real Kubernetes API server for the cluster tests (tests/cluster/): kube-apiserver v1.20.2
# built from Debian bookworm's own `kubernetes` source package (the upstream tree with vendor/)
# with bookworm's Go, next to bookworm's etcd 3.4. Only the Debian archive is reached.
#
#   tools/kube-apiserver/install.sh [ROOT]
#       ROOT defaults to ${XDG_CACHE_HOME:-$HOME/.cache}/mcpyard/kube-apiserver
#       -> ROOT/bin/kube-apiserver (printed); a no-op once built.
#
# Cold: ~3.5 min on 2 idle cores (apt ~20 s, build ~3 min); ~1.5 GB of scratch, removed after.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
ROOT=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/mcpyard/kube-apiserver}
VERSION=1.20.2
if [ -x "$ROOT/bin/kube-apiserver" ]; then echo "$ROOT/bin/kube-apiserver"; exit 0; fi
"$REPO/scripts/apt-install" golang-go etcd-server make rsync openssl curl \
  golang-github-modern-go-reflect2-dev debian-archive-keyring
mkdir -p "$ROOT"/{apt/lists/partial,apt/cache/archives/partial,bin}
# The source package through a private apt configuration (the system's sources stay as they
# are): the same archive as the system's own `deb` entries, as `deb-src`.
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
[ -n "$mirror" ] || { echo "install.sh: no Debian archive found in the apt sources" >&2; exit 1; }
cat > "$ROOT/apt/src.sources" <<S
Types: deb-src
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
S
cat > "$ROOT/apt/apt.conf" <<C
Dir::Etc::SourceList "/dev/null"; Dir::Etc::SourceParts "$ROOT/apt"; Dir::Etc::Preferences "/dev/null";
Dir::Etc::PreferencesParts "/dev/null"; Dir::State::Lists "$ROOT/apt/lists"; Dir::Cache "$ROOT/apt/cache";
C
W=$(mktemp -d "${TMPDIR:-/tmp}/kas-build.XXXXXX"); trap 'rm -rf "$W"' EXIT
cd "$W"
APT_CONFIG="$ROOT/apt/apt.conf" apt-get update -qq
APT_CONFIG="$ROOT/apt/apt.conf" apt-get source --download-only "kubernetes=$VERSION*" >/dev/null 2>&1 \
  || APT_CONFIG="$ROOT/apt/apt.conf" apt-get source --download-only kubernetes >/dev/null
tar xzf kubernetes_*.orig.tar.gz
cd "kubernetes-$VERSION"
# The vendored reflect2 1.0.1 breaks on Go >= 1.18; Debian's 1.0.2 works.
R=vendor/github.com/modern-go/reflect2
rm -f "$R"/*.go "$R"/*.s
cp /usr/share/gocode/src/github.com/modern-go/reflect2/*.go /usr/share/gocode/src/github.com/modern-go/reflect2/*.s "$R"/
export HOME=$W/home
make gen_openapi >/dev/null            # the one generated file the release tarball leaves out
hack/make-rules/build.sh cmd/kube-apiserver >/dev/null
# Install atomically: a half-copied binary must not look built to the next run.
cp _output/local/bin/linux/amd64/kube-apiserver "$ROOT/bin/kube-apiserver.tmp"
mv "$ROOT/bin/kube-apiserver.tmp" "$ROOT/bin/kube-apiserver"
echo "$ROOT/bin/kube-apiserver"
