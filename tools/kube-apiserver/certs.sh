#!/usr/bin/env bash
# A throwaway PKI for a loopback-only API server, and the admin kubeconfig.
#   certs.sh DIR PORT
# DIR/ca.crt, server.{crt,key} (127.0.0.1, localhost), admin.{crt,key} (group system:masters),
# sa.{key,pub} (ServiceAccount token signing), kubeconfig (admin, namespace default).
set -euo pipefail
D=${1:?usage: certs.sh DIR PORT}; PORT=${2:?usage: certs.sh DIR PORT}
mkdir -p "$D"; D=$(cd "$D" && pwd); cd "$D"
q() { "$@" 2>/dev/null; }
q openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=mcpyard-test-ca" -keyout ca.key -out ca.crt
q openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" -keyout server.key -out server.csr
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' > server.ext
q openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -extfile server.ext -out server.crt
q openssl req -newkey rsa:2048 -nodes -subj "/O=system:masters/CN=admin" -keyout admin.key -out admin.csr
printf 'extendedKeyUsage=clientAuth\n' > client.ext
q openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -extfile client.ext -out admin.crt
q openssl genrsa -out sa.key 2048; q openssl rsa -in sa.key -pubout -out sa.pub
chmod 600 ./*.key
cat > kubeconfig <<KC
apiVersion: v1
kind: Config
clusters: [{name: local, cluster: {server: "https://127.0.0.1:$PORT", certificate-authority: $D/ca.crt}}]
users: [{name: admin, user: {client-certificate: $D/admin.crt, client-key: $D/admin.key}}]
contexts: [{name: local, context: {cluster: local, user: admin, namespace: default}}]
current-context: local
KC
