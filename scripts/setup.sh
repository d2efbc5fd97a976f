#!/usr/bin/env bash
# One idempotent setup for `npm start`, `npm test` and CI on a fresh Debian 12
# machine: system packages, npm dependencies, the mediasoup worker and the web
# bundle. Each step checks first, so a second run takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

# --- Node.js ---------------------------------------------------------------
command -v node >/dev/null || die "node is not installed (Node.js 20 or newer is required)"
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || die "Node.js 20 or newer is required (found $(node --version))"

# --- System packages -------------------------------------------------------
# redis-server: the embedded store for `npm start` and every test's private
# Redis; chromium: the browser of the end-to-end tests; openssl: DTLS fixtures.
# The worker's build dependencies are handled by build-worker.sh.
source scripts/lib/apt.sh
ensure_debian_packages redis-server openssl chromium fonts-liberation

# --- npm dependencies --------------------------------------------------------
lock_hash=$(sha256sum package-lock.json | cut -c1-16)
stamp=node_modules/.callhub-lock-hash
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_hash" ]; then
  log "installing npm dependencies (npm ci)"
  npm ci --no-audit --no-fund
  echo "$lock_hash" > "$stamp"
else
  log "npm dependencies up to date"
fi

# --- mediasoup worker --------------------------------------------------------
bash scripts/build-worker.sh

# --- web softphone bundle ----------------------------------------------------
if [ -f scripts/build-web.ts ]; then
  node --import tsx scripts/build-web.ts
fi
log "ready"
