#include "bench/compare/callgrind.hpp"

#include <fmt/format.h>

#include <fstream>
#include <ostream>
#include <sstream>
#include <stdexcept>

#include "bench/compare/process.hpp"
#include "bench/probe/probe.hpp"
#include "bench/results.hpp"
#include "bench/suites.hpp"

namespace infermark {

std::optional<std::string> valgrind_version(const std::string& valgrind) {
  try {
    auto [rc, out] = capture_process({valgrind, "--version"});
    if (rc != 0) return std::nullopt;
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
    return out;
  } catch (const std::runtime_error&) {
    return std::nullopt;
  }
}

double callgrind_total(const std::filesystem::path& out_file) {
  std::ifstream f(out_file);
  if (!f) throw std::runtime_error(fmt::format("cannot read callgrind output '{}'", out_file.string()));
  std::string line, events;
  std::optional<double> totals, summary;
  while (std::getline(f, line)) {
    auto value_of = [&](const char* key) -> std::optional<double> {
      const std::string k = key;
      if (line.rfind(k, 0) != 0) return std::nullopt;
      std::istringstream in(line.substr(k.size()));
      double v = 0;
      if (in >> v) return v;
      return std::nullopt;
    };
    if (line.rfind("events:", 0) == 0) events = line.substr(7);
    if (auto v = value_of("totals:")) totals = v;
    if (auto v = value_of("summary:")) summary = v;
  }
  if (events.find("Ir") == std::string::npos)
    throw std::runtime_error(fmt::format("callgrind output '{}' has no Ir event", out_file.string()));
  if (totals) return *totals;
  if (summary) return *summary;
  throw std::runtime_error(fmt::format("callgrind output '{}' has no totals/summary line", out_file.string()));
}

nlohmann::json measure_callgrind(const callgrind_options& opt, std::ostream& progress) {
#ifdef INFERMARK_SANITIZED
  // Valgrind cannot run an ASan/UBSan binary (the sanitizers' shadow memory conflicts with it).
  throw std::invalid_argument("--callgrind cannot run a sanitizer (ASan + UBSan) build under valgrind; use the "
                              "release build (build/release/infermark)");
#endif
  const auto version = valgrind_version(opt.valgrind);
  if (!version)
    throw std::runtime_error(fmt::format("'{}' cannot be run: install Valgrind (sudo apt-get install -y valgrind) "
                                         "for the callgrind tier", opt.valgrind));
  std::vector<suite_entry> entries;
  std::string suite_label;
  if (!opt.cases.empty()) {
    for (const auto& c : opt.cases) entries.push_back({c, opt.impl});
    suite_label = "--case";
  } else {
    entries = load_suite(opt.suite);
    suite_label = opt.suite;
    if (!opt.impl.empty())
      for (auto& e : entries) e.impl = opt.impl;
  }
  std::filesystem::create_directories(opt.work_dir);
  nlohmann::json benchmarks = nlohmann::json::array();
  nlohmann::json child_context;
  // Valgrind executes no AVX-512: cap our dispatch and the peers' (oneDNN, OpenBLAS) to AVX2.
  const std::vector<std::pair<std::string, std::string>> env = {
      {"INFERMARK_MAX_ISA", "avx2"}, {"ONEDNN_MAX_CPU_ISA", "AVX2"}, {"OPENBLAS_CORETYPE", "Haswell"}};
  for (std::size_t i = 0; i < entries.size(); ++i) {
    // "@all" in a suite: count the default implementation only (one kernel per process keeps the count
    // attributable).
    const std::string impl = entries[i].impl == "all" ? "" : entries[i].impl;
    const auto cg_out = opt.work_dir / fmt::format("callgrind.{}.out", i);
    const auto json_out = opt.work_dir / fmt::format("case.{}.json", i);
    const auto log = opt.work_dir / fmt::format("case.{}.log", i);
    std::filesystem::remove(cg_out);
    std::filesystem::remove(log);
    std::vector<std::string> argv = {opt.valgrind, "--tool=callgrind", "--callgrind-out-file=" + cg_out.string(),
                                     "--collect-atstart=no", std::string("--toggle-collect=") + kCallgrindToggle,
                                     opt.binary.string(), "run", "--no-probe", "--mode", "correctness", "--backend",
                                     "serial", "--threads", "1", "--case", entries[i].descriptor, "--out",
                                     json_out.string()};
    if (!impl.empty()) {
      argv.push_back("--impl");
      argv.push_back(impl);
    }
    progress << fmt::format("[callgrind {}/{}] {}{}\n", i + 1, entries.size(), entries[i].descriptor,
                            impl.empty() ? "" : " @" + impl)
             << std::flush;
    const int rc = run_process({argv, env, {}, log});
    if (rc != 0)
      throw std::runtime_error(fmt::format("callgrind run of {} failed (exit {}):\n  {}\n{}", entries[i].descriptor, rc,
                                           shell_join(argv), tail_of(log, 15)));
    const double ir = callgrind_total(cg_out);
    if (!(ir > 0))
      throw std::runtime_error(fmt::format("callgrind counted no instructions for {}: the toggle pattern '{}' matched "
                                           "no function (has kernel_case::run changed its signature?)",
                                           entries[i].descriptor, kCallgrindToggle));
    const auto res = read_json_file(json_out);
    if (child_context.is_null()) child_context = res.value("context", nlohmann::json::object());
    const auto& ents = res.at("benchmarks");
    if (ents.size() != 1)
      throw std::runtime_error(fmt::format("{}: expected one correctness entry for {}, found {}", json_out.string(),
                                           entries[i].descriptor, ents.size()));
    const auto& e = ents[0];
    const std::string name = e.at("name").get<std::string>();
    benchmarks.push_back({{"name", name},
                          {"run_name", name},
                          {"run_type", "iteration"},
                          {"repetitions", 1},
                          {"repetition_index", 0},
                          {"iterations", 1},
                          {"instructions", ir},
                          {"descriptor", e.value("descriptor", entries[i].descriptor)},
                          {"impl", e.value("impl", impl)},
                          {"backend", "serial"},
                          {"backend_threads", 1},
                          {"verified", e.value("verified", false)},
                          {"repro", "INFERMARK_MAX_ISA=avx2 " + shell_join(argv)}});
    progress << fmt::format("  {}: {:.0f} instructions\n", name, ir) << std::flush;
  }
  nlohmann::json ctx = child_context;
  auto& im = ctx["infermark"];
  im["tier"] = "callgrind";
  im["mode"] = "callgrind";
  im["suite"] = suite_label;
  im["command"] = opt.command_line;
  // The measuring process's own (uncapped, not under Valgrind) fingerprint, so baselines are stored and
  // found under the machine's usual fingerprint; the child's is kept for reference.
  im["fingerprint_under_valgrind"] = im.value("fingerprint", std::string());
  im["fingerprint"] = machine_fingerprint();
  im["callgrind"] = {{"valgrind", *version}, {"toggle_collect", kCallgrindToggle}, {"max_isa", "avx2"},
                     {"binary", opt.binary.string()}};
  return {{"context", ctx}, {"benchmarks", benchmarks}};
}

}  // namespace infermark
