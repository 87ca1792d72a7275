// Plausibility of the host roofline probe (issue 2): on the same machine and thread count,
// - the probe's fp32 peak must not be below what OpenBLAS cblas_sgemm or oneDNN dnnl_sgemm reach on a
//   large square problem (a library cannot beat the hardware ceiling), and
// - the probe's DRAM read loop must not be below a plain STREAM triad (OpenMP parallel for over three
//   fp64 arrays, each >= 4x the last-level cache, best of STREAM's 10 passes, 3 x 8 bytes counted per
//   element). Both run alternately (dram_rounds times, best of each side): on a shared host the DRAM
//   bandwidth moves with the neighbours' load, so figures taken at different times do not compare. The
//   report also gives the stored probe figure (probe_read_stored_gbs).
// `infermark probe --check` prints the report. The libraries are optional (INFERMARK_HAVE_OPENBLAS,
// INFERMARK_HAVE_ONEDNN); a library that is not built is reported as skipped.
#pragma once
#include <cstdint>
#include <functional>

#include <nlohmann/json.hpp>

#include "bench/probe/probe.hpp"

namespace infermark {

struct plausibility_options {
  std::int64_t gemm_n = 2048;  // square sgemm size M = N = K; 2 n^3 FLOPs per call
  int gemm_reps = 3;           // timed calls per library after one warm-up call; the fastest counts
  int stream_passes = 10;      // STREAM's NTIMES; the first pass is not counted, as in STREAM
  int dram_rounds = 3;         // probe read loop and STREAM alternated this many times; best of each
  double read_seconds = 0.25;  // per probe read measurement
  // When the memory system, not the cores, is the limit (a loaded host), a read-only loop and STREAM's
  // triad (whose 3 x 8 counted bytes per element are exactly its read traffic) meet the same read
  // ceiling, and their best-of figures differ only by noise (measured here: within 3%). The check
  // passes when the probe is at least (1 - dram_tolerance) x STREAM; an under-measuring probe (the 4 KiB
  // page walk cost ~30%) still fails.
  double dram_tolerance = 0.05;
  // The read loop under test: measure_dram_read_now (tests put a broken loop here).
  std::function<double(const backend&, double seconds)> read_loop = measure_dram_read_now;
};

struct plausibility_result {
  bool ok = false;             // every check that could run passed
  // threads, sgemm{n, flops_per_call, peers[{library, gflops, verified, ...}], best}, stream_triad{gbs,
  // array_bytes, rounds[{probe_read_gbs, stream_triad_gbs}], ...}, probe_read_alongside_gbs, probe_read_stored_gbs, checks[{name, checked, probe, reference, ratio, ok, reason}], ok.
  // The OpenBLAS entry names the core type it ran (openblas_get_corename), its build config and the
  // OPENBLAS_CORETYPE environment variable (null when unset).
  nlohmann::json report;
};

// Measures the peers with probe.threads threads and compares them with `probe`. Throws
// std::invalid_argument for gemm_n < 64, gemm_reps < 1, stream_passes < 2 or a probe whose thread count
// this process cannot run; std::runtime_error when a library returns a wrong product.
plausibility_result check_probe_plausibility(const probe_result& probe, const plausibility_options& opt = {});

}  // namespace infermark
