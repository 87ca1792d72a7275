// A results file read for comparison: per case (matched by Google Benchmark's run_name) the values of its
// repetitions, plus the facts about how it was measured that decide whether two files are comparable.
// Reads infermark results (context.infermark) and plain Google Benchmark JSON (no fingerprint then).
#pragma once
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace infermark {

// What the values of a file measure.
enum class metric_tier {
  time,       // wall-clock seconds per iteration (Google Benchmark real_time)
  callgrind,  // instructions per kernel run under callgrind (deterministic)
};
const char* to_string(metric_tier t);

struct case_samples {
  std::string name;                // run_name ("<descriptor>/<impl>/<backend>/<threads>" for infermark)
  std::vector<double> values;      // one per repetition: seconds, or instructions
  int declared_repetitions = 0;    // the entries' "repetitions" field (0 = not given)
  bool aggregates_only = false;    // only aggregate entries (mean/median/stddev): no repetitions to test
  std::string repro;               // the infermark repro command when recorded
};

struct results_set {
  std::string label;                        // the file name, for messages
  metric_tier tier = metric_tier::time;
  bool infermark = false;                   // context.infermark present
  std::optional<std::string> fingerprint;   // context.infermark.fingerprint
  nlohmann::json context;                   // the whole context
  std::vector<case_samples> cases;          // in file order
  std::vector<std::string> notes;           // entries skipped and why

  const case_samples* find(const std::string& name) const;
  // Short facts for noise control; "unknown" when the file does not record them.
  std::string pinning() const;      // "core (applied on N cpus)", "none", ...
  std::string repetitions() const;  // "10", "3..5" when cases differ, "unknown"
  std::string fact(const char* key) const;  // a string/number field of context.infermark, or "unknown"
  std::string suite() const;
};

// Throws std::runtime_error naming the file and what is missing (no "benchmarks" array, an entry without a
// name or time, an unknown time unit).
results_set read_results(const nlohmann::json& doc, const std::string& label);
results_set read_results_file(const std::filesystem::path& path);

}  // namespace infermark
