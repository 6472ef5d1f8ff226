#!/bin/sh
# Regenerates the demo EncryptedSecrets under workspaces/*/secrets/ with `mcpyard secret encrypt`,
# for the recipient of the DEMO age key in demo.agekey (public: never use it for real secrets).
#
#   examples/make-secrets.sh                       # uses `mcpyard` on PATH
#   MCPYARD="python -m mcpyard" examples/make-secrets.sh
#
# Check one with: SOPS_AGE_KEY_FILE=examples/demo.agekey sops decrypt FILE
set -eu
cd "$(dirname "$0")"
MCPYARD=${MCPYARD:-mcpyard}
RECIPIENT=$(sed -n 's/^# public key: //p' demo.agekey)

for namespace in team-eng team-data; do
  out="workspaces/$namespace/secrets/analytics-key.yaml"
  mkdir -p "$(dirname "$out")"
  # shellcheck disable=SC2086  # MCPYARD may be a command with arguments
  $MCPYARD secret encrypt analytics-key -n "$namespace" \
    --from-literal token=demo-analytics-key-0001 \
    --age "$RECIPIENT" > "$out.tmp"
  mv "$out.tmp" "$out"
  echo "wrote examples/$out"
done
