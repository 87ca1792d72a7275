// Comparing two results files case by case (infermark compare).
//
// Time tier, per case (matched by run_name), over the repetitions of each side:
//   - ratio = new/base time as exp(Hodges-Lehmann shift of log times), with its distribution-free CI;
//   - a two-sided Mann-Whitney U p-value, adjusted for the number of compared cases (Holm by default);
//   - a noise preflight: the coefficient of variation of each side must not exceed max_cv;
//   - verdict: regressed   p_adj < alpha and the whole CI >= 1 + threshold;
//              improved    p_adj < alpha and the whole CI <= 1 / (1 + threshold);
//              unchanged   the whole CI inside (1 / (1 + threshold), 1 + threshold);
//              inconclusive otherwise (too few repetitions, too noisy, CI straddling the threshold, or
//                          beyond it without significance after the correction).
// Callgrind tier (instruction counts, deterministic): ratio of medians against the threshold, no test.
// Exit code: 1 if any case regressed, else 3 if any is inconclusive, else 0.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/compare/results_set.hpp"

namespace infermark {

enum class correction { holm, benjamini_hochberg, none };
correction parse_correction(const std::string& s);  // holm | bh | none
const char* to_string(correction c);

struct compare_options {
  double threshold = 0.05;               // relative change that matters (0.05 = 5%)
  double alpha = 0.05;                   // significance level after the correction
  double max_cv = 0.10;                  // noise preflight: coefficient of variation above this = inconclusive
  correction corr = correction::holm;
  bool allow_different_machines = false;
};

enum class verdict { improved, regressed, unchanged, inconclusive, only_base, only_new };
const char* to_string(verdict v);

struct case_comparison {
  std::string name;
  verdict v = verdict::inconclusive;
  std::string reason;                    // why this verdict, in words
  std::vector<double> base, next;        // the repetitions (seconds or instructions)
  double base_median = 0, new_median = 0;
  double ratio = 0;                      // new / base (time or instructions): > 1 is slower
  double ratio_lo = 0, ratio_hi = 0;     // CI of the ratio (time tier; equal to ratio for callgrind)
  bool ci_available = false;
  double ci_confidence = 0;              // achieved coverage of the CI
  double p = 1, p_adjusted = 1;          // Mann-Whitney (time tier)
  bool p_exact = false;
  double cv_base = 0, cv_new = 0;        // coefficients of variation
};

struct comparison {
  metric_tier tier = metric_tier::time;
  compare_options opt;
  std::string base_label, new_label;
  std::string base_fingerprint, new_fingerprint;  // "unknown" for plain Google Benchmark files
  bool different_machines = false;                // compared although fingerprints differ
  std::vector<std::string> warnings;              // noise-control differences, unknown fingerprints, ...
  std::vector<std::pair<std::string, std::pair<std::string, std::string>>> facts;  // name -> (base, new)
  std::vector<case_comparison> cases;             // base order, then cases only in the new file
  int count(verdict v) const;
  int exit_code() const;                          // 0, 1 (regression) or 3 (inconclusive)
  std::string summary() const;                    // one line
};

// Throws std::invalid_argument when the fingerprints differ (unless allowed), when the files measure
// different things (time vs callgrind), or when they have no case in common.
comparison compare_results(const results_set& base, const results_set& next, const compare_options& opt);

std::string render_table(const comparison& c);
std::string render_markdown(const comparison& c);
nlohmann::json to_json(const comparison& c);

// Exports of the new side: Bencher Metric Format (measure "latency" in ns, or "instructions"; value =
// median, lower/upper = min/max of the repetitions) and github-action-benchmark's
// "customSmallerIsBetter" array ({name, unit, value, range, extra}).
nlohmann::json to_bmf(const comparison& c);
nlohmann::json to_github_benchmark(const comparison& c);

// Parses "5%" or "0.05" (a fraction below 1); `what` names the flag in the error.
double parse_fraction(const std::string& s, const char* what);

}  // namespace infermark
