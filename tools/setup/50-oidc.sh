# A real OpenID Connect provider for the OIDC sign-in tests (tests/oidc): npm oidc-provider
# (OpenID Certified) and the Node 22 it runs on, pinned in tools/oidc/package-lock.json.
bash tools/npm-ci.sh tools/oidc
