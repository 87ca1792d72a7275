#!/usr/bin/env bash
# End-to-end checks of interrupting `run`: one SIGINT lets the current case finish and writes the results
# gathered so far (exit 130, "interrupted": true in the file); a second signal ends the process at once
# (a case that never returns can still be stopped) and leaves no results file, never a partial one.
. "$(dirname "$0")/common.bash"

# start_run LOG ARGS...: infermark run in the background (pid in $pid); returns once it has started its
# first case (the "[1/N]" progress line), or fails after 120 s.
start_run() {
  local log=$1
  shift
  "$bin" run --no-probe --no-report "$@" >"$log" 2>&1 &
  pid=$!
  for _ in $(seq 1 1200); do
    grep -q '^\[1/' "$log" && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  fail "run did not reach its first case: $(tail -n 3 "$log")"
  kill -9 "$pid" 2>/dev/null
  return 1
}
# wait_for SECONDS: waits for $pid to end; sets rc to its exit status, or to "timeout" (and kills it).
wait_for() {
  for _ in $(seq 1 $(($1 * 10))); do
    if ! kill -0 "$pid" 2>/dev/null; then
      wait "$pid"
      rc=$?
      return
    fi
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  rc=timeout
}

# One SIGINT during the first of three cases (each ~2 s of timing): that case completes, the others do not run.
G="--backend serial --repetitions 2 --min-time 1"
if start_run "$tmp/one.log" $G --case gemm:m32n256k256:fp32 --case gemm:m32n256k512:fp32 --case gemm:m32n512k256:fp32 --out "$tmp/one.json"; then
  kill -INT "$pid"
  wait_for 120
  if [ "$rc" != 130 ]; then
    fail "one SIGINT: exit $rc, expected 130"; tail -n 5 "$tmp/one.log"
  elif ! grep -qF "interrupt again to stop at once" "$tmp/one.log"; then
    fail "one SIGINT: no message on stderr"; tail -n 5 "$tmp/one.log"
  elif out=$(python3 - "$tmp/one.json" <<'PY' 2>&1
import json, sys
d = json.load(open(sys.argv[1]))
assert d["context"]["infermark"]["interrupted"] is True, d["context"]["infermark"]
cases = {b["descriptor"] for b in d["benchmarks"]}
assert cases == {"gemm:m32n256k256:fp32"}, cases
PY
  ); then
    echo "ok: one SIGINT finished the current case, wrote it and exited 130"
  else
    fail "one SIGINT: results file: $out"
  fi
fi

# Two signals during a case that would time for minutes: the process ends at once, no results file.
if start_run "$tmp/two.log" --backend serial --repetitions 5 --min-time 30 --case gemm:m32n256k256:fp32 --out "$tmp/two.json"; then
  kill -TERM "$pid"
  sleep 0.5
  kill -TERM "$pid"
  wait_for 10
  if [ "$rc" != 143 ]; then
    fail "two SIGTERMs: exit $rc, expected 143 (ended by the signal)"; tail -n 5 "$tmp/two.log"
  elif [ -e "$tmp/two.json" ]; then
    fail "two SIGTERMs: a results file was written"
  else
    echo "ok: a second SIGTERM ended the run at once, without a results file"
  fi
fi

[ $fails = 0 ] && echo "all interrupt e2e checks passed" || echo "$fails interrupt e2e check(s) failed"
exit $fails
