#!/usr/bin/env bash
# End-to-end checks of `infermark compare` and `infermark baseline`: exit codes on synthetic results with
# known shifts (0 unchanged, 1 a 10% regression, 3 noisy, 2 different machines or bad input), the output
# formats and exports, plain Google Benchmark JSON, baselines, the A/B mode (with a prebuilt base binary),
# and the callgrind tier on one tiny case (skipped with a message when valgrind is missing).
. "$(dirname "$0")/common.bash"
EXPECT_TAIL=8


# gen FILE FINGERPRINT(or "plain") then "NAME MEDIAN_MS SPREAD N PHASE" per case: N repetitions at
# MEDIAN * exp(SPREAD * z), z evenly spaced over [-1.5, 1.5] (shifted by PHASE), in rotated order.
gen() {
  local file=$1 fp=$2
  shift 2
  awk -v fp="$fp" -v spec="$*" 'BEGIN {
    n = split(spec, w, " ");
    if (fp == "plain") printf "{\"context\": {\"host_name\": \"h\"},\n";
    else printf "{\"context\": {\"host_name\": \"h\", \"infermark\": {\"fingerprint\": \"%s\", \"suite\": \"ci\", \"mode\": \"perf\", \"pinning\": {\"requested\": \"none\", \"applied\": false}}},\n", fp;
    printf "\"benchmarks\": [";
    first = 1;
    for (c = 1; c <= n; c += 5) {
      name = w[c]; med = w[c + 1]; spread = w[c + 2]; reps = w[c + 3]; phase = w[c + 4];
      for (j = 0; j < reps; j++) {
        i = (j * 3) % reps;
        z = -1.5 + 3 * (i + phase) / reps;
        t = med * exp(spread * z);
        printf "%s\n{\"name\": \"%s\", \"run_name\": \"%s\", \"run_type\": \"iteration\", \"repetitions\": %d, \"repetition_index\": %d, \"iterations\": 10, \"real_time\": %.9f, \"cpu_time\": %.9f, \"time_unit\": \"ms\"}", first ? "" : ",", name, name, reps, j, t, t;
        first = 0;
      }
    }
    printf "]}\n";
  }' > "$file"
}

A=gemm:m64n1408k2048:fp32/avx2:fp32/serial/1
B=gemm:m16n2048k1408:fp32/avx2:fp32/serial/1
gen "$tmp/base.json"  fp1 "$A 1.0 0.01 10 0.5" "$B 2.0 0.01 10 0.5"
gen "$tmp/reg.json"   fp1 "$A 1.1 0.01 10 0.4" "$B 2.0 0.01 10 0.6"
gen "$tmp/same.json"  fp1 "$A 1.003 0.01 10 0.3" "$B 1.995 0.01 10 0.7"
gen "$tmp/noisy.json" fp1 "$A 1.1 0.25 10 0.4" "$B 2.0 0.25 10 0.6"
gen "$tmp/other.json" fp2 "$A 1.0 0.01 10 0.4" "$B 2.0 0.01 10 0.6"
gen "$tmp/gb-base.json" plain "BM_x/64 1.0 0.01 8 0.5"
gen "$tmp/gb-new.json"  plain "BM_x/64 1.2 0.01 8 0.4"

expect 1 "1 regressed, 0 improved, 1 unchanged"  -- compare "$tmp/base.json" "$tmp/reg.json"
expect 1 "REGRESSED"                             -- compare "$tmp/base.json" "$tmp/reg.json" --threshold 5%
expect 0 "0 regressed, 0 improved, 2 unchanged"  -- compare "$tmp/base.json" "$tmp/same.json"
expect 3 "too noisy"                             -- compare "$tmp/base.json" "$tmp/noisy.json"
expect 2 "different machines are not comparable" -- compare "$tmp/base.json" "$tmp/other.json"
expect 0 "DIFFERENT MACHINES"                    -- compare "$tmp/base.json" "$tmp/other.json" --allow-different-machines
expect 0 "unchanged"                             -- compare "$tmp/base.json" "$tmp/reg.json" --threshold 20%
expect 1 "plain Google Benchmark JSON"           -- compare "$tmp/gb-base.json" "$tmp/gb-new.json"
expect 1 "| case | base | new | change |"        -- compare "$tmp/base.json" "$tmp/reg.json" --format md
expect 1 '"exit_code": 1'                        -- compare "$tmp/base.json" "$tmp/reg.json" --format json \
  --bmf "$tmp/bmf.json" --github-benchmark "$tmp/gab.json"
if grep -q '"latency"' "$tmp/bmf.json" && grep -q '"unit": "ns"' "$tmp/gab.json"; then echo "ok: exports written"
else echo "FAIL: exports missing or malformed"; fails=$((fails + 1)); fi

