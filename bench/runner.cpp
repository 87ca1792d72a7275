#include "bench/runner.hpp"

#include <benchmark/benchmark.h>
#include <fmt/chrono.h>
#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <ostream>
#include <regex>

#include "backends/topology.hpp"
#include "bench/compare/stats.hpp"
#include "bench/op.hpp"
#include "bench/ops/gemm_peers.hpp"
#include "bench/results.hpp"
#include "kernels/common/isa.hpp"

namespace infermark {
namespace {

std::atomic<bool> g_interrupted{false};
extern "C" void on_sigint(int) {
  g_interrupted.store(true);
  static const char msg[] = "\ninfermark: interrupted: finishing the current case, then writing the results so far "
                            "(interrupt again to stop at once)\n";
  (void)!write(STDERR_FILENO, msg, sizeof msg - 1);  // async-signal-safe
}

// Installs a SIGINT/SIGTERM handler for the lifetime of a run: the current case finishes, then the
// results gathered so far are written (atomically) and the run stops. The handler is one-shot
// (SA_RESETHAND): a second signal takes the default action and ends the process at once, so a case that
// never returns (a hung kernel) can still be stopped; the results file is then not written at all.
class interrupt_guard {
 public:
  interrupt_guard() {
    g_interrupted.store(false);
    struct sigaction sa {};
    sa.sa_handler = on_sigint;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
  }
  ~interrupt_guard() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }

 private:
  struct sigaction old_int_ {}, old_term_ {};
};

// Collects Google Benchmark's runs instead of printing them; the driver prints its own table.
class collector final : public benchmark::BenchmarkReporter {
 public:
  bool ReportContext(const Context&) override { return true; }
  void ReportRuns(const std::vector<Run>& runs) override { runs_.insert(runs_.end(), runs.begin(), runs.end()); }
  std::vector<Run> take() { return std::exchange(runs_, {}); }

