// The deterministic tier: instructions executed by one run() of each case under Valgrind's callgrind,
// with the ISA capped to AVX2 (Valgrind cannot execute AVX-512) and the serial backend on one thread.
// Each case is one process: `infermark run --mode correctness --case D` (build, run once, verify), and
// callgrind counts only inside kernel_case::run (--collect-atstart=no --toggle-collect=<pattern>), so
// data set-up and the reference check are not counted: a fixed iteration count of exactly one.
// Results are written in the results-file shape with context.infermark.tier = "callgrind" and an
// "instructions" field per entry.
#pragma once
#include <filesystem>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace infermark {

// Functions whose calls are counted: every override of kernel_case::run(const backend&), as callgrind
// prints it demangled.
inline constexpr const char* kCallgrindToggle = "*::run(infermark::backend const&)";

struct callgrind_options {
  std::filesystem::path binary;       // the infermark executable to measure
  std::string suite = "ci";           // used when `cases` is empty
  std::vector<std::string> cases;     // descriptors
  std::string impl;                   // implementation for every case ("" = the first that accepts)
  std::filesystem::path work_dir;     // callgrind outputs and logs (created)
  std::string valgrind = "valgrind";
  std::string command_line;           // recorded in the context
};

// "valgrind-3.19.0", or nullopt when `valgrind` cannot be run.
std::optional<std::string> valgrind_version(const std::string& valgrind = "valgrind");

// The instruction count of a callgrind output file ("totals:" / "summary:" line, first event = Ir).
// Throws std::runtime_error naming the file when it has none.
double callgrind_total(const std::filesystem::path& out_file);

// Measures every case; throws std::runtime_error (with the log's tail) when valgrind is missing, a case
// fails, or the toggle pattern counted nothing.
nlohmann::json measure_callgrind(const callgrind_options& opt, std::ostream& progress);

}  // namespace infermark
