#!/usr/bin/env bash
# End-to-end checks of the command line: bad input gets a clear message and exit code 2 with no partial
# output file; a small run writes Google-Benchmark JSON that compare.py accepts.
. "$(dirname "$0")/common.bash"

expect 0 "infermark"        -- --version
expect 0 "run"              -- --help
expect 2 "unknown subcommand 'frobnicate'; valid choices: run, probe, list" -- frobnicate
expect 2 "--bogus"          -- run --bogus
expect 2 "unknown backend 'gpu'; valid choices: serial, openmp, tbb" -- run --no-probe --backend gpu --case gemm:m1n2k3:fp32
expect 2 "thread count 0 is out of range"      -- run --no-probe --threads 0 --case gemm:m1n2k3:fp32
expect 2 "thread count 4096 is out of range"   -- run --no-probe --threads 4096 --case gemm:m1n2k3:fp32
expect 2 "unknown pinning policy 'socket'"     -- run --no-probe --pin socket --case gemm:m1n2k3:fp32
expect 2 "unknown suite 'huge'; valid choices: quick, full, ci" -- run --no-probe --suite huge
expect 2 "unknown field 'q'"                   -- run --no-probe --case gemm:m1n2q3:fp32
expect 2 "unknown op 'conv'"                   -- run --no-probe --case conv:m1:fp32
expect 2 "unknown data type 'fp16'"            -- run --no-probe --case gemm:m1n2k3:fp16
expect 2 "does not exist"                      -- run --no-probe --case gemm:m1n2k3:fp32 --out /nonexistent/r.json
expect 2 "unknown format 'xml'"                -- probe --format xml
expect 2 "cannot list 'gpus'; valid choices: kernels, suites, workloads, profiles" -- list gpus
expect 0 "deepseek-v3"                          -- list workloads
expect 0 "cloudmatrix-384"                      -- list profiles
expect 2 "unknown mode 'fast'"                 -- run --no-probe --mode fast --case gemm:m1n2k3:fp32
expect 2 "no implementation named 'x:y'"       -- run --no-probe --case gemm:m1n2k3:fp32 --impl x:y
left=$(cd "$tmp" && find . -mindepth 1 ! -path ./results)
[ -z "$left" ] || fail "a refused command left files: $left"

# A small real run: verified, timed, Google Benchmark JSON that compare.py reads unchanged.
expect 0 "1 verified, 0 failed" -- run --no-probe --case gemm:m17n64k33:fp32 --backend serial --repetitions 3 --min-time 0.01 --out "$tmp/r.json"
expect 0 "descriptor: gemm:" -- list kernels
# The paged cache's block placement: both verified against the reference; a bad value lists the choices.
expect 0 "2 verified, 0 failed" -- run --no-probe --mode correctness --backend serial --case attn:b3q1ctx100hq8hkv2dk64:bf16:blocks=contiguous --case attn:b3q1ctx100hq8hkv2dk64:bf16:lens=mixed:blocks=shuffled --out "$tmp/blocks.json"
expect 2 "option 'blocks' has no value 'random'; valid choices: shuffled, contiguous" -- run --no-probe --case attn:b1q1ctx16hq2hkv2dk64:bf16:blocks=random
if [ -x /usr/bin/python3 ] && [ -f /usr/share/benchmark/compare.py ]; then
  if out=$(/usr/bin/python3 /usr/share/benchmark/compare.py benchmarks "$tmp/r.json" "$tmp/r.json" 2>&1); then
    grep -q "gemm:m17n64k33:fp32" <<<"$out" && echo "ok: compare.py reads the results" || { echo "FAIL: compare.py output lacks the case"; echo "$out"; fails=$((fails + 1)); }
  else
    echo "FAIL: compare.py rejected the results"; echo "$out" | tail -5; fails=$((fails + 1))
  fi
fi

# The main job's shape on a tiny case: probe, run, estimate tables stored in the results file, reports.
expect 0 "== estimate: deepseek-v3 decode, batch 128, context 4096" -- run --case gemm:m17n64k33:fp32 --case gemm:m1n512k256:fp32 --min-time 0.01 --repetitions 3 --out "$tmp/main.json"
# The GEMV (0.5 FLOP/byte) is memory-bound on any CPU's roofline: the DRAM read bandwidth is measured beside it.
grep -q '"dram_read_gbs_alongside"' "$tmp/main.json" && grep -q '"roofline_fraction_alongside"' "$tmp/main.json" \
  && echo "ok: memory-bound case measured against the bandwidth beside it" \
  || { echo "FAIL: no dram_read_gbs_alongside for the memory-bound case"; fails=$((fails + 1)); }
# Each repetition has its own pair of reads and its own fraction; the median aggregate holds the median fraction.
if out=$(python3 - "$tmp/main.json" <<'PY' 2>&1
import json, statistics, sys
b = [e for e in json.load(open(sys.argv[1]))["benchmarks"] if e.get("descriptor") == "gemm:m1n512k256:fp32"]
reps = [e for e in b if e["run_type"] == "iteration"]
assert len(reps) == 3, len(reps)
fr = []
for e in reps:
    a = e["dram_read_gbs_alongside"]
    assert a["before"] > 0 and a["after"] > 0 and abs(a["mean"] - (a["before"] + a["after"]) / 2) < 1e-9 * a["mean"], a
    want = e["bytes_per_iteration"] / (e["real_time"] * 1e-3) / (a["mean"] * 1e9)
    assert abs(e["roofline_fraction_alongside"] - want) < 1e-6 * want, (e["roofline_fraction_alongside"], want)
    fr.append(e["roofline_fraction_alongside"])
    # The fastest region is never slower than all regions together: best read >= sustained read.
    assert a["best_before"] >= a["before"] and a["best_after"] >= a["after"], a
    assert e["roofline_fraction_alongside_best"] <= e["roofline_fraction_alongside"], e
assert len({e["dram_read_gbs_alongside"]["before"] for e in reps}) == 3, "one read shared by the repetitions"
med = [e for e in b if e.get("aggregate_name") == "median"][0]
assert abs(med["roofline_fraction_alongside"] - statistics.median(fr)) < 1e-12, (med["roofline_fraction_alongside"], fr)
PY
); then echo "ok: each repetition paired with its own DRAM reads; median fraction stored"
else echo "FAIL: paired alongside fractions: $out"; fails=$((fails + 1)); fi
if [ -x /usr/bin/python3 ] && [ -f /usr/share/benchmark/compare.py ]; then
  /usr/bin/python3 /usr/share/benchmark/compare.py benchmarks "$tmp/main.json" "$tmp/main.json" >/dev/null 2>&1 \
    && echo "ok: compare.py reads the main job's file (estimates, alongside fields)" \
    || { echo "FAIL: compare.py rejected the main job's file"; fails=$((fails + 1)); }
fi
grep -q '"estimates"' "$tmp/main.json" && echo "ok: estimates stored in the results file" || { echo "FAIL: no estimates in main.json"; fails=$((fails + 1)); }
[ -s "$tmp/main.html" ] && [ -s "$tmp/main.md" ] && echo "ok: reports written" || { echo "FAIL: reports missing"; fails=$((fails + 1)); }

echo "e2e cli: $fails failure(s)"
[ "$fails" -eq 0 ]