# Usage errors and unreadable input: exit 2 with the reason.
expect 2 "compare needs two files"               -- compare "$tmp/base.json"
expect 2 "cannot read"                           -- compare "$tmp/base.json" "$tmp/missing.json"
echo '{"benchmarks": 3' > "$tmp/broken.json"
expect 2 "is not valid JSON"                     -- compare "$tmp/base.json" "$tmp/broken.json"
expect 2 "is ambiguous"                          -- compare "$tmp/base.json" "$tmp/reg.json" --threshold 5
expect 2 "unknown format 'xml'"                  -- compare "$tmp/base.json" "$tmp/reg.json" --format xml
expect 2 "unknown correction 'x'"                -- compare "$tmp/base.json" "$tmp/reg.json" --correction x
expect 2 "unknown baseline action 'drop'"        -- baseline drop

# Baselines: stored under this machine's fingerprint and found by compare --baseline.
fp=$("$bin" baseline show | sed -n 's/^this machine: fingerprint //p')
if [ -z "$fp" ]; then echo "FAIL: baseline show prints no fingerprint"; fails=$((fails + 1)); fi
gen "$tmp/mine.json" "$fp" "$A 1.0 0.01 10 0.5"
gen "$tmp/mine-reg.json" "$fp" "$A 1.1 0.01 10 0.4"
expect 2 "no time baseline for suite 'ci'"       -- compare --baseline "$tmp/mine-reg.json"
expect 0 "stored baseline: $INFERMARK_RESULTS_DIR/baselines/$fp/ci.json" -- baseline update "$tmp/mine.json"
expect 0 "$fp"                                   -- baseline show
expect 1 "1 regressed"                           -- compare --baseline "$tmp/mine-reg.json"
expect 2 "no machine fingerprint"                -- baseline update "$tmp/gb-base.json"

# A/B: an unknown revision is a clear error; an A/A run with a prebuilt base binary merges the rounds.
expect 2 "revision 'no-such-rev-xyz' does not exist" -- compare --ab no-such-rev-xyz --ab-dir "$tmp/ab"
expect_ab() {
  local out rc
  out=$("$bin" compare --base-binary "$bin" --case gemm:m17n64k33:fp32 --rounds 2 --repetitions 3 --min-time 0.01 \
        --run-arg=--backend=serial --ab-dir "$tmp/ab" 2>&1)
  rc=$?
  # The verdict of an A/A run is a timing outcome: on a shared host (or under the sanitizers) two rounds of
  # 3 repetitions can differ "significantly" (seen: +67% in the ASan build under load), so any verdict
  # (0 unchanged, 1 regressed, 3 noisy) passes; an error (2) does not. The verdicts themselves are tested
  # above on synthetic results with known shifts; this checks the A/B mechanics.
  if [ "$rc" != 0 ] && [ "$rc" != 1 ] && [ "$rc" != 3 ]; then echo "FAIL: A/A compare exited $rc"; echo "$out" | tail -8; fails=$((fails + 1)); return; fi
  grep -q "regressed, .* improved, .* unchanged" <<<"$out" || { echo "FAIL: A/A compare printed no verdict summary"; echo "$out" | tail -8; fails=$((fails + 1)); return; }
  if [ "$(grep -c '"run_type": "iteration"' "$tmp/ab/head.json")" != 6 ] || ! grep -q '"rounds": 2' "$tmp/ab/base.json"; then
    echo "FAIL: A/B merged files lack the 2 x 3 repetitions"; fails=$((fails + 1)); return
  fi
  grep -q "round 2/2: base" <<<"$out" && grep -q "round 1/2: base" <<<"$out" || { echo "FAIL: no ABBA progress"; fails=$((fails + 1)); return; }
  echo "ok: A/A run -> $rc, 6 repetitions per side merged"
}
expect_ab

# The deterministic tier on one tiny case: identical instruction counts on two measurements.
if ldd "$bin" 2>/dev/null | grep -q libasan; then
  expect 2 "cannot run a sanitizer" -- compare --callgrind --case gemm:m8n16k16:fp32 --out "$tmp/cg1.json"
  echo "skip: sanitizer build: the callgrind tier is tested in the release build"
elif command -v valgrind >/dev/null 2>&1; then
  expect 0 "instructions" -- compare --callgrind --case gemm:m8n16k16:fp32 --out "$tmp/cg1.json"
  expect 0 "1 unchanged"  -- compare --callgrind --case gemm:m8n16k16:fp32 "$tmp/cg1.json" --out "$tmp/cg2.json"
  c1=$(grep '"instructions"' "$tmp/cg1.json"); c2=$(grep '"instructions"' "$tmp/cg2.json")
  if [ -n "$c1" ] && [ "$c1" = "$c2" ]; then echo "ok: callgrind counts are deterministic ($c1)"
  else echo "FAIL: callgrind counts differ: '$c1' vs '$c2'"; fails=$((fails + 1)); fi
  expect 2 "holds callgrind results" -- compare "$tmp/cg1.json" "$tmp/base.json"
else
  echo "skip: valgrind is not installed (sudo apt-get install -y valgrind): callgrind tier not tested"
fi

echo "e2e compare: $fails failure(s)"
[ "$fails" -eq 0 ]
