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
