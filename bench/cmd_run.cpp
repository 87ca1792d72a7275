// `infermark run`: verify and time a suite (or --case descriptors); Google Benchmark JSON out.
#include <fmt/chrono.h>
#include <fmt/format.h>

#include <chrono>
#include <iostream>

#include "bench/command.hpp"
#include "bench/op.hpp"
#include "bench/report/report.hpp"
#include "bench/report/text_file.hpp"
#include "bench/results.hpp"
#include "bench/runner.hpp"

namespace infermark {
namespace {

struct run_flags {
  std::string suite = "quick", filter, impl, backend = "openmp", pin = "none", out, mode = "perf";
  std::vector<std::string> cases;
  int threads = 0, repetitions = 1;
  double min_time = 0.1;
  std::uint64_t seed = 1;
  bool no_probe = false, no_estimates = false, no_report = false;
};

std::string utc_stamp() {
  return fmt::format("{:%Y%m%d-%H%M%S}", fmt::gmtime(std::chrono::system_clock::to_time_t(std::chrono::system_clock::now())));
}

}  // namespace

command run_command() {
  return {"run", "run a suite: verify each case against its reference, then time it (Google Benchmark JSON out)",
          [](CLI::App& sub, const global_options& g) -> std::function<int()> {
            auto f = std::make_shared<run_flags>();
            sub.add_option("--suite", f->suite, "quick | full | ci | path of a file of descriptors")->capture_default_str();
            sub.add_option("--case", f->cases, "run this descriptor (repeatable) instead of a suite");
            sub.add_option("--filter", f->filter, "regular expression matched against '<descriptor>/<impl>'");
            sub.add_option("--impl", f->impl, "implementation name, or 'all' (default: the first that accepts each case)");
            sub.add_option("--backend", f->backend, "serial | openmp | tbb")->capture_default_str();
            sub.add_option("--threads", f->threads, "worker threads (default: all processing units; serial: 1)");
            sub.add_option("--pin", f->pin, "core | none")->capture_default_str();
            sub.add_option("--mode", f->mode, "perf | correctness")->capture_default_str();
            sub.add_option("--repetitions", f->repetitions, "Google Benchmark repetitions per case")->capture_default_str();
            sub.add_option("--min-time", f->min_time, "minimum seconds per repetition")->capture_default_str();
            sub.add_option("--seed", f->seed, "seed of the input data")->capture_default_str();
            sub.add_option("--out", f->out, "results file (default: <results-dir>/run-<UTC time>.json)");
            sub.add_flag("--no-probe", f->no_probe, "do not load or measure the host roofline (no roofline fraction, no estimates)");
            sub.add_flag("--no-estimates", f->no_estimates, "skip the estimate tables of the default workloads after the suite");
            sub.add_flag("--no-report", f->no_report, "do not write the HTML and Markdown reports beside the results file");
            return [f, &g, &sub] {
              run_options opt;
              opt.be.kind = parse_backend(f->backend);
              opt.be.pin = parse_pin(f->pin);
              if (sub.count("--threads") != 0 || f->threads != 0) opt.be.threads = f->threads;
              else opt.be.threads = opt.be.kind == backend_kind::serial ? 1 : max_threads();
              if (f->mode == "perf") opt.mode = run_mode::perf;
              else if (f->mode == "correctness") opt.mode = run_mode::correctness;
              else throw std::invalid_argument(fmt::format("unknown mode '{}'; valid choices: perf, correctness", f->mode));
              if (!f->cases.empty()) {
                if (sub.count("--suite") != 0) throw std::invalid_argument("give either --suite or --case, not both");
                for (const auto& c : f->cases) opt.cases.push_back({to_string(parse(c)), ""});
                opt.suite_label = "--case";
              } else {
                opt.cases = load_suite(f->suite);
                opt.suite_label = f->suite;
              }
              opt.filter = f->filter;
              opt.impl = f->impl;
              opt.repetitions = f->repetitions;
              opt.min_time_s = f->min_time;
              opt.seed = f->seed;
              opt.out = f->out.empty() ? std::filesystem::path(g.results_dir) / fmt::format("run-{}.json", utc_stamp())
                                       : std::filesystem::path(f->out);
              opt.command_line = g.command_line;
              // Validate what can be validated before the (possibly long) probe.
              make_backend(opt.be);
              check_writable(opt.out);
              std::optional<probe_result> pr;
              if (!f->no_probe) {
                std::cerr << "host roofline: using the cached probe or measuring it (see 'infermark probe')\n";
                pr = load_or_measure_probe(g.results_dir, false);
                opt.probe = &*pr;
              }
              run_outcome outcome = run_cases(opt, std::cout, std::cerr);
              // The rest of the main job: estimate tables for the default workloads (with this run's host
              // fractions), stored in the same results file, and the reports beside it.
              if (!f->no_estimates && !f->no_probe && outcome.exit_code != 130) {
                outcome.results["estimates"] = default_estimate_tables(g, opt.out, std::cout);
                write_json_atomically(opt.out, outcome.results);
              }
              if (!f->no_report && outcome.exit_code != 130) {
                const report::report_data data = report::read_report(outcome.results, opt.out.string());
                auto stem = opt.out;
                stem.replace_extension();
                report::write_text_atomically(stem.string() + ".html", report::render_html(data));
                report::write_text_atomically(stem.string() + ".md", report::render_markdown(data));
                std::cout << "report: " << stem.string() << ".html (and .md)\n";
              }
              return outcome.exit_code;
            };
          }};
}

}  // namespace infermark
