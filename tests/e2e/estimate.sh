#!/usr/bin/env bash
# End-to-end checks of `estimate`, `calibrate` and `profiles`: tables, JSON shape, bad input -> exit 2
# with the valid choices. The host profile is left out (it would measure the probe).
. "$(dirname "$0")/common.bash"
P=h100-sxm,h200,ascend-910c,sunrise-s2,gb200-nvl72,cloudmatrix-384


E="estimate --profiles $P"
expect 0 "h100-sxm          fp8"   -- $E --workload deepseek-v3 --phase decode --batch 128 --context 4096
expect 0 "sunrise-s2        not estimable: memory.bandwidth is unknown (No public specification found.)" -- $E --workload deepseek-v3 --phase decode --batch 8 --context 512
expect 0 "! h100-sxm: does not fit: needs 710 GB per chip, has 80 GB (smallest that fits: --ep 16)" -- $E --workload deepseek-v3 --phase decode --batch 128 --context 4096
expect 0 "* cloudmatrix-384 needs 710 GB per chip at tp 1 ep 1, has 128 GB: estimated at --ep 8" -- $E --workload deepseek-v3 --phase decode --batch 128 --context 4096
expect 0 "cloudmatrix-384   does not fit: needs 710 GB per chip at tp 1 ep 1 attn-dp 1, has 128 GB (smallest that fits: --ep 8)" -- estimate --profiles h100-sxm,cloudmatrix-384 --workload deepseek-v3 --batch 128 --context 4096 --tp 1
expect 0 "per-op overhead NVIDIA: 3.7 us" -- calibrate --out "$tmp/fitted0.json"
expect 0 "cloudmatrix-384 / gb200-nvl72" -- $E --workload deepseek-v3 --phase prefill --batch 4 --context 1024
expect 0 "USD/Mtok"                -- $E --workload llama-2-70b --batch 8 --context 512 --price-kwh 0.1 --subsidy 0.5
expect 0 "relative_per_chip"       -- $E --workload mixtral-8x7b --batch 8 --context 512 --format csv
expect 0 "ln(ep)"                  -- estimate --profiles ascend-910c --workload deepseek-v3 --batch 256 --context 1024 --ep 32 --format json
expect 2 "unknown workload 'gpt-5'; valid choices: deepseek-v2-lite, deepseek-v3, gpt-oss-120b" -- estimate --workload gpt-5 --batch 1 --context 1
expect 2 "unknown phase 'train'; valid choices: decode, prefill" -- estimate --workload deepseek-v3 --phase train --batch 1 --context 1
expect 2 "batch 0 is out of range"  -- estimate --workload deepseek-v3 --batch 0 --context 1
expect 2 "tp 3 does not divide the 128 query heads" -- estimate --workload deepseek-v3 --batch 8 --context 64 --tp 3
expect 2 "unknown profile 'tpu-v5'" -- estimate --profiles h100-sxm,tpu-v5 --workload deepseek-v3 --batch 8 --context 64
expect 2 "unknown mode 'magic'; valid choices: calibrated, portable" -- estimate --profiles h100-sxm --workload deepseek-v3 --batch 8 --context 64 --mode magic
expect 2 "run 'infermark run' first" -- estimate --profiles h100-sxm --workload deepseek-v3 --batch 8 --context 64 --mode portable
expect 2 "unknown dtype 'fp64'"     -- estimate --profiles h100-sxm --workload deepseek-v3 --batch 8 --context 64 --dtype fp64
expect 2 "subsidy 1.5 is out of range" -- estimate --profiles h100-sxm --workload deepseek-v3 --batch 8 --context 64 --price-kwh 0.1 --subsidy 1.5
expect 2 "unknown format 'xml'"     -- estimate --profiles h100-sxm --workload deepseek-v3 --batch 8 --context 64 --format xml

