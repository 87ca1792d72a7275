// Stored baselines: results/baselines/<fingerprint>/<suite>.json (callgrind counts:
// <suite>.callgrind.json). One file per machine and suite; `infermark baseline update` replaces it
// atomically, `infermark compare --baseline NEW.json` compares against the one for this machine.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/compare/results_set.hpp"

namespace infermark {

// The file-name key of a suite label: quick/full/ci as is, "--case" -> "cases", a suite file path -> its
// stem; characters outside [A-Za-z0-9._-] become '_'.
std::string suite_key(const std::string& suite_label);

// <results_dir>/baselines/<fingerprint>/<suite_key>[.callgrind].json. Throws std::invalid_argument when
// the fingerprint is not a plain token.
std::filesystem::path baseline_path(const std::filesystem::path& results_dir, const std::string& fingerprint,
                                    const std::string& suite_key, metric_tier tier);

struct baseline_update {
  std::filesystem::path path;
  std::vector<std::string> warnings;  // e.g. too few repetitions to ever give a verdict
  bool replaced = false;              // a previous baseline was overwritten
};

// Validates `doc` (an infermark results file with a fingerprint, not interrupted, with timed or counted
// cases) and writes it atomically to its baseline path. Throws std::invalid_argument saying what is wrong.
baseline_update update_baseline(const nlohmann::json& doc, const std::string& label,
                                const std::filesystem::path& results_dir);

struct baseline_info {
  std::filesystem::path path;
  std::string fingerprint, suite, tier, date, git_revision, repetitions;
  int cases = 0;
};
// Every stored baseline, sorted by fingerprint then suite; unreadable files are listed with their error in
// `git_revision`.
std::vector<baseline_info> list_baselines(const std::filesystem::path& results_dir);

}  // namespace infermark
