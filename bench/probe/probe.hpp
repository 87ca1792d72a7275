// Host roofline probe: peak FLOP/s per dtype and memory bandwidth, cached under results/ by fingerprint.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backends/backend.hpp"

namespace infermark {

struct probe_peaks {
  std::optional<double> fp32;  // GFLOP/s, FMA = 2 FLOPs
  std::optional<double> bf16;  // GFLOP/s of bf16 dot products with fp32 accumulation; nullopt: unsupported
  std::optional<double> int8;  // GOP/s of int8 dot products with int32 accumulation; nullopt: unsupported
};

struct cache_bandwidth {
  int level = 0;
  std::uint64_t size_bytes = 0;        // working set used, all threads together
  double read_gbs = 0;                 // all threads
  std::uint64_t working_set_per_thread_bytes = 0;  // each thread reads its own buffer of this size
  std::uint64_t cache_size_bytes = 0;  // one instance of the cache at this level
};

// Bumped when the measurement method changes; part of the fingerprint, so older cache files are
// re-measured instead of trusted.
inline constexpr int probe_version = 3;  // 2: DRAM buffers on transparent huge pages; 3: bf16/int8 on AVX2

struct probe_result {
  std::string fingerprint;             // short hash of the fields below
  nlohmann::json fingerprint_fields;   // cpu model, cores, pus, isa, topology summary, compiler
  std::vector<std::string> isa;        // ISA extensions detected
  std::string isa_level;               // level the probe dispatched to (effective_isa(), under the cap)
  nlohmann::json isa_used;             // per measurement, the instruction path used, e.g. {"fp32":"avx512 vfmadd231ps"}
  int threads = 0;                     // threads used for the all-core figures
  nlohmann::json pinning;              // {"requested","applied","cpus","message"} of the all-core run
  probe_peaks peak_gflops_1core;
  probe_peaks peak_gflops;             // all cores
  // Bandwidths count 1e9 bytes/s of fp64 elements, STREAM's convention: read counts 8 bytes per
  // element read; triad (a = b + s*c) counts 3 x 8 bytes per element (write-allocate traffic of the
  // regular stores is not counted, as in STREAM).
  double read_gbs = 0;                 // DRAM read, working set >= 4x LLC, all threads
  double triad_gbs = 0;                // DRAM triad (a = b + s*c), 3 arrays totalling >= 4x LLC
  std::uint64_t dram_working_set_bytes = 0;
  double dram_huge_page_share = -1;    // share of the read array backed by huge pages; -1 unknown
  std::uint64_t memory_bytes = 0;      // installed memory (MemTotal); 0 unknown
  std::vector<cache_bandwidth> caches; // per cache level, working set inside that level
  std::string measured_at;             // ISO-8601 UTC

  // JSON fields: fingerprint, isa, isa_level, isa_used, threads, pinning, peak_gflops{fp32,bf16,int8} (null when
  // unsupported), peak_gflops_1core{...}, bandwidth_gbs{read,triad}, dram_working_set_bytes, dram_huge_page_share (null: unknown), memory_bytes (null: unknown), caches,
  // fingerprint_fields, measured_at.
  nlohmann::json to_json() const;
  static probe_result from_json(const nlohmann::json& j);  // throws std::runtime_error on bad input

  // Attainable peak for `dtype_name` ("fp32","bf16","int8","fp8") with `threads` workers:
  // single-core peak x threads, capped by the all-core peak; nullopt when unsupported. "fp8" has no
  // x86 dot-product instruction, so fp8 kernels compute in bf16 or fp32 and its peak is the larger of
  // the two. Throws std::invalid_argument for an unknown dtype or threads < 1.
  std::optional<double> peak_for(const std::string& dtype_name, int threads) const;

  // Human-readable summary for `infermark probe --format table`.
  std::string to_table() const;
};

// The machine fingerprint (CPU model, cores, PUs, ISA, topology, compiler) and its short hash.
// fields: probe_version, cpu_model, arch, cores, pus, numa_nodes, isa_detected, isa_level (after the
// INFERMARK_MAX_ISA cap), caches [{level,type,size_bytes,instances}], compiler (+ sanitizer when built
// with one). The hash is FNV-1a 64 of the canonical (key-sorted, compact) JSON dump, as 16 hex digits.
nlohmann::json fingerprint_fields();
std::string fingerprint_hash(const nlohmann::json& fields);
std::string machine_fingerprint();

struct probe_options {
  int threads = 0;          // 0: all available PUs (max_threads()); else 1..max_threads()
  double seconds_per_test = 0.25;  // timed reps per figure (11 figures + calibration and first touch)
};

// Measures now. Throws std::invalid_argument for threads out of range or seconds_per_test <= 0.
probe_result measure_probe(const probe_options& opt);

// The probe's DRAM read figure alone (same loop, same >= 4x LLC working set, same page policy), on the
// caller's backend, taking `seconds`. Memory bandwidth on a shared host moves with the neighbours' load
// (35-60 GB/s within a minute on this project's VMs), so a memory-bound case is also compared with this
// figure measured right beside it. The array is allocated on the first call and kept: later calls cost
// only `seconds`.
double measure_dram_read_now(const backend& be, double seconds);
// Both statistics of one such measurement: the fastest ~2 ms region (the probe's figure, the least
// disturbed) and all regions' bytes over all their time (what a kernel timed over the same window sees).
struct dram_read_beside {
  double best_gbs = 0;
  double sustained_gbs = 0;
};
dram_read_beside measure_dram_read_beside(const backend& be, double seconds);
// Returns the cached result for this machine from `results_dir`/probe-<fingerprint>.json, or measures
// and writes it (atomically) when missing, unreadable or `refresh`.
probe_result load_or_measure_probe(const std::filesystem::path& results_dir, bool refresh,
                                   const probe_options& opt = {});
// Same, with the measuring function given (tests count calls through it). A cached file is used only
// when it parses, its fingerprint is this machine's and its thread count is the one asked for.
probe_result load_or_measure_probe(const std::filesystem::path& results_dir, bool refresh,
                                   const probe_options& opt,
                                   const std::function<probe_result(const probe_options&)>& measure);

// results_dir / "probe-<fingerprint>.json".
std::filesystem::path probe_cache_path(const std::filesystem::path& results_dir, const std::string& fingerprint);
// Reads and validates a probe file; throws std::runtime_error naming the file and the problem.
probe_result read_probe_file(const std::filesystem::path& path);
// Writes atomically: a temporary file in the same directory, fsync, rename, fsync of the directory.
// Creates the directory when missing; throws std::runtime_error naming the path on failure.
void write_probe_file(const std::filesystem::path& path, const probe_result& r);

}  // namespace infermark
