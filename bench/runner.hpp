// The driver (benchdnn style): for each case, build it, run it once, verify it against the reference,
// and in performance mode time it with Google Benchmark. An unverified result is never reported as a
// time. Produces the results JSON (Google Benchmark format + infermark fields).
#pragma once
#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backends/backend.hpp"
#include "bench/probe/probe.hpp"
#include "bench/suites.hpp"

namespace infermark {

enum class run_mode { perf, correctness };

struct run_options {
  std::vector<suite_entry> cases;
  std::string suite_label;          // what the cases came from (suite name, file, or "--case")
  std::string filter;               // ECMAScript regex searched in "<descriptor>/<impl>"; "" = all
  std::string impl;                 // overrides every entry's implementation when not empty
  backend_config be;
  run_mode mode = run_mode::perf;
  int repetitions = 1;
  double min_time_s = 0.1;          // Google Benchmark's minimum time per repetition
  std::uint64_t seed = 1;
  std::filesystem::path out;        // results file; empty = none
  bool progress = true;             // progress lines on stderr
  const probe_result* probe = nullptr;  // host ceilings for the roofline fraction; nullptr = not shown
  double alongside_s = 0.1;         // DRAM read measured this long before and after each repetition of a memory-bound case; 0 = not
  std::string command_line;         // recorded in the context
};

struct run_outcome {
  int exit_code = 0;                // 0 all verified, 1 a verification failed, 2 a case was refused, 130 interrupted
  int verified = 0, failed = 0, refused = 0, timed = 0;
  nlohmann::json results;           // the whole results document
};

// Validates the options (regex, output path) first: throws std::invalid_argument before running anything.
run_outcome run_cases(const run_options& opt, std::ostream& out, std::ostream& err);

// The one-line command that reproduces a case.
std::string repro_command(const std::string& descriptor, const std::string& impl, const backend_config& be,
                          run_mode mode);

}  // namespace infermark
