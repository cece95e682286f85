#!/bin/sh
# Installs or upgrades the Perch agent on a Raspberry Pi OS / Debian device (arm64 or x86_64).
#   sudo ./install-agent.sh --controller https://perch.example.net --token pet_... [--source DIR] [--prefix DIR]
# Needs Node.js >= 20.19 with npm (the distribution's package is used only when new enough; otherwise the
# script stops and says how to install one) and ffmpeg for cameras (installed with apt-get if missing).
set -eu

NODE_MIN_MAJOR=20
NODE_MIN_MINOR=19

# node_version_ok VERSION: true when VERSION ("v20.19.0", "22.3.0", "20.19.2+dfsg-1") is >= 20.19.
node_version_ok() {
  v=${1#v}
  major=${v%%.*}
  rest=${v#*.}
  minor=${rest%%[!0-9]*}
  case "$major" in '' | *[!0-9]*) return 1 ;; esac
  case "$minor" in '' | *[!0-9]*) return 1 ;; esac
  [ "$rest" != "$v" ] || return 1
  [ "$major" -gt "$NODE_MIN_MAJOR" ] || { [ "$major" -eq "$NODE_MIN_MAJOR" ] && [ "$minor" -ge "$NODE_MIN_MINOR" ]; }
}

# The version the distribution would install (empty when it has no nodejs package).
apt_nodejs_candidate() {
  apt-cache show --no-all-versions nodejs 2>/dev/null | sed -n 's/^Version: *//p' | sed 's/^[0-9]*://' | head -n 1
}

too_old_node() {
  cat >&2 <<EOF
Perch needs Node.js ${NODE_MIN_MAJOR}.${NODE_MIN_MINOR} or newer with npm; found: $1.
(Debian 12 / Raspberry Pi OS bookworm ship Node 18.) Install a newer Node.js, then run this script again:
  - NodeSource packages (Node 20 or 22): https://github.com/nodesource/distributions
    Download its setup script, read it, run it as root, then: apt-get install -y nodejs
  - or the official binaries: https://nodejs.org/en/download (Linux, arm64 or x64 .tar.xz):
    tar -xJf node-v22.*-linux-*.tar.xz -C /usr/local --strip-components=1
The agent's unit runs the node found on PATH when this script runs.
EOF
}

# Makes sure a node >= 20.19 and npm are present; prints the node path. Installs the distribution's
# nodejs only when node is missing and the packaged version is new enough.
ensure_node() {
  if ! command -v node >/dev/null 2>&1; then
    candidate=$(apt_nodejs_candidate)
    if [ -n "$candidate" ] && node_version_ok "$candidate"; then
      echo "installing nodejs $candidate and npm from the distribution" >&2
      apt-get install -y nodejs npm >&2
    else
      too_old_node "no node on PATH, and the distribution offers ${candidate:-no nodejs}"
      return 1
    fi
  fi
  found=$(node --version 2>/dev/null || echo unknown)
  if ! node_version_ok "$found"; then
    too_old_node "node $found ($(command -v node))"
    return 1
  fi
  if ! command -v npm >/dev/null 2>&1; then
    too_old_node "node $found but no npm"
    return 1
  fi
  command -v node
}

# render_unit SOURCE NODE PREFIX: the shipped unit with the node binary and install prefix of this host.
render_unit() {
  sed -e "s#^ExecStart=/usr/bin/node #ExecStart=$2 #" -e "s#/opt/perch/#$3/#g" "$1"
}

# Enables the unit and (re)starts it. Not `enable --now`, which leaves an agent that is already running
# on the old version: an upgrade restarts it, a first install starts it.
start_service() {
  systemctl daemon-reload
  systemctl enable perch-agent.service
  if systemctl is-active --quiet perch-agent.service; then
    echo "restarting the running agent on the new version"
    systemctl restart perch-agent.service
  else
    systemctl start perch-agent.service
  fi
}

main() {
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
      -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
      *) echo "unknown option $1" >&2; exit 2 ;;
    esac
  done

  [ "$(id -u)" = 0 ] || { echo "run as root (sudo)" >&2; exit 1; }

  apt-get update
  NODE_BIN=$(ensure_node) || exit 1
  echo "using $NODE_BIN ($("$NODE_BIN" --version))"
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
  mkdir -p "$PREFIX/bin"
  install -m 0755 "$SOURCE/deploy/forget-enroll-token.sh" "$PREFIX/bin/perch-agent-forget-token"

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
    # Removed again by the unit's ExecStartPost once the device is enrolled (perch-agent-forget-token).
    umask 077
    printf 'PERCH_ENROLL_TOKEN=%s\n' "$TOKEN" > /etc/perch/agent.env
    chown root:perch-agent /etc/perch/agent.env
    chmod 0640 /etc/perch/agent.env
  fi

  render_unit "$SOURCE/deploy/systemd/perch-agent.service" "$NODE_BIN" "$PREFIX" > /etc/systemd/system/perch-agent.service
  chmod 0644 /etc/systemd/system/perch-agent.service
  if command -v systemd-analyze >/dev/null 2>&1; then
    systemd-analyze verify /etc/systemd/system/perch-agent.service || true
  fi
  start_service
  echo "perch-agent installed; follow it with: journalctl -u perch-agent -f"
}

# Tests source the functions above without running the installation.
[ "${PERCH_INSTALL_SOURCE_ONLY:-}" = 1 ] || main "$@"
