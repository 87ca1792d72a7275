#include "bench/compare/ab.hpp"

#include <fmt/format.h>

#include <fstream>
#include <map>
#include <ostream>
#include <stdexcept>

#include "bench/compare/callgrind.hpp"
#include "bench/compare/process.hpp"
#include "bench/results.hpp"

namespace infermark {
namespace {

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

void step(const std::vector<std::string>& argv, const std::filesystem::path& cwd, const std::filesystem::path& log,
          const std::string& what) {
  {
    std::ofstream l(log, std::ios::app);
    l << "$ " << shell_join(argv) << "\n";
  }
  const int rc = run_process({argv, {}, cwd, log});
  if (rc != 0)
    throw std::runtime_error(fmt::format("{} failed (exit {}): {}\nlog: {}\n{}", what, rc, shell_join(argv),
                                         log.string(), tail_of(log, 20)));
}

}  // namespace

std::string resolve_revision(const std::filesystem::path& repo, const std::string& rev) {
  if (rev.empty() || rev[0] == '-')
    throw std::invalid_argument(fmt::format("revision '{}' is not valid; give a commit, branch or tag (e.g. origin/main)",
                                            rev));
  auto [rc, out] = capture_process({"git", "-C", repo.string(), "rev-parse", "--verify", "--quiet", rev + "^{commit}"});
  out = trim(out);
  if (rc != 0 || out.size() < 40)
    throw std::invalid_argument(fmt::format("revision '{}' does not exist in the git repository '{}' (in a shallow CI "
                                            "clone, fetch it first: git fetch origin <branch>, or checkout with "
                                            "fetch-depth: 0)", rev, repo.string()));
  return out;
}

std::filesystem::path build_revision(const std::filesystem::path& repo, const std::string& rev,
                                     const std::filesystem::path& work_dir, int jobs, std::ostream& progress) {
  const std::string sha = resolve_revision(repo, rev);
  std::filesystem::create_directories(work_dir);
  const auto wt = std::filesystem::absolute(work_dir / ("base-" + sha.substr(0, 12)));
  const auto log = std::filesystem::absolute(work_dir / ("base-" + sha.substr(0, 12) + ".build.log"));
  std::error_code ec;
  bool reuse = false;
  if (std::filesystem::exists(wt, ec)) {
    auto [rc, head] = capture_process({"git", "-C", wt.string(), "rev-parse", "HEAD"});
    reuse = rc == 0 && trim(head) == sha;
    if (!reuse) {
      progress << fmt::format("[A/B] removing stale worktree {}\n", wt.string());
      run_process({{"git", "-C", repo.string(), "worktree", "remove", "--force", wt.string()}, {}, {}, log});
      std::filesystem::remove_all(wt, ec);
    }
  }
  if (!reuse) {
    run_process({{"git", "-C", repo.string(), "worktree", "prune"}, {}, {}, log});
    progress << fmt::format("[A/B] checking out {} ({}) in {}\n", rev, sha.substr(0, 12), wt.string()) << std::flush;
    step({"git", "-C", repo.string(), "worktree", "add", "--detach", wt.string(), sha}, {}, log,
         fmt::format("creating a worktree for '{}'", rev));
  }
  const auto build_dir = wt / "build" / "release";
  if (!std::filesystem::exists(build_dir / "CMakeCache.txt", ec)) {
    progress << fmt::format("[A/B] configuring {} (log: {})\n", rev, log.string()) << std::flush;
    if (std::filesystem::exists(wt / "CMakePresets.json", ec))
      step({"cmake", "--preset", "release", "-DINFERMARK_BUILD_TESTS=OFF"}, wt, log,
           fmt::format("configuring revision '{}'", rev));
    else
      step({"cmake", "-S", wt.string(), "-B", build_dir.string(), "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release",
            "-DINFERMARK_BUILD_TESTS=OFF"},
           wt, log, fmt::format("configuring revision '{}'", rev));
  }
  progress << fmt::format("[A/B] building {} with {} job(s) (log: {})\n", rev, jobs, log.string()) << std::flush;
  step({"cmake", "--build", build_dir.string(), "--target", "infermark", "-j", std::to_string(std::max(1, jobs))}, wt,
       log, fmt::format("building revision '{}'", rev));
  for (const auto& candidate : {build_dir / "infermark", build_dir / "bench" / "infermark"})
    if (std::filesystem::is_regular_file(candidate, ec)) return candidate;
  throw std::runtime_error(fmt::format("built revision '{}' but found no infermark binary under '{}'", rev,
                                       build_dir.string()));
}

nlohmann::json merge_runs(const std::vector<nlohmann::json>& runs, const nlohmann::json& ab_info) {
  if (runs.empty()) throw std::invalid_argument("merge_runs: no runs to merge");
  nlohmann::json merged = {{"context", runs[0].value("context", nlohmann::json::object())},
                           {"benchmarks", nlohmann::json::array()}};
  std::map<std::string, int> count;
  for (const auto& r : runs)
    for (const auto& e : r.at("benchmarks")) {
      if (e.value("run_type", std::string("iteration")) != "iteration") continue;
      auto copy = e;
      const std::string key = e.value("run_name", e.value("name", std::string()));
      copy["repetition_index"] = count[key]++;
      merged["benchmarks"].push_back(std::move(copy));
    }
  for (auto& e : merged["benchmarks"]) e["repetitions"] = count[e.value("run_name", e.value("name", std::string()))];
  merged["context"]["infermark"]["ab"] = ab_info;
  return merged;
}

ab_result run_ab(const ab_options& opt, std::ostream& progress) {
  if (opt.rounds < 1) throw std::invalid_argument(fmt::format("--rounds {} is not valid; use 1 or more", opt.rounds));
  if (opt.repetitions < 1)
    throw std::invalid_argument(fmt::format("--repetitions {} is not valid; use 1 or more", opt.repetitions));
  const auto work = std::filesystem::absolute(opt.work_dir);
  std::filesystem::create_directories(work);
  std::string sha = "(prebuilt)";
  std::filesystem::path base_bin = opt.base_binary;
  if (base_bin.empty()) {
    sha = resolve_revision(opt.repo, opt.base_rev);
    base_bin = build_revision(opt.repo, opt.base_rev, work, opt.jobs, progress);
  } else if (!std::filesystem::is_regular_file(base_bin)) {
    throw std::invalid_argument(fmt::format("--base-binary '{}' is not a file", base_bin.string()));
  }
  const auto head_bin = opt.head_binary.empty() ? self_executable() : opt.head_binary;
  nlohmann::json info = {{"base_rev", opt.base_rev}, {"base_commit", sha}, {"base_binary", base_bin.string()},
                         {"head_binary", head_bin.string()}, {"command", opt.command_line}};
  ab_result res;
  res.base_file = work / "base.json";
  res.head_file = work / "head.json";

  if (opt.callgrind) {
    for (int side = 0; side < 2; ++side) {
      callgrind_options co;
      co.binary = side == 0 ? base_bin : head_bin;
      co.suite = opt.suite;
      co.cases = opt.cases;
      co.work_dir = work / (side == 0 ? "callgrind-base" : "callgrind-head");
      co.command_line = opt.command_line;
      progress << fmt::format("[A/B] counting instructions of the {} binary\n", side == 0 ? "base" : "head");
      auto doc = measure_callgrind(co, progress);
      doc["context"]["infermark"]["ab"] = info;
      (side == 0 ? res.base : res.head) = doc;
    }
  } else {
    info["rounds"] = opt.rounds;
    info["repetitions_per_round"] = opt.repetitions;
    info["order"] = "ABBA (base first in even rounds, head first in odd rounds)";
    std::vector<nlohmann::json> runs[2];
    const auto logs = work / "logs";
    std::filesystem::create_directories(logs);
    for (int r = 0; r < opt.rounds; ++r) {
      for (int k = 0; k < 2; ++k) {
        const int side = (r % 2 == 0) ? k : 1 - k;  // 0 = base (A), 1 = head (B)
        const char* name = side == 0 ? "base" : "head";
        const auto out = work / fmt::format("{}-round{}.json", name, r);
        const auto log = logs / fmt::format("{}-round{}.log", name, r);
        std::filesystem::remove(log);
        std::vector<std::string> argv = {(side == 0 ? base_bin : head_bin).string(), "run", "--no-probe",
                                         "--repetitions", std::to_string(opt.repetitions), "--min-time",
                                         fmt::format("{}", opt.min_time), "--out", out.string()};
        if (opt.cases.empty()) {
          argv.push_back("--suite");
          argv.push_back(opt.suite);
        }
        for (const auto& c : opt.cases) {
          argv.push_back("--case");
          argv.push_back(c);
        }
        argv.insert(argv.end(), opt.run_args.begin(), opt.run_args.end());
        progress << fmt::format("[A/B] round {}/{}: {}\n", r + 1, opt.rounds, name) << std::flush;
        const int rc = run_process({argv, {{"INFERMARK_RESULTS_DIR", (work / "results").string()}}, {}, log});
        if (rc != 0)
          throw std::runtime_error(fmt::format("the {} run of round {} failed (exit {}): {}\nlog: {}\n{}", name, r + 1,
                                               rc, shell_join(argv), log.string(), tail_of(log, 15)));
        runs[side].push_back(read_json_file(out));
      }
    }
    res.base = merge_runs(runs[0], info);
    res.head = merge_runs(runs[1], info);
  }
  write_json_atomically(res.base_file, res.base);
  write_json_atomically(res.head_file, res.head);
  return res;
}

}  // namespace infermark
