// Results files: Google Benchmark's JSON format (so libbenchmark-tools' compare.py reads them unchanged)
// with infermark's context and per-entry fields added. Written atomically.
#pragma once
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace infermark {

// Build facts: version, git revision, compiler, flags, build type, sanitizer.
nlohmann::json build_info();

// Throws std::invalid_argument naming the path when `path` cannot be created or written (its directory
// is missing or not writable, or it is a directory). Leaves nothing behind.
void check_writable(const std::filesystem::path& path);

// Writes `j` to a temporary file beside `path`, flushes it to disk and renames it over `path`, so a
// reader (or a Ctrl-C) never sees a half-written file. Throws std::runtime_error naming the path.
void write_json_atomically(const std::filesystem::path& path, const nlohmann::json& j);

// Reads a results file; throws std::runtime_error naming the file and what is wrong.
nlohmann::json read_json_file(const std::filesystem::path& path);

// Seconds per unit of a results entry's "time_unit" (Google Benchmark's ns, us, ms, s); nullopt for
// anything else (callers name the entry and the valid choices).
std::optional<double> time_unit_seconds(std::string_view unit);

// A results entry's DRAM read bandwidth measured beside the case (`dram_read_gbs_alongside.mean`, GB/s),
// present for cases that were memory-bound on the probe's roofline; nullopt otherwise.
std::optional<double> alongside_read_gbs(const nlohmann::json& entry);

// The default results directory: $INFERMARK_RESULTS_DIR, else <source tree>/results.
std::filesystem::path default_results_dir();

}  // namespace infermark