# JSON shape
out=$("$bin" $E --workload qwen3-235b-a22b --batch 16 --context 2048 --format json 2>/dev/null)
if python3 - "$out" <<'PY'
import json, sys
j = json.loads(sys.argv[1])
assert {"workload", "reference", "estimates"} <= j.keys()
need = {"profile", "dtype", "time_s", "tokens_per_s", "relative_per_chip", "tokens_per_joule", "relative_per_watt", "bound", "p10", "p90", "provenance"}
rows = {e["profile"]: e for e in j["estimates"]}
assert need <= rows["h100-sxm"].keys(), need - rows["h100-sxm"].keys()
assert rows["h100-sxm"]["relative_per_chip"] == 1.0
assert "error" in rows["sunrise-s2"]
assert rows["sunrise-s2"]["error"] == "not estimable: memory.bandwidth is unknown (No public specification found.)", rows["sunrise-s2"]["error"]
assert rows["h100-sxm"]["warning"].startswith("does not fit: needs "), rows["h100-sxm"].get("warning")
assert rows["h100-sxm"]["fits"] is False
assert any("per-op overhead: 3.7 us (NVIDIA" in p for p in rows["h100-sxm"]["provenance"])
assert any("assumed for Huawei" in p for p in rows["ascend-910c"]["provenance"])
systems = {s["profile"]: s for s in j["systems"]}
assert systems["cloudmatrix-384"]["parallel"] != "tp 1 ep 1 attn-dp 1", systems
assert rows["h100-sxm"]["p10"] < rows["h100-sxm"]["time_s"] < rows["h100-sxm"]["p90"]
PY
then echo "ok: estimate --format json shape"; else echo "FAIL: estimate JSON shape"; fails=$((fails + 1)); fi

expect 0 "median leave-one-out"    -- calibrate --out "$tmp/fitted.json"
[ -s "$tmp/fitted.json" ] && echo "ok: calibrate wrote its file" || { echo "FAIL: calibrate wrote nothing"; fails=$((fails + 1)); }
expect 2 "does not exist"           -- calibrate --out /nonexistent/dir/fitted.json
expect 0 "cloudmatrix-384"          -- profiles list
expect 0 "[vendor] NVIDIA H100 datasheet" -- profiles show h100-sxm
expect 0 "unknown: No public specification found." -- profiles show sunrise-s2
expect 2 "unknown profile 'tpu-v5'; valid choices: ascend-910b" -- profiles show tpu-v5

# The profile data read from elsewhere (--profiles-dir, INFERMARK_PROFILES_DIR): a copy without one
# system and one model; calibrate's default output goes into the copy.
cp -r "$(dirname "$0")/../../profiles" "$tmp/prof"
rm "$tmp/prof/systems/cloudmatrix-384.toml" "$tmp/prof/models/qwen3-30b-a3b.toml" "$tmp/prof/calibration/fitted.json"
expect 0 "gb200-nvl72"              -- --profiles-dir "$tmp/prof" profiles list
expect 2 "unknown profile 'cloudmatrix-384'; valid choices: ascend-910b" -- --profiles-dir "$tmp/prof" profiles show cloudmatrix-384
INFERMARK_PROFILES_DIR=$tmp/prof expect 2 "unknown profile 'cloudmatrix-384'" -- profiles show cloudmatrix-384
expect 2 "unknown workload 'qwen3-30b-a3b'; valid choices: deepseek-v2-lite, deepseek-v3, gpt-oss-120b, llama-2-70b, mixtral-8x7b, qwen3-235b-a22b" -- --profiles-dir "$tmp/prof" estimate --workload qwen3-30b-a3b --batch 1 --context 1
expect 0 "wrote $tmp/prof/calibration/fitted.json" -- --profiles-dir "$tmp/prof" calibrate
[ -s "$tmp/prof/calibration/fitted.json" ] && echo "ok: calibrate wrote into --profiles-dir" || { echo "FAIL: no fitted.json in --profiles-dir"; fails=$((fails + 1)); }
expect 2 "profiles directory '$tmp/none' does not exist" -- --profiles-dir "$tmp/none" profiles list
mkdir "$tmp/empty"
expect 2 "profiles directory '$tmp/empty' holds no chip profile" -- --profiles-dir "$tmp/empty" profiles list
INFERMARK_PROFILES_DIR=$tmp/empty expect 2 "model directory '$tmp/empty/models' does not exist" -- list workloads

[ $fails = 0 ] && echo "all estimate e2e checks passed" || echo "$fails estimate e2e check(s) failed"
exit $fails
