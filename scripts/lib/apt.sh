# Installs the named Debian packages that are missing, with sudo when not
# root; runs `apt-get update` only when something must be installed.
# Sourced by setup.sh and build-worker.sh.
ensure_debian_packages() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "[setup] ERROR: missing Debian packages (${missing[*]}) and no sudo to install them" >&2; return 1; }
    sudo="sudo"
  fi
  echo "[setup] installing Debian packages: ${missing[*]}"
  $sudo apt-get update -q >/dev/null || true
  if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/tmp/callhub-apt.log 2>&1; then
    tail -20 /tmp/callhub-apt.log >&2
    echo "[setup] ERROR: could not install Debian packages: ${missing[*]} (see /tmp/callhub-apt.log)" >&2
    return 1
  fi
}
