#include "bench/cli.hpp"

#include <CLI/CLI.hpp>
#include <fmt/chrono.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <chrono>
#include <iostream>

#include "backends/backend.hpp"
#include "bench/op.hpp"
#include "bench/probe/probe.hpp"
#include "bench/results.hpp"
#include "bench/runner.hpp"
#include "bench/suites.hpp"
#include "kernels/common/isa.hpp"

namespace infermark {
namespace {

std::string joined_command(int argc, char** argv) {
  std::string s;
  for (int i = 0; i < argc; ++i) s += (i ? " " : "") + std::string(argv[i]);
  return s;
}

std::string utc_stamp() {
  return fmt::format("{:%Y%m%d-%H%M%S}", fmt::gmtime(std::chrono::system_clock::to_time_t(std::chrono::system_clock::now())));
}

void print_probe_table(const probe_result& p, std::ostream& out) {
  auto fmt_peak = [](const std::optional<double>& v) { return v ? fmt::format("{:10.1f}", *v) : fmt::format("{:>10}", "n/a"); };
  out << fmt::format("host roofline (fingerprint {}, measured {})\n", p.fingerprint, p.measured_at);
  out << fmt::format("ISA: {}\n", fmt::join(p.isa, " "));
  out << fmt::format("{:<22} {:>10} {:>10}   {}\n", "peak GFLOP/s", "1 core", fmt::format("{} thr", p.threads), "instruction path");
  auto path = [&](const char* k) { return p.isa_used.contains(k) ? p.isa_used[k].get<std::string>() : std::string("-"); };
  out << fmt::format("{:<22} {} {}   {}\n", "fp32 FMA", fmt_peak(p.peak_gflops_1core.fp32), fmt_peak(p.peak_gflops.fp32), path("fp32"));
  out << fmt::format("{:<22} {} {}   {}\n", "bf16 dot", fmt_peak(p.peak_gflops_1core.bf16), fmt_peak(p.peak_gflops.bf16), path("bf16"));
  out << fmt::format("{:<22} {} {}   {}\n", "int8 dot (GOP/s)", fmt_peak(p.peak_gflops_1core.int8), fmt_peak(p.peak_gflops.int8), path("int8"));
  out << fmt::format("DRAM bandwidth GB/s: read {:.1f}, triad {:.1f} (working set {:.0f} MiB)\n", p.read_gbs, p.triad_gbs,
                     p.dram_working_set_bytes / 1048576.0);
  for (const auto& c : p.caches)
    out << fmt::format("L{} read GB/s: {:.1f} (working set {:.0f} KiB)\n", c.level, c.read_gbs, c.size_bytes / 1024.0);
}

}  // namespace

int cli_main(int argc, char** argv) {
  CLI::App app{"infermark: microbenchmarks of AI inference kernels, verified, measured against the host roofline "
               "and scaled to accelerator estimates"};
  app.set_version_flag("--version", std::string("infermark ") + build_info()["version"].get<std::string>() + " (" +
                                        build_info()["git_revision"].get<std::string>() + ")");
  app.require_subcommand(1);
  std::string results_dir = default_results_dir().string();
  std::string max_isa;
  app.add_option("--results-dir", results_dir, "where probe caches and results files live")->capture_default_str();
  app.add_option("--max-isa", max_isa, "cap kernel dispatch (also INFERMARK_MAX_ISA)")
      ->check(CLI::IsMember({"avx512", "avx2", "neon", "generic"}));

  // run
  auto* run = app.add_subcommand("run", "run a suite: verify each case, then time it (Google Benchmark JSON out)");
  std::string suite = "quick", filter, impl, backend = "openmp", pin = "none", out, mode = "perf";
  std::vector<std::string> case_list;
  int threads = 0, repetitions = 1;
  double min_time = 0.1;
  std::uint64_t seed = 1;
  bool no_probe = false;
  run->add_option("--suite", suite, "quick | full | ci | path of a file of descriptors")->capture_default_str();
  run->add_option("--case", case_list, "run this descriptor (repeatable) instead of a suite");
  run->add_option("--filter", filter, "regular expression matched against '<descriptor>/<impl>'");
  run->add_option("--impl", impl, "implementation name, or 'all' (default: the first that accepts each case)");
  run->add_option("--backend", backend, "serial | openmp | tbb")->capture_default_str();
  run->add_option("--threads", threads, "worker threads (default: all processing units; serial: 1)");
  run->add_option("--pin", pin, "core | none")->capture_default_str();
  run->add_option("--mode", mode, "perf | correctness")->capture_default_str();
  run->add_option("--repetitions", repetitions, "Google Benchmark repetitions per case")->capture_default_str();
  run->add_option("--min-time", min_time, "minimum seconds per repetition")->capture_default_str();
  run->add_option("--seed", seed, "seed of the input data")->capture_default_str();
  run->add_option("--out", out, "results file (default: <results-dir>/run-<UTC time>.json)");
  run->add_flag("--no-probe", no_probe, "do not load or measure the host roofline (no roofline fraction)");

  // probe
  auto* probe = app.add_subcommand("probe", "measure (or show the cached) host roofline: peak FLOP/s, bandwidth");
  std::string format = "table";
  bool refresh = false;
  probe->add_option("--format", format, "table | json")->capture_default_str();
  probe->add_flag("--refresh", refresh, "measure again instead of using the cache");

  // list
  auto* list = app.add_subcommand("list", "list kernels (ops and implementations) or suites");
  std::string what;
  list->add_option("what", what, "kernels | suites")->required();

  // CLI11 reports a mistyped subcommand as "A subcommand is required"; name it and the choices instead.
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--results-dir" || a == "--max-isa") {
      ++i;
      continue;
    }
    if (a.rfind("-", 0) == 0) continue;
    if (a != "run" && a != "probe" && a != "list") {
      std::cerr << "infermark: error: unknown subcommand '" << a << "'; valid choices: run, probe, list\n";
      return 2;
    }
    break;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "infermark: error: " << e.what() << "\nRun 'infermark --help' (or 'infermark <command> --help') for usage.\n";
    return 2;
  }

  try {
    if (!max_isa.empty()) set_max_isa(max_isa);
    if (*run) {
      run_options opt;
      opt.be.kind = parse_backend(backend);
      opt.be.pin = parse_pin(pin);
      opt.be.threads = threads != 0 ? threads : (opt.be.kind == backend_kind::serial ? 1 : max_threads());
      if (threads < 0 || run->count("--threads") && threads == 0)
        throw std::invalid_argument(fmt::format("thread count {} is out of range; valid choices: 1..{}", threads, max_threads()));
      if (mode == "perf") opt.mode = run_mode::perf;
      else if (mode == "correctness") opt.mode = run_mode::correctness;
      else throw std::invalid_argument(fmt::format("unknown mode '{}'; valid choices: perf, correctness", mode));
      if (!case_list.empty()) {
        if (run->count("--suite")) throw std::invalid_argument("give either --suite or --case, not both");
        for (const auto& c : case_list) opt.cases.push_back({to_string(parse(c)), ""});
        opt.suite_label = "--case";
      } else {
        opt.cases = load_suite(suite);
        opt.suite_label = suite;
      }
      opt.filter = filter;
      opt.impl = impl;
      opt.repetitions = repetitions;
      opt.min_time_s = min_time;
      opt.seed = seed;
      opt.out = out.empty() ? std::filesystem::path(results_dir) / fmt::format("run-{}.json", utc_stamp()) : std::filesystem::path(out);
      opt.command_line = joined_command(argc, argv);
      opt.progress = true;
      // Validate what can be validated before the (possibly long) probe.
      make_backend(opt.be);
      check_writable(opt.out);
      std::optional<probe_result> pr;
      if (!no_probe) {
        std::cerr << "host roofline: loading the cached probe or measuring it (infermark probe)...\n";
        pr = load_or_measure_probe(results_dir, false);
        opt.probe = &*pr;
      }
      return run_cases(opt, std::cout, std::cerr).exit_code;
    }
    if (*probe) {
      if (format != "table" && format != "json")
        throw std::invalid_argument(fmt::format("unknown format '{}'; valid choices: table, json", format));
      const auto p = load_or_measure_probe(results_dir, refresh);
      if (format == "json") std::cout << p.to_json().dump(2) << "\n";
      else print_probe_table(p, std::cout);
      return 0;
    }
    if (*list) {
      if (what == "kernels") {
        for (const auto& op : ops()) {
          std::cout << fmt::format("{}: {}\n  descriptor: {}:", op.spec.op, op.spec.help, op.spec.op);
          for (const auto& f : op.spec.fields) std::cout << f.name << "<" << f.help << ">";
          std::vector<std::string> dts;
          for (auto dt : op.spec.dtypes) dts.emplace_back(to_string(dt));
          std::cout << fmt::format(":{}", fmt::join(dts, "|"));
          for (const auto& o : op.spec.options) std::cout << fmt::format("[:{}={}]", o.name, fmt::join(o.choices, "|"));
          std::cout << "\n";
        }
        return 0;
      }
      if (what == "suites") {
        for (const auto& s : suite_names()) std::cout << fmt::format("{:<8} {}\n", s.name, s.help);
        return 0;
      }
      throw std::invalid_argument(fmt::format("cannot list '{}'; valid choices: kernels, suites", what));
    }
  } catch (const std::invalid_argument& e) {
    std::cerr << "infermark: error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "infermark: error: " << e.what() << "\n";
    return 2;
  }
  return 0;
}

}  // namespace infermark
