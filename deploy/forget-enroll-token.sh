#!/bin/sh
# Installed as <prefix>/bin/perch-agent-forget-token and run by perch-agent.service (ExecStartPost, as
# root) once the agent is ready. An enrolled agent never uses its enrollment token again, so the token
# line is removed from the environment file instead of staying on the device.
set -eu
ENV_FILE="${PERCH_AGENT_ENV_FILE:-/etc/perch/agent.env}"
STATE_DIR="${PERCH_STATE_DIR:-/var/lib/perch-agent}"

[ -s "$STATE_DIR/identity/credentials.json" ] || exit 0
[ -f "$ENV_FILE" ] || exit 0
grep -q '^PERCH_ENROLL_TOKEN=' "$ENV_FILE" || exit 0

tmp="$ENV_FILE.tmp.$$"
trap 'rm -f "$tmp"' EXIT
(umask 077 && grep -v '^PERCH_ENROLL_TOKEN=' "$ENV_FILE" > "$tmp") || true
chmod --reference="$ENV_FILE" "$tmp"
chown --reference="$ENV_FILE" "$tmp" 2>/dev/null || true
mv "$tmp" "$ENV_FILE"
echo "enrolled: removed PERCH_ENROLL_TOKEN from $ENV_FILE"
