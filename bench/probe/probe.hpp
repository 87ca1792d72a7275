// Host roofline probe: peak FLOP/s per dtype and memory bandwidth, cached under results/ by fingerprint.
#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace infermark {

struct probe_peaks {
  std::optional<double> fp32;  // GFLOP/s, FMA = 2 FLOPs
  std::optional<double> bf16;  // GFLOP/s of bf16 dot products with fp32 accumulation; nullopt: unsupported
  std::optional<double> int8;  // GOP/s of int8 dot products with int32 accumulation; nullopt: unsupported
};

struct cache_bandwidth {
  int level = 0;
  std::uint64_t size_bytes = 0;        // working set used
  double read_gbs = 0;                 // all threads
};

struct probe_result {
  std::string fingerprint;             // short hash of the fields below
  nlohmann::json fingerprint_fields;   // cpu model, cores, pus, isa, topology summary, compiler
  std::vector<std::string> isa;        // ISA extensions detected
  nlohmann::json isa_used;             // per measurement, the instruction path used, e.g. {"fp32":"avx512 vfmadd231ps"}
  int threads = 0;                     // threads used for the all-core figures
  probe_peaks peak_gflops_1core;
  probe_peaks peak_gflops;             // all cores
  double read_gbs = 0;                 // DRAM read, working set >= 4x LLC, all threads
  double triad_gbs = 0;                // DRAM triad (a = b + s*c), same working set, counted as 3 arrays
  std::uint64_t dram_working_set_bytes = 0;
  std::vector<cache_bandwidth> caches; // per cache level, working set inside that level
  std::string measured_at;             // ISO-8601 UTC

  // JSON fields: fingerprint, isa, isa_used, threads, peak_gflops{fp32,bf16,int8} (null when
  // unsupported), peak_gflops_1core{...}, bandwidth_gbs{read,triad}, dram_working_set_bytes, caches,
  // fingerprint_fields, measured_at.
  nlohmann::json to_json() const;
  static probe_result from_json(const nlohmann::json& j);  // throws std::runtime_error on bad input

  // Attainable peak for `dtype_name` ("fp32","bf16","int8","fp8") with `threads` workers:
  // single-core peak x threads, capped by the all-core peak; nullopt when unsupported.
  std::optional<double> peak_for(const std::string& dtype_name, int threads) const;
};

// The machine fingerprint (CPU model, cores, PUs, ISA, topology, compiler) and its short hash.
nlohmann::json fingerprint_fields();
std::string machine_fingerprint();

struct probe_options {
  int threads = 0;          // 0: all available PUs
  double seconds_per_test = 0.25;
};

// Measures now.
probe_result measure_probe(const probe_options& opt);
// Returns the cached result for this machine from `results_dir`/probe-<fingerprint>.json, or measures
// and writes it (atomically) when missing, unreadable or `refresh`.
probe_result load_or_measure_probe(const std::filesystem::path& results_dir, bool refresh,
                                   const probe_options& opt = {});

}  // namespace infermark
