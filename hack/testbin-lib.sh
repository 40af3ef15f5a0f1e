# Sourced by hack/testbin*.sh: the cache directory protocol they share.
#
# testbin_begin DIR: print DIR and exit when DIR holds a finished build (.complete); otherwise
# take DIR's lock, so parallel `make test` and `make demo` never link the same binary twice,
# and return to build (checking again under the lock, in case another builder just finished).
# testbin_end: mark DIR finished and print it.

testbin_cache=${FERRY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ferry}

log() { printf 'testbin: %s\n' "$*" >&2; }

testbin_begin() {
  testbin_dir=$1
  if [ -f "$testbin_dir/.complete" ]; then
    echo "$testbin_dir"
    exit 0
  fi
  mkdir -p "$testbin_dir"
  exec 9>"$testbin_dir/.lock"
  flock 9
  if [ -f "$testbin_dir/.complete" ]; then
    echo "$testbin_dir"
    exit 0
  fi
}

testbin_end() {
  touch "$testbin_dir/.complete"
  echo "$testbin_dir"
}

# apt_binary PKG BIN HINT [BIN...]: print BIN when it (and every further BIN) is an executable,
# else install Debian's PKG with apt-get, under a lock so that parallel `make test` and `make
# bench` do not race for dpkg's, then print BIN. HINT says what to do where apt-get cannot
# run. Exits the script either way.
apt_binary() {
  local pkg=$1 bin=$2 hint=$3
  shift 3
  local bins=("$bin" "$@")
  installed() {
    local b
    for b in "${bins[@]}"; do [ -x "$b" ] || return 1; done
  }
  if installed; then
    echo "$bin"
    exit 0
  fi
  if ! command -v apt-get >/dev/null; then
    log "$bin is missing and there is no apt-get to install $pkg; $hint"
    exit 1
  fi
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null; then
      log "$bin is missing; installing $pkg needs root: run \"sudo apt-get install $pkg\""
      exit 1
    fi
    sudo=(sudo -n)
  fi
  mkdir -p "$testbin_cache"
  exec 9>"$testbin_cache/$pkg.lock"
  flock 9
  if installed; then
    echo "$bin"
    exit 0
  fi
  apt() {
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -qq -o DPkg::Lock::Timeout=300 "$@" >&2
  }
  log "installing $pkg with apt-get"
  # A fresh machine may have no package lists yet, or stale ones naming versions the mirror
  # dropped; only then is `apt-get update` worth its time.
  if ! apt install -y --no-install-recommends "$pkg"; then
    log "retrying after apt-get update"
    apt update
    apt install -y --no-install-recommends "$pkg"
  fi
  if ! installed; then
    log "$pkg installed but ${bins[*]} missing"
    exit 1
  fi
  echo "$bin"
  exit 0
}
