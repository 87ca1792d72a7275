// `infermark compare`: the CI regression gate. Compares two results files (or a results file with the
// stored baseline, or a base revision built and run interleaved with this build, or callgrind instruction
// counts) and exits 0 (no regression), 1 (regression), 3 (inconclusive) or 2 (bad input).
#include <fmt/chrono.h>
#include <fmt/format.h>

#include <chrono>
#include <iostream>

#include "bench/command.hpp"
#include "bench/compare/ab.hpp"
#include "bench/compare/baseline.hpp"
#include "bench/compare/callgrind.hpp"
#include "bench/compare/compare.hpp"
#include "bench/compare/process.hpp"
#include "bench/probe/probe.hpp"
#include "bench/results.hpp"

namespace infermark {
namespace {

struct compare_flags {
  std::vector<std::string> files;
  std::string threshold, alpha = "0.05", max_cv = "10%", format = "table", correction = "holm";
  bool allow_different_machines = false, baseline = false, callgrind = false;
  std::string bmf, github_benchmark, ab, suite, out, impl, ab_dir, base_binary;
  std::vector<std::string> cases, run_args;
  int rounds = 4, repetitions = 5, jobs = 2;
  double min_time = 0.05;
};

std::string utc_stamp() {
  return fmt::format("{:%Y%m%d-%H%M%S}", fmt::gmtime(std::chrono::system_clock::to_time_t(std::chrono::system_clock::now())));
}

results_set stored_baseline(const global_options& g, const std::string& suite, metric_tier tier) {
  const std::string fp = machine_fingerprint();
  const auto path = baseline_path(g.results_dir, fp, suite_key(suite), tier);
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    throw std::invalid_argument(fmt::format("no {} baseline for suite '{}' on this machine (fingerprint {}): '{}' does "
                                            "not exist; record one with 'infermark baseline update RESULTS.json' "
                                            "(see 'infermark baseline show')", to_string(tier), suite, fp,
                                            path.string()));
  return read_results_file(path);
}

}  // namespace

command compare_command() {
  return {"compare", "compare results with a statistical verdict per case (exit 0 ok, 1 regression, 3 inconclusive)",
          [](CLI::App& sub, const global_options& g) -> std::function<int()> {
            auto f = std::make_shared<compare_flags>();
            sub.add_option("files", f->files, "BASE.json NEW.json (one file with --baseline or --callgrind)");
            sub.add_option("--threshold", f->threshold, "smallest change that matters, e.g. 5% or 0.05 (default 5%; 2% for callgrind counts)");
            sub.add_option("--alpha", f->alpha, "significance level after the multiple-comparison correction")->capture_default_str();
            sub.add_option("--max-cv", f->max_cv, "noise preflight: a side with a larger coefficient of variation is inconclusive")->capture_default_str();
            sub.add_option("--correction", f->correction, "multiple-comparison correction: holm | bh | none")->capture_default_str();
            sub.add_option("--format", f->format, "table | md | json")->capture_default_str();
            sub.add_flag("--allow-different-machines", f->allow_different_machines, "compare results whose machine fingerprints differ (and say so)");
            sub.add_option("--bmf", f->bmf, "also write the new results as Bencher Metric Format JSON to FILE");
            sub.add_option("--github-benchmark", f->github_benchmark, "also write the new results as github-action-benchmark 'customSmallerIsBetter' JSON to FILE");
            sub.add_flag("--baseline", f->baseline, "compare NEW.json with the stored baseline for this machine and its suite");
            sub.add_option("--suite", f->suite, "suite for --ab / --callgrind (default ci), or the baseline to use with --baseline");
            // One value per occurrence, so `--case D BASE.json` leaves BASE.json to the positionals.
            sub.add_option("--case", f->cases, "descriptor (repeatable) for --ab / --callgrind instead of a suite")->allow_extra_args(false);
            sub.add_option("--ab", f->ab, "A/B mode: build this base revision in a git worktree and run it interleaved with this build");
            sub.add_option("--rounds", f->rounds, "A/B rounds (each runs base and head once, ABBA order)")->capture_default_str();
            sub.add_option("--repetitions", f->repetitions, "A/B repetitions per run")->capture_default_str();
            sub.add_option("--min-time", f->min_time, "A/B minimum seconds per repetition")->capture_default_str();
            sub.add_option("--run-arg", f->run_args, "A/B: extra argument for every 'infermark run' (repeatable, e.g. --run-arg=--threads=1)")
                ->allow_extra_args(false);
            sub.add_option("--ab-dir", f->ab_dir, "A/B work directory (default <source tree>/build/ab)");
            sub.add_option("--base-binary", f->base_binary, "A/B: use this infermark binary as the base instead of building --ab");
            sub.add_option("--jobs", f->jobs, "A/B: build jobs")->capture_default_str();
            sub.add_flag("--callgrind", f->callgrind, "deterministic tier: count instructions per case under callgrind (AVX2 cap)");
            sub.add_option("--impl", f->impl, "--callgrind: implementation to count (default: the first that accepts)");
            sub.add_option("--out", f->out, "--callgrind: where to write the counts (default <results-dir>/callgrind-<UTC time>.json)");
            return [f, &g, &sub] {
              compare_options opt;
              try {
                std::size_t used = 0;
                opt.alpha = std::stod(f->alpha, &used);
                if (used != f->alpha.size()) opt.alpha = -1;
              } catch (const std::exception&) {
                opt.alpha = -1;
              }
              if (!(opt.alpha > 0 && opt.alpha < 1))
                throw std::invalid_argument(fmt::format("--alpha {} is out of range; it must be in (0, 1)", f->alpha));
              opt.max_cv = parse_fraction(f->max_cv, "--max-cv");
              opt.corr = parse_correction(f->correction);
              opt.allow_different_machines = f->allow_different_machines;
              if (f->format != "table" && f->format != "md" && f->format != "json")
                throw std::invalid_argument(fmt::format("unknown format '{}'; valid choices: table, md, json", f->format));
              const bool threshold_given = sub.count("--threshold") != 0;
              if (threshold_given) opt.threshold = parse_fraction(f->threshold, "--threshold");
              for (const auto& p : {f->bmf, f->github_benchmark})
                if (!p.empty()) check_writable(p);
              const int modes = (f->baseline ? 1 : 0) + (!f->ab.empty() || !f->base_binary.empty() ? 1 : 0);
              if (modes > 1) throw std::invalid_argument("give either --baseline or --ab, not both");
              if (!f->suite.empty() && !f->cases.empty()) throw std::invalid_argument("give either --suite or --case, not both");

              std::optional<results_set> base, next;
              if (!f->ab.empty() || !f->base_binary.empty()) {
                if (!f->files.empty())
                  throw std::invalid_argument(fmt::format("--ab runs both sides itself; unexpected file argument '{}'", f->files[0]));
                ab_options ao;
                ao.base_rev = f->ab.empty() ? "(prebuilt)" : f->ab;
                ao.suite = f->suite.empty() ? "ci" : f->suite;
                ao.cases = f->cases;
                ao.rounds = f->rounds;
                ao.repetitions = f->repetitions;
                ao.min_time = f->min_time;
                ao.run_args = f->run_args;
                ao.repo = INFERMARK_SOURCE_DIR;
                ao.work_dir = f->ab_dir.empty() ? std::filesystem::path(INFERMARK_SOURCE_DIR) / "build" / "ab" : std::filesystem::path(f->ab_dir);
                ao.base_binary = f->base_binary;
                ao.jobs = f->jobs;
                ao.callgrind = f->callgrind;
                ao.command_line = g.command_line;
                const auto res = run_ab(ao, std::cerr);
                std::cerr << fmt::format("[A/B] merged results: {} and {}\n", res.base_file.string(), res.head_file.string());
                base = read_results(res.base, res.base_file.string());
                next = read_results(res.head, res.head_file.string());
                if (!f->ab.empty()) base->label = fmt::format("{} ({})", f->ab, res.base_file.string());
                // Both sides ran here by construction; the base binary computes its fingerprint with its own
                // (possibly older) code, which may differ.
                if (base->fingerprint && next->fingerprint && *base->fingerprint != *next->fingerprint) {
                  base->notes.push_back(fmt::format("A/B: the base binary reports fingerprint {}, the head {}; both ran on "
                                                    "this machine", *base->fingerprint, *next->fingerprint));
                  base->fingerprint = next->fingerprint;
                }
              } else if (f->callgrind) {
                if (f->files.size() > 1 || (f->baseline && !f->files.empty()))
                  throw std::invalid_argument("--callgrind takes at most one file (the base counts to compare with), and "
                                              "none with --baseline");
                callgrind_options co;
                co.binary = self_executable();
                co.suite = f->suite.empty() ? "ci" : f->suite;
                co.cases = f->cases;
                co.impl = f->impl;
                co.command_line = g.command_line;
                const auto out = f->out.empty() ? std::filesystem::path(g.results_dir) / fmt::format("callgrind-{}.json", utc_stamp())
                                                : std::filesystem::path(f->out);
                check_writable(out);
                co.work_dir = out.parent_path().empty() ? std::filesystem::path(".callgrind-work") : out.parent_path() / ".callgrind-work";
                // Read the base first: a bad base file fails before the slow measurement.
                if (f->files.size() == 1) base = read_results_file(f->files[0]);
                const auto doc = measure_callgrind(co, std::cerr);
                write_json_atomically(out, doc);
                std::filesystem::remove_all(co.work_dir);
                std::cerr << "callgrind counts: " << out.string() << "\n";
                next = read_results(doc, out.string());
                if (f->baseline) base = stored_baseline(g, next->suite(), metric_tier::callgrind);
                if (!base) return 0;
              } else if (f->baseline) {
                if (f->files.size() != 1)
                  throw std::invalid_argument(fmt::format("--baseline takes exactly one file (NEW.json), got {}", f->files.size()));
                next = read_results_file(f->files[0]);
                base = stored_baseline(g, f->suite.empty() ? next->suite() : f->suite, next->tier);
              } else {
                if (f->files.size() != 2)
                  throw std::invalid_argument(fmt::format("compare needs two files, BASE.json NEW.json (got {}); or use "
                                                          "--baseline NEW.json, --ab REV, or --callgrind", f->files.size()));
                base = read_results_file(f->files[0]);
                next = read_results_file(f->files[1]);
              }
              if (!threshold_given && base->tier == metric_tier::callgrind) opt.threshold = 0.02;

              const comparison c = compare_results(*base, *next, opt);
              if (f->format == "table") std::cout << render_table(c);
              else if (f->format == "md") std::cout << render_markdown(c);
              else std::cout << to_json(c).dump(2) << "\n";
              if (!f->bmf.empty()) write_json_atomically(f->bmf, to_bmf(c));
              if (!f->github_benchmark.empty()) write_json_atomically(f->github_benchmark, to_github_benchmark(c));
              return c.exit_code();
            };
          }};
}

}  // namespace infermark
