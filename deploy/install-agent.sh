#!/bin/sh
# Installs the Perch agent on a Raspberry Pi OS / Debian device (arm64 or x86_64).
#   sudo ./install-agent.sh --controller https://perch.example.net --token pet_... [--source DIR]
# Needs Node.js >= 20 (installed from the Debian/NodeSource repository if missing) and ffmpeg for cameras.
set -eu

CONTROLLER=""
TOKEN=""
SOURCE="$(cd "$(dirname "$0")/.." && pwd)"
PREFIX=/opt/perch
while [ $# -gt 0 ]; do
  case "$1" in
    --controller) CONTROLLER="$2"; shift 2 ;;
    --token) TOKEN="$2"; shift 2 ;;
    --source) SOURCE="$2"; shift 2 ;;
    --prefix) PREFIX="$2"; shift 2 ;;
    -h|--help) sed -n '2,4p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done

[ "$(id -u)" = 0 ] || { echo "run as root (sudo)" >&2; exit 1; }

if ! command -v node >/dev/null 2>&1 || [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  echo "installing Node.js 20 and ffmpeg"
  apt-get update
  apt-get install -y nodejs npm ffmpeg
fi
command -v ffmpeg >/dev/null 2>&1 || apt-get install -y ffmpeg

getent group perch-agent >/dev/null || groupadd --system perch-agent
getent passwd perch-agent >/dev/null ||
  useradd --system --gid perch-agent --groups video,audio --home-dir /var/lib/perch-agent \
    --shell /usr/sbin/nologin perch-agent

echo "installing the agent into $PREFIX"
mkdir -p "$PREFIX"
# The workspace layout is kept so that @perch/shared resolves; only production dependencies are installed.
for dir in package.json package-lock.json shared agent; do
  cp -a "$SOURCE/$dir" "$PREFIX/"
done
(cd "$PREFIX" && npm ci --omit=dev --workspace @perch/agent --include-workspace-root=false --no-audit --no-fund)
[ -f "$PREFIX/agent/dist/cli/perch-agent.js" ] || { echo "agent/dist missing: run npm run build first" >&2; exit 1; }

mkdir -p /etc/perch
chmod 0755 /etc/perch
if [ ! -f /etc/perch/agent.yaml ]; then
  cat > /etc/perch/agent.yaml <<YAML
# Perch agent configuration (flags > PERCH_* environment > this file > defaults)
controllerUrl: ${CONTROLLER:-http://127.0.0.1:8080}
stateDir: /var/lib/perch-agent
telemetry:
  intervalS: 60
YAML
fi
if [ -n "$TOKEN" ]; then
  umask 077
  printf 'PERCH_ENROLL_TOKEN=%s\n' "$TOKEN" > /etc/perch/agent.env
  chown root:perch-agent /etc/perch/agent.env
  chmod 0640 /etc/perch/agent.env
fi

install -m 0644 "$SOURCE/deploy/systemd/perch-agent.service" /etc/systemd/system/perch-agent.service
if command -v systemd-analyze >/dev/null 2>&1; then
  systemd-analyze verify /etc/systemd/system/perch-agent.service || true
fi
systemctl daemon-reload
systemctl enable --now perch-agent.service
echo "perch-agent installed; follow it with: journalctl -u perch-agent -f"
