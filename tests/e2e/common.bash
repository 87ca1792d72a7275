# Sourced by every e2e script (not a test itself: CMake adds only tests/e2e/*.sh). Argument 1 is the
# infermark binary. Sets up a temporary directory (removed on exit) holding the results directory
# (INFERMARK_RESULTS_DIR=$tmp/results), the failure counter, fail() and expect().
set -u
bin=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export INFERMARK_RESULTS_DIR=$tmp/results
mkdir -p "$INFERMARK_RESULTS_DIR"
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# expect <exit code> <text in stdout/stderr> -- <args...>: runs infermark with args; on a failure prints
# the output's last ${EXPECT_TAIL:-5} lines.
expect() {
  local want=$1 needle=$2
  shift 3
  local out rc
  out=$("$bin" "$@" 2>&1)
  rc=$?
  if [ "$rc" != "$want" ]; then fail "infermark $* exited $rc, expected $want"; echo "$out" | tail -n "${EXPECT_TAIL:-5}"; return; fi
  if ! grep -qF -- "$needle" <<<"$out"; then fail "infermark $* output lacks '$needle'"; echo "$out" | tail -n "${EXPECT_TAIL:-5}"; return; fi
  echo "ok: infermark $* -> $rc"
}
