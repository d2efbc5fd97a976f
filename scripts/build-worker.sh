#!/usr/bin/env bash
# Provide node_modules/mediasoup/worker/out/Release/mediasoup-worker.
#
# mediasoup's own install path downloads a prebuilt worker or lets meson fetch
# subprojects; neither works here (only npm and Debian's archive are reachable)
# so we build the worker against Debian 12's libraries instead
# (worker-meson-rewrite.py swaps the subprojects for system packages, and
# worker-patches/ holds our fixes to the worker sources).
#
# A build takes minutes, so the binary is cached outside the checkout, keyed by
# the mediasoup version and a hash of everything that shapes the build (this
# script, the meson rewrite, the patches, the platform). A cache hit just
# copies the binary into place.
#
# Environment:
#   CALLHUB_CACHE_DIR  cache root (default: ${XDG_CACHE_HOME:-~/.cache}/callhub)
set -euo pipefail
shopt -s nullglob

started=$EPOCHREALTIME

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$script_dir/.." && pwd)
mediasoup_dir="$root/node_modules/mediasoup"
patch_dir="$script_dir/worker-patches"
meson_rewrite="$script_dir/worker-meson-rewrite.py"

# mediasoup 3.12's Worker.js spawns this path when MEDIASOUP_WORKER_BIN is
# unset and MEDIASOUP_BUILDTYPE is not 'Debug', so installing here needs no
# runtime configuration.
installed_bin="$mediasoup_dir/worker/out/Release/mediasoup-worker"

# Build tools and -dev packages. The -dev packages pull in the shared
# libraries the worker links against, which are needed at run time too.
debian_packages=(
  g++ patch meson ninja-build pkg-config python3
  libssl-dev libuv1-dev libsrtp2-dev libusrsctp-dev libabsl-dev nlohmann-json3-dev
)

log() { echo "[build-worker] $*"; }
die() { echo "[build-worker] error: $*" >&2; exit 1; }
elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

[[ -f $mediasoup_dir/package.json ]] ||
  die "node_modules/mediasoup is missing: run npm ci first"
version=$(node -p 'require(process.argv[1]).version' "$mediasoup_dir/package.json")

# --- Debian packages --------------------------------------------------------

missing=()
for pkg in "${debian_packages[@]}"; do
  # dpkg -s also succeeds for removed-but-not-purged packages; ask for the
  # exact state instead.
  if [[ $(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null) != ii* ]]; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]})); then
  log "installing missing Debian packages: ${missing[*]}"
  sudo=()
  if ((EUID != 0)); then
    command -v sudo >/dev/null ||
      die "missing Debian packages (${missing[*]}) and not root; install them with apt-get"
    sudo=(sudo)
  fi
  # Wait for another apt/dpkg run instead of failing on its lock.
  apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600)
  if ! "${apt[@]}" update || ! "${apt[@]}" install -y --no-install-recommends "${missing[@]}"; then
    die "could not install Debian package(s): ${missing[*]}"
  fi
fi

# --- cache key --------------------------------------------------------------

# Patch file names are hashed with their contents so reordering or renaming
# patches also invalidates the cache. The Debian release and architecture are
# included so a shared or restored cache never hands a binary to a system with
# different library sonames.
cache_hash=$(
  {
    . /etc/os-release
    echo "platform ${ID:-unknown}-${VERSION_ID:-unknown} $(dpkg --print-architecture)"
    for f in "$script_dir/build-worker.sh" "$meson_rewrite" "$patch_dir"/*.patch; do
      echo "file $(basename "$f")"
      cat "$f"
    done
  } | sha256sum | cut -c1-12
)
cache_root=${CALLHUB_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/callhub}
cache_dir="$cache_root/mediasoup-worker/$version-$cache_hash"
cached_bin="$cache_dir/mediasoup-worker"

# --- install + checks -------------------------------------------------------

install_binary() {
  mkdir -p "$(dirname "$installed_bin")"
  if cmp -s "$cached_bin" "$installed_bin"; then
    return
  fi
  # Copy then rename: a running worker keeps its old inode, and an
  # interrupted copy never leaves a truncated binary at the final path.
  local tmp="$installed_bin.tmp.$$"
  cp "$cached_bin" "$tmp"
  chmod 0755 "$tmp"
  mv -f "$tmp" "$installed_bin"
}

check_binary() {
  [[ -x $installed_bin ]] || die "$installed_bin is not executable"
  # mediasoup-worker only runs with the pipes Node hands it, so check what can
  # be checked statically: every shared library resolves.
  local unresolved
  unresolved=$(ldd "$installed_bin" | grep 'not found' || true)
  if [[ -n $unresolved ]]; then
    die "$installed_bin has unresolved libraries (remove $cache_dir to rebuild):"$'\n'"$unresolved"
  fi
}

if [[ -n ${MEDIASOUP_WORKER_BIN:-} && $MEDIASOUP_WORKER_BIN != "$installed_bin" ]]; then
  log "warning: MEDIASOUP_WORKER_BIN=$MEDIASOUP_WORKER_BIN overrides the binary installed here"
fi

if [[ -x $cached_bin ]]; then
  install_binary
  check_binary
  log "mediasoup-worker $version ($cache_hash) installed from cache in $(elapsed "$started") s"
  exit 0
fi

# --- build ------------------------------------------------------------------

log "no cached worker for mediasoup $version ($cache_hash); building (several minutes)"
build_root=$(mktemp -d "${TMPDIR:-/tmp}/callhub-worker-build.XXXXXX")
trap 'rm -rf "$build_root"' EXIT
src="$build_root/worker"

cp -a "$mediasoup_dir/worker" "$src"
rm -rf "$src/out" "$src/build"   # our own install target / stale build state

python3 "$meson_rewrite" "$src"

for p in "$patch_dir"/*.patch; do
  log "applying $(basename "$p")"
  patch -p1 --batch --forward --quiet -d "$src" <"$p"
done

meson setup "$src/build" "$src" --buildtype release -Db_ndebug=true
ninja -C "$src/build" -j "$(nproc)" mediasoup-worker

# Publish atomically so a concurrent run sees either nothing or a whole binary.
mkdir -p "$cache_dir"
cp "$src/build/mediasoup-worker" "$cache_dir/.mediasoup-worker.tmp.$$"
chmod 0755 "$cache_dir/.mediasoup-worker.tmp.$$"
mv -f "$cache_dir/.mediasoup-worker.tmp.$$" "$cached_bin"

install_binary
check_binary
log "mediasoup-worker $version ($cache_hash) built and installed in $(elapsed "$started") s"
