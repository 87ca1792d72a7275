// Paired A/B mode: build a base revision in its own git worktree and build directory, then run the base
// and head binaries alternately on this machine (rounds in ABBA order: AB, BA, AB, ...), so slow drifts
// of the machine (thermal, other jobs) hit both sides alike. Each side's repetitions from all rounds are
// merged into one results file, which `compare` then tests.
#pragma once
#include <filesystem>
#include <iosfwd>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace infermark {

struct ab_options {
  std::string base_rev;                   // commit, branch or tag
  std::string suite = "ci";               // used when `cases` is empty
  std::vector<std::string> cases;         // descriptors instead of a suite
  int rounds = 4;                         // base and head each run once per round
  int repetitions = 5;                    // per run (so rounds * repetitions per side)
  double min_time = 0.05;                 // seconds per repetition
  std::vector<std::string> run_args;      // extra arguments for every `infermark run`
  std::filesystem::path work_dir;         // worktree, build logs, per-round results (default <repo>/build/ab)
  std::filesystem::path repo;             // the git repository (default: the source tree of this binary)
  std::filesystem::path base_binary;      // use this base binary instead of building base_rev
  std::filesystem::path head_binary;      // default: this executable
  int jobs = 2;                           // build parallelism
  bool callgrind = false;                 // count instructions instead of timing (rounds unused)
  std::string command_line;
};

struct ab_result {
  std::filesystem::path base_file, head_file;  // merged results written under work_dir
  nlohmann::json base, head;
};

// Resolves `rev` to a full commit hash in `repo`; throws std::invalid_argument when it does not exist.
std::string resolve_revision(const std::filesystem::path& repo, const std::string& rev);

// Checks out `rev` in <work_dir>/base-<hash12> (a detached git worktree, reused when already there),
// configures it (cmake --preset release when the revision has presets, else Release + Ninja) into the
// worktree's own build/release and builds the infermark target. Returns the binary. Throws
// std::runtime_error with the log's tail when a step fails.
std::filesystem::path build_revision(const std::filesystem::path& repo, const std::string& rev,
                                     const std::filesystem::path& work_dir, int jobs, std::ostream& progress);

// Merges the results of several runs of one binary: every iteration entry kept (aggregates dropped, they
// are per run), repetition_index renumbered, repetitions = the merged count; the first run's context with
// context.infermark.ab = `ab_info`. Throws std::invalid_argument for an empty list.
nlohmann::json merge_runs(const std::vector<nlohmann::json>& runs, const nlohmann::json& ab_info);

// The whole A/B procedure; writes base.json and head.json under work_dir.
ab_result run_ab(const ab_options& opt, std::ostream& progress);

}  // namespace infermark