 private:
  std::vector<Run> runs_;
};

const char* unit_name(benchmark::TimeUnit u) {
  switch (u) {
    case benchmark::kNanosecond: return "ns";
    case benchmark::kMicrosecond: return "us";
    case benchmark::kMillisecond: return "ms";
    case benchmark::kSecond: return "s";
  }
  return "ns";
}

double unit_seconds(benchmark::TimeUnit u) {
  switch (u) {
    case benchmark::kNanosecond: return 1e-9;
    case benchmark::kMicrosecond: return 1e-6;
    case benchmark::kMillisecond: return 1e-3;
    case benchmark::kSecond: return 1.0;
  }
  return 1e-9;
}

nlohmann::json gbench_context() {
  const auto& cpu = benchmark::CPUInfo::Get();
  nlohmann::json caches = nlohmann::json::array();
  for (const auto& c : cpu.caches)
    caches.push_back({{"type", c.type}, {"level", c.level}, {"size", c.size}, {"num_sharing", c.num_sharing}});
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  const auto now = std::chrono::system_clock::now();
  return {{"date", fmt::format("{:%Y-%m-%dT%H:%M:%S}+00:00", fmt::gmtime(std::chrono::system_clock::to_time_t(now)))},
          {"host_name", host},
          {"executable", "infermark"},
          {"num_cpus", cpu.num_cpus},
          {"mhz_per_cpu", static_cast<int>(cpu.cycles_per_second / 1e6)},
          {"cpu_scaling_enabled", cpu.scaling == benchmark::CPUInfo::ENABLED},
          {"caches", caches},
          {"load_avg", cpu.load_avg},
          {"library_build_type", INFERMARK_BUILD_TYPE == std::string("Debug") ? "debug" : "release"}};
}

std::string shell_quote(const std::string& s) {
  if (s.find_first_of(" '\"$\\*?[]()|&;<>`!") == std::string::npos) return s;
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

struct expanded_case {
  std::string descriptor;
  std::string impl;       // resolved name, or "" (first accepting)
  std::string note;       // why it is skipped, when it is
};

// Expands "@all" into every accepting implementation except the reference (the oracle is not timed
// unless named), and applies --impl and --filter.
std::vector<expanded_case> expand(const run_options& opt, const std::regex* filter) {
  std::vector<expanded_case> out;
  for (const auto& e : opt.cases) {
    const std::string want = opt.impl.empty() ? e.impl : opt.impl;
    std::vector<std::string> impls;
    if (want == "all") {
      const auto d = parse(e.descriptor);
      const auto choices = find_op(e.descriptor).implementations(d);
      for (std::size_t i = 0; i + 1 < choices.size(); ++i)
        if (choices[i].refusal.empty()) impls.push_back(choices[i].name);
    } else {
      if (!want.empty()) {  // a named implementation must exist for this op (it may still refuse the case)
        const auto choices = find_op(e.descriptor).implementations(parse(e.descriptor));
        std::string names;
        bool known = false;
        for (const auto& ch : choices) {
          known = known || ch.name == want;
          names += (names.empty() ? "" : ", ") + ch.name;
        }
        if (!known)
          throw std::invalid_argument(fmt::format("{}: no implementation named '{}'; valid choices: {}, all",
                                                  e.descriptor, want, names));
      }
      impls.push_back(want);
    }
    for (const auto& impl : impls) {
      const std::string key = e.descriptor + "/" + impl;
      if (filter != nullptr && !std::regex_search(key, *filter)) continue;
      out.push_back({e.descriptor, impl, ""});
    }
  }
  return out;
}

// The roofline attainable by `work` on this host with `threads` workers: min(peak, intensity x bandwidth),
// and which side of the ridge the work is on.
struct roofline_point {
  double flops;       // attainable FLOP/s
  bool memory_bound;  // intensity x bandwidth < peak
};
std::optional<roofline_point> attainable_flops(const probe_result* probe, const std::string& dt, const work_model& w,
                                               int threads) {
  if (probe == nullptr) return std::nullopt;
  const auto peak = probe->peak_for(dt, threads);
  if (!peak || probe->read_gbs <= 0) return std::nullopt;
  const double memory = w.intensity() * probe->read_gbs * 1e9;
  return roofline_point{std::min(*peak * 1e9, memory), memory < *peak * 1e9};
}

}  // namespace

std::string repro_command(const std::string& descriptor, const std::string& impl, const backend_config& be,
                          run_mode mode) {
  std::string cmd = fmt::format("infermark run --case {}", shell_quote(descriptor));
  if (!impl.empty()) cmd += fmt::format(" --impl {}", shell_quote(impl));
  cmd += fmt::format(" --backend {} --threads {} --pin {}", to_string(be.kind), be.threads, to_string(be.pin));
  if (mode == run_mode::correctness) cmd += " --mode correctness";
  return cmd;
}

run_outcome run_cases(const run_options& opt, std::ostream& out, std::ostream& err) {
  std::optional<std::regex> filter;
  if (!opt.filter.empty()) {
    try {
      filter.emplace(opt.filter, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      throw std::invalid_argument(fmt::format("--filter '{}' is not a valid regular expression: {}", opt.filter, e.what()));
    }
  }
  if (!opt.out.empty()) check_writable(opt.out);
  if (opt.repetitions < 1)
    throw std::invalid_argument(fmt::format("--repetitions {} is not valid; use 1 or more", opt.repetitions));
  if (!(opt.min_time_s > 0))
    throw std::invalid_argument(fmt::format("--min-time {} is not valid; use a positive number of seconds", opt.min_time_s));
  const auto cases = expand(opt, filter ? &*filter : nullptr);
  if (cases.empty())
    throw std::invalid_argument(fmt::format("no case matches --filter '{}' in {}", opt.filter, opt.suite_label));

  const auto be = make_backend(opt.be);
  interrupt_guard guard;
  static bool gbench_ready = [] {
    int argc = 1;
    char name[] = "infermark";
    char* argv[] = {name, nullptr};
    benchmark::Initialize(&argc, argv);
    return true;
  }();
  (void)gbench_ready;

  run_outcome result;
  nlohmann::json entries = nlohmann::json::array();
  nlohmann::json failures = nlohmann::json::array();
  const auto t0 = std::chrono::steady_clock::now();
  collector coll;
  bool alongside_used = false;

  out << fmt::format("{:<34} {:<15} {:>4} {:>10} {:>9} {:>8} {:>7} {:>6}  {}\n", "case", "impl", "thr", "median",
                     "GFLOP/s", "GB/s", "FLOP/B", "roof%", "verified");
  for (std::size_t ci = 0; ci < cases.size(); ++ci) {
    if (g_interrupted.load()) break;
    const auto& c = cases[ci];
    if (opt.progress) {
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const std::string left = ci == 0 ? "" : fmt::format(", ~{:.0f}s left", elapsed / ci * (cases.size() - ci));
      err << fmt::format("[{}/{}] {} {} (elapsed {:.0f}s{})\n", ci + 1, cases.size(), c.descriptor,
                         c.impl.empty() ? "" : c.impl, elapsed, left)
          << std::flush;
    }
    const std::string repro = repro_command(c.descriptor, c.impl, opt.be, opt.mode);
    auto record_failure = [&](const std::string& impl, const std::string& kind, const std::string& message) {
      failures.push_back({{"descriptor", c.descriptor}, {"impl", impl}, {"kind", kind}, {"message", message},
                          {"repro", repro}});
      out << fmt::format("{:<34} {:<15} {}: {}\n  repro: {}\n", c.descriptor, impl, kind == "verification" ? "FAILED" : "REFUSED",
                         message, repro);
    };

    const descriptor d = parse(c.descriptor);
    const op_def& op = find_op(c.descriptor);
    std::unique_ptr<kernel_case> kc;
    try {
      check_memory(d, op.footprint_bytes(d));
      kc = op.make(d, c.impl, opt.seed);
    } catch (const std::invalid_argument& e) {  // unsupported or inconsistent descriptor
      record_failure(c.impl, "refused", e.what());
      ++result.refused;
      continue;
    } catch (const memory_error& e) {
      record_failure(c.impl, "refused", e.what());
      ++result.refused;
      continue;
    }
    const std::string impl = kc->impl_name();
    kc->run(*be);
    const verdict v = kc->verify(*be);
    if (!v.ok) {
      record_failure(impl, "verification", v.detail);
      ++result.failed;
      continue;
    }
    ++result.verified;
    const work_model w = kc->work();
    const bool own_threads = !kc->uses_backend();
    const std::string backend_name = own_threads ? "library" : std::string(be->name());
    const std::string name = fmt::format("{}/{}/{}/{}", c.descriptor, impl, backend_name, be->threads());
    const std::string peak_dt = kc->peak_dtype().empty() ? std::string(to_string(d.dt)) : kc->peak_dtype();
    const auto attainable = attainable_flops(opt.probe, peak_dt, w, be->threads());
    const std::string ok_repro = repro_command(c.descriptor, impl, opt.be, opt.mode);

    auto base_entry = [&]() {
      nlohmann::json e;
      e["descriptor"] = c.descriptor;
      e["impl"] = impl;
      e["backend"] = backend_name;
      e["backend_threads"] = be->threads();
      e["flops_per_iteration"] = w.flops();
      e["bytes_per_iteration"] = w.bytes();
      nlohmann::json phases = nlohmann::json::array();
      for (const auto& p : w.phases) phases.push_back({{"name", p.name}, {"flops", p.flops}, {"bytes", p.bytes}});
      e["work_phases"] = phases;
      e["verified"] = true;
      e["verification"] = v.detail;
      e["peak_dtype"] = peak_dt;
      e["repro"] = ok_repro;
      return e;
    };

    if (opt.mode == run_mode::correctness) {
      out << fmt::format("{:<34} {:<15} {:>4} {:>10} {:>9} {:>8} {:>7.1f} {:>6}  yes ({})\n", c.descriptor, impl,
                         be->threads(), "-", "-", "-", w.intensity(), "-", v.detail);
      auto e = base_entry();
      e["name"] = name;
      e["run_name"] = name;
      e["run_type"] = "correctness";
      entries.push_back(e);
      continue;
    }

    // A memory-bound case (by the probe's roofline) is also compared with the DRAM read bandwidth
    // measured on the same backend right before and right after each repetition (outside its timed loop):
    // on a shared host the bandwidth moves with the neighbours' load within seconds, and a ceiling
    // measured minutes earlier, or once for all repetitions, says little. Each repetition's fraction is
    // against its own pair of reads, taken as the same statistic as the repetition's time: all bytes over
    // all time of the read's ~2 ms regions ("sustained"); the fastest region alone (the probe's figure)
    // is recorded beside it. The table shows the median of the repetitions' sustained fractions.
    const bool memory_bound = attainable && attainable->memory_bound && opt.alongside_s > 0;
    alongside_used = alongside_used || memory_bound;

    auto* bm = benchmark::RegisterBenchmark(name.c_str(), [&](benchmark::State& st) {
      const dram_read_beside before = memory_bound ? measure_dram_read_beside(*be, opt.alongside_s) : dram_read_beside{};
      for (auto _ : st) kc->run(*be);
      if (memory_bound) {
        const dram_read_beside after = measure_dram_read_beside(*be, opt.alongside_s);
        st.counters["dram_read_before_gbs"] = before.sustained_gbs;
        st.counters["dram_read_after_gbs"] = after.sustained_gbs;
        st.counters["dram_read_best_before_gbs"] = before.best_gbs;
        st.counters["dram_read_best_after_gbs"] = after.best_gbs;
      }
      st.counters["flops_per_s"] = benchmark::Counter(w.flops(), benchmark::Counter::kIsIterationInvariantRate);
      st.counters["bytes_per_s"] = benchmark::Counter(w.bytes(), benchmark::Counter::kIsIterationInvariantRate);
      st.counters["intensity"] = benchmark::Counter(w.intensity());
      if (attainable)
        st.counters["roofline_fraction"] =
            benchmark::Counter(w.flops() / attainable->flops, benchmark::Counter::kIsIterationInvariantRate);
    });
    bm->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(opt.min_time_s);
    if (opt.repetitions > 1) bm->Repetitions(opt.repetitions);
    benchmark::RunSpecifiedBenchmarks(&coll);
    benchmark::ClearRegisteredBenchmarks();
    ++result.timed;

    double median_s = 0, flops_s = 0, bytes_s = 0, roof = -1;
    std::vector<double> reps, fractions, best_fractions;
    const std::size_t first_entry = entries.size();
    for (const auto& r : coll.take()) {
      if (r.error_occurred) {
        record_failure(impl, "error", r.error_message);
        continue;
      }
      auto e = base_entry();
      // Names stay "<descriptor>/<impl>/<backend>/<threads>" (without Google Benchmark's "/min_time:..."
      // suffixes) so runs with different timing options still pair up in compare tools.
      const bool aggregate = r.run_type == benchmark::BenchmarkReporter::Run::RT_Aggregate;
      e["name"] = aggregate ? name + "_" + r.aggregate_name : name;
      e["family_index"] = ci;
      e["per_family_instance_index"] = 0;
      e["run_name"] = name;
      e["run_type"] = aggregate ? "aggregate" : "iteration";
      e["repetitions"] = r.repetitions;
      e["threads"] = r.threads;
      if (aggregate) {
        e["aggregate_name"] = r.aggregate_name;
        e["aggregate_unit"] = r.aggregate_unit == benchmark::kPercentage ? "percentage" : "time";
      } else {
        e["repetition_index"] = r.repetition_index;
        reps.push_back(r.GetAdjustedRealTime() * unit_seconds(r.time_unit));
      }
      e["iterations"] = r.iterations;
      e["real_time"] = r.GetAdjustedRealTime();
      e["cpu_time"] = r.GetAdjustedCPUTime();
      e["time_unit"] = unit_name(r.time_unit);
      for (const auto& [k, cnt] : r.counters) e[k] = static_cast<double>(cnt);
      if (memory_bound && (!aggregate || r.aggregate_name == "mean" || r.aggregate_name == "median")) {
        // An aggregate's reads are that statistic of the repetitions' reads (Google Benchmark aggregates
        // counters); its fraction is filled in below from the repetitions' own fractions.
        const double before = r.counters.at("dram_read_before_gbs"), after = r.counters.at("dram_read_after_gbs");
        const double best_before = r.counters.at("dram_read_best_before_gbs"), best_after = r.counters.at("dram_read_best_after_gbs");
        e["dram_read_gbs_alongside"] = {{"before", before},
                                        {"after", after},
                                        {"mean", 0.5 * (before + after)},
                                        {"best_before", best_before},
                                        {"best_after", best_after},
                                        {"best_mean", 0.5 * (best_before + best_after)}};
        if (!aggregate) {
          const double bytes_s = w.bytes() / (r.GetAdjustedRealTime() * unit_seconds(r.time_unit));
          fractions.push_back(bytes_s / (0.5 * (before + after) * 1e9));
          best_fractions.push_back(bytes_s / (0.5 * (best_before + best_after) * 1e9));
          e["roofline_fraction_alongside"] = fractions.back();
          e["roofline_fraction_alongside_best"] = best_fractions.back();
        }
      }
      entries.push_back(e);
    }
    if (!fractions.empty()) {
      // Mean and median aggregates of the paired fractions (written after their repetitions).
      for (std::size_t i = first_entry; i < entries.size(); ++i) {
        auto& e = entries[i];
        if (e.value("run_type", "") != "aggregate" || !e.contains("dram_read_gbs_alongside")) continue;
        const bool median = e["aggregate_name"] == "median";
        e["roofline_fraction_alongside"] = median ? stats::median(fractions) : stats::mean(fractions);
        e["roofline_fraction_alongside_best"] = median ? stats::median(best_fractions) : stats::mean(best_fractions);
      }
    }
    if (!reps.empty()) {
      median_s = stats::median(reps);
      flops_s = w.flops() / median_s;
      bytes_s = w.bytes() / median_s;
      if (attainable) roof = memory_bound ? stats::median(fractions) : flops_s / attainable->flops;
      out << fmt::format("{:<34} {:<15} {:>4} {:>8.3f}ms {:>9.1f} {:>8.1f} {:>7.1f} {:>6}  yes\n", c.descriptor, impl,
                         be->threads(), median_s * 1e3, flops_s / 1e9, bytes_s / 1e9, w.intensity(),
                         roof < 0 ? std::string("-") : fmt::format("{:.1f}{}", roof * 100, memory_bound ? "*" : ""))
          << std::flush;
    }
  }
  const bool interrupted = g_interrupted.load();

  nlohmann::json ctx = gbench_context();
  nlohmann::json im;
  im["build"] = build_info();
  im["command"] = opt.command_line;
  im["suite"] = opt.suite_label;
  im["mode"] = opt.mode == run_mode::perf ? "perf" : "correctness";
  im["seed"] = opt.seed;
  im["backend"] = be->name();
  im["threads"] = be->threads();
  const auto pin = be->pinning();
  im["pinning"] = {{"requested", to_string(pin.requested)}, {"applied", pin.applied}, {"cpus", pin.cpus},
                   {"message", pin.message}};
  im["isa"] = {{"detected", to_string(detected_isa())},
               {"effective", to_string(effective_isa())},
               {"features", feature_names(detected_features())}};
  im["topology"] = host_topology().to_json();
  im["fingerprint"] = opt.probe != nullptr ? opt.probe->fingerprint : machine_fingerprint();
  im["probe"] = opt.probe != nullptr ? opt.probe->to_json() : nlohmann::json(nullptr);
  for (const auto& [k, v] : gemm_peer_context()) im["peers"][k] = v;
  im["interrupted"] = interrupted;
  im["summary"] = {{"verified", result.verified}, {"failed", result.failed}, {"refused", result.refused},
                   {"timed", result.timed}};
  im["failures"] = failures;
  ctx["infermark"] = im;
  result.results = {{"context", ctx}, {"benchmarks", entries}};

  if (!opt.out.empty()) write_json_atomically(opt.out, result.results);
  result.exit_code = interrupted ? 130 : result.failed > 0 ? 1 : result.refused > 0 ? 2 : 0;
  if (alongside_used)
    out << "* memory-bound: roof% is the median over repetitions of bytes/s against the DRAM read (sustained) measured right\n"
           "  before and after each repetition; against the read's fastest 2 ms region it is roofline_fraction_alongside_best\n";
  out << fmt::format("\n{} verified, {} failed verification, {} refused{}\n", result.verified, result.failed,
                     result.refused, interrupted ? " (interrupted: partial results)" : "");
  if (!opt.out.empty()) out << "results: " << opt.out.string() << "\n";
  return result;
}

}  // namespace infermark
