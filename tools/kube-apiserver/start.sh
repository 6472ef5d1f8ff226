#!/usr/bin/env bash
# Start etcd and kube-apiserver on 127.0.0.1 only, with a throwaway PKI (certs.sh).
#   start.sh WORKDIR PORT ETCD_PORT ETCD_PEER_PORT
# BIN: the kube-apiserver (default: what install.sh built). Prints WORKDIR/pki/kubeconfig (an
# admin in group system:masters) once /readyz answers ok; writes WORKDIR/etcd.pid and
# WORKDIR/apiserver.pid. Stop: kill those two PIDs. RBAC is on: a ServiceAccount token
# (TokenRequest API) sees only what it is granted. WORKDIR/audit.log: every request (metadata).
# ConfigMaps and Secrets are watched from etcd itself (no watch cache), which is compacted every
# 10 s (and whenever a test compacts it through etcd's API): a watch of them from an older
# resourceVersion gets 410 Gone, as on a busy cluster.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
W=${1:?usage: start.sh WORKDIR PORT ETCD_PORT ETCD_PEER_PORT}; PORT=${2:?}; EP=${3:?}; EPP=${4:?}
BIN=${BIN:-${XDG_CACHE_HOME:-$HOME/.cache}/mcpyard/kube-apiserver/bin/kube-apiserver}
[ -x "$BIN" ] || { echo "start.sh: no kube-apiserver at $BIN: run tools/kube-apiserver/install.sh" >&2; exit 1; }
command -v etcd >/dev/null || { echo "start.sh: no etcd: run tools/kube-apiserver/install.sh" >&2; exit 1; }
mkdir -p "$W"; W=$(cd "$W" && pwd); P=$W/pki
[ -f "$P/kubeconfig" ] || "$HERE/certs.sh" "$P" "$PORT"
# etcd skips fsync: its data is thrown away with the test session.
# An audit log of every request (metadata only: who, verb, resource; never a body), so tests can
# compare what a ServiceAccount did with what RBAC grants it.
cat > "$W/audit-policy.yaml" <<A
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
A
etcd --name t --data-dir "$W/etcd" \
  --listen-client-urls "http://127.0.0.1:$EP" --advertise-client-urls "http://127.0.0.1:$EP" \
  --listen-peer-urls "http://127.0.0.1:$EPP" --initial-advertise-peer-urls "http://127.0.0.1:$EPP" \
  --initial-cluster "t=http://127.0.0.1:$EPP" --unsafe-no-fsync \
  > "$W/etcd.log" 2>&1 < /dev/null &
echo $! > "$W/etcd.pid"
"$BIN" --etcd-servers="http://127.0.0.1:$EP" --bind-address=127.0.0.1 --advertise-address=127.0.0.1 \
  --secure-port="$PORT" --insecure-port=0 --cert-dir="$W/certs" \
  --tls-cert-file="$P/server.crt" --tls-private-key-file="$P/server.key" --client-ca-file="$P/ca.crt" \
  --service-account-key-file="$P/sa.pub" --service-account-signing-key-file="$P/sa.key" \
  --service-account-issuer=https://kubernetes.default.svc --api-audiences=https://kubernetes.default.svc \
  --service-cluster-ip-range=10.0.0.0/24 --authorization-mode=RBAC --allow-privileged=true \
  --audit-policy-file="$W/audit-policy.yaml" --audit-log-path="$W/audit.log" --audit-log-maxsize=200 \
  --watch-cache-sizes=configmaps#0,secrets#0 --etcd-compaction-interval=10s \
  > "$W/apiserver.log" 2>&1 < /dev/null &
echo $! > "$W/apiserver.pid"
for _ in $(seq 1 720); do   # up to 3 min: a loaded 2-core machine is slow to start it
  if [ "$(curl -s --cacert "$P/ca.crt" --cert "$P/admin.crt" --key "$P/admin.key" "https://127.0.0.1:$PORT/readyz" || true)" = ok ]; then
    echo "$P/kubeconfig"; exit 0
  fi
  kill -0 "$(cat "$W/apiserver.pid")" 2>/dev/null || { echo "start.sh: kube-apiserver exited; see $W/apiserver.log" >&2; tail -5 "$W/apiserver.log" >&2; exit 1; }
  sleep 0.25
done
echo "start.sh: kube-apiserver not ready after 3 min; see $W/apiserver.log" >&2
exit 1
