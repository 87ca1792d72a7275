// `infermark estimate`: a whole-model workload timed on hardware profiles (calibrated roofline or the
// host's portable efficiency carried over); per-chip, per-watt and per-system figures. See
// profiles/README.md for the model.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "bench/command.hpp"
#include "bench/op.hpp"
#include "bench/probe/probe.hpp"
#include "bench/results.hpp"
#include "profiles/model/estimate.hpp"

namespace infermark {
namespace {

struct estimate_flags {
  std::string workload, phase = "decode", profiles = "all", reference = "h100-sxm", mode = "calibrated", dtype,
              format = "table", results, currency = "USD";
  std::int64_t batch = 0, context = 0;
  int tp = 1, ep = 1, attn_dp = 1;
  double price_kwh = 0, subsidy = 0;
};

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

// Kernel class of a measured case, from its descriptor (attn: MLA decode, prefill when q == ctx, else decode;
// row-wise norm/rope ops: elementwise).
std::optional<kernel_class> class_of(const descriptor& d) {
  if (d.op == "gemm") return kernel_class::gemm;
  if (d.op == "rmsnorm" || d.op == "rope") return kernel_class::elementwise;
  if (d.op == "moe") return d.option("steps") == "all" ? std::optional(kernel_class::grouped_gemm) : std::nullopt;
  if (d.op == "attn") {
    if (d.option("mla") == "on" && d.at("q") <= 2) return kernel_class::mla_decode;
    return d.at("q") == d.at("ctx") ? kernel_class::attention_prefill : kernel_class::attention_decode;
  }
  return std::nullopt;
}

double seconds(double v, const std::string& unit) {
  if (const auto s = time_unit_seconds(unit)) return v * *s;
  throw std::runtime_error(fmt::format("unknown time_unit '{}'; valid choices: ns, us, ms, s", unit));
}

// The host's achieved roofline fraction per case of a results file: infermark's own implementations only
// (library peers and the naive references are not "the portable code"), the median over repetitions.
std::vector<host_case> host_cases_from_results(const std::filesystem::path& file) {
  const nlohmann::json j = read_json_file(file);
  if (!j.contains("context") || !j["context"].contains("infermark") || !j["context"]["infermark"].contains("probe") ||
      j["context"]["infermark"]["probe"].is_null())
    throw std::invalid_argument(fmt::format("{}: no host probe in context.infermark.probe (run 'infermark run' without --no-probe)", file.string()));
  const probe_result pr = probe_result::from_json(j["context"]["infermark"]["probe"]);
  std::map<std::string, std::vector<double>> fr;  // name -> fractions of its repetitions
  std::map<std::string, std::pair<std::string, kernel_class>> what;
  for (const auto& e : j.value("benchmarks", nlohmann::json::array())) {
    if (e.value("run_type", "") != "iteration" || !e.contains("descriptor") || !e.contains("real_time")) continue;
    const std::string impl = e.value("impl", "");
    if (e.value("backend", "") == "library" || impl.rfind("ref:", 0) == 0) continue;
    const std::string desc = e["descriptor"].get<std::string>();
    const auto cls = class_of(parse(desc));
    if (!cls) continue;
    const double flops = e.value("flops_per_iteration", 0.0), bytes = e.value("bytes_per_iteration", 0.0);
    const double t = seconds(e["real_time"].get<double>(), e.value("time_unit", "ns"));
    const auto peak = pr.peak_for(e.value("peak_dtype", "fp32"), std::max(1, e.value("backend_threads", 1)));
    if (!peak || t <= 0 || flops <= 0 || bytes <= 0) continue;
    // A memory-bound case timed with the DRAM bandwidth measured beside it: against that figure, as the
    // run's table shows it (the probe's stored figure may be from a moment with other load).
    const double read_gbs = alongside_read_gbs(e).value_or(pr.read_gbs);
    const double attainable = std::min(*peak * 1e9, flops / bytes * read_gbs * 1e9);
    fr[e["name"].get<std::string>()].push_back(flops / t / attainable);
    what[e["name"].get<std::string>()] = {desc + " " + impl, *cls};
  }
  std::vector<host_case> out;
  for (auto& [name, v] : fr) {
    std::sort(v.begin(), v.end());
    const double median = v[v.size() / 2];
    // Above 1 the case ran from cache, faster than the DRAM roofline allows: its fraction says nothing
    // about how DRAM-bound work on the target would fare, so it is left out (and said so).
    if (median > 1.0) {
      std::cerr << fmt::format("note: host case '{}' reached {:.2f}x its DRAM roofline (cache-resident); not used "
                               "for host fractions\n", what[name].first, median);
      continue;
    }
    out.push_back({what[name].first, what[name].second, median});
  }
  return out;
}

std::filesystem::path newest_run_file(const std::filesystem::path& dir) {
  std::filesystem::path best;
  if (std::filesystem::is_directory(dir))
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
      const std::string n = e.path().filename().string();
      if (n.rfind("run-", 0) == 0 && e.path().extension() == ".json" && (best.empty() || n > best.filename().string())) best = e.path();
    }
  return best;
}

std::string fmt_opt(const std::optional<double>& v, const char* spec) {
  return v ? fmt::format(fmt::runtime(spec), *v) : std::string("n/a");
}

void print_table(const estimate_report& r, const estimate_flags& f, std::ostream& out) {
  const auto& w = r.workload;
  out << fmt::format("workload {} ({}), {} batch {} context {}, tp {} ep {} attn-dp {} ({} chips per instance), "
                     "{} tokens per step; mode {}; reference {}\n",
                     w["name"].get<std::string>(), w["model"].get<std::string>(), w["phase"].get<std::string>(),
                     w["batch"].get<std::int64_t>(), w["context"].get<std::int64_t>(), w["tp"].get<int>(), w["ep"].get<int>(),
                     w["attn_dp"].get<int>(), w["chips_per_instance"].get<int>(), w["tokens_per_step"].get<double>(),
                     to_string(r.mode), r.reference);
  if (!r.host.empty()) {
    out << "host achieved fraction of its own roofline" << (r.host_source.empty() ? "" : " (" + r.host_source + ")") << ":";
    for (const auto& [k, h] : r.host) out << fmt::format(" {} {:.3f} ({} case{})", to_string(k), h.fraction, h.cases.size(), h.cases.size() == 1 ? "" : "s");
    out << "\n";
  }
  const bool cost = f.price_kwh > 0;
  out << fmt::format("{:<17} {:<5} {:<8} {:>9} {:>10} {:>19} {:>10} {:>6} {:>8} {:>6} {:>13}{} {:>5}  {}\n", "profile", "dtype",
                     "bound", "layer ms", "step ms", "P10-P90 ms", "tok/s/chip", "rel", "tok/J", "rel/W", "mem/cap GB",
                     cost ? fmt::format(" {:>12}", f.currency + "/Mtok") : "", "host", "factors");
  for (const auto& e : r.estimates) {
    if (e.error) {
      out << fmt::format("{:<17} {}\n", e.profile, *e.error);
      continue;
    }
    std::string cost_col;
    if (cost) cost_col = fmt::format(" {:>12}", e.tokens_per_joule ? fmt::format("{:.4f}", energy_cost_per_mtok(*e.tokens_per_joule, f.price_kwh, f.subsidy)) : "n/a");
    out << fmt::format("{:<17} {:<5} {:<8} {:>9.3f} {:>10.2f} {:>19} {:>10.1f} {:>6.2f} {:>8} {:>6} {:>13}{} {:>5}  {}\n", e.profile,
                       e.dtype, e.bound, e.layer_s * 1e3, e.step_s * 1e3,
                       fmt::format("{:.2f}-{:.2f}", e.p10_s * 1e3, e.p90_s * 1e3), e.tokens_per_s, e.relative_per_chip,
                       fmt_opt(e.tokens_per_joule, "{:.3f}"), fmt_opt(e.relative_per_watt, "{:.2f}"),
                       fmt::format("{}{:.0f}/{}", e.warning ? "!" : (e.parallel_note.empty() ? "" : "*"), e.memory_gb,
                                   e.capacity_gb ? fmt::format("{:.0f}", *e.capacity_gb) : "?"),
                       cost_col, fmt_opt(e.host_fraction, "{:.2f}"), e.provenance_summary);
  }
  if (!r.estimates.empty()) {
    const auto it = std::find_if(r.estimates.begin(), r.estimates.end(), [](const auto& e) { return !e.error; });
    if (it != r.estimates.end()) out << "layer = " << it->layer_kind << "; bound = where most of the step time goes; "
                                     << "tok/J uses chip TDP (systems: all-in power / chips); mem = weights + KV per chip\n";
    for (const auto& e : r.estimates)
      if (e.warning) out << fmt::format("! {}: {}\n", e.profile, *e.warning);
    for (const auto& e : r.estimates)
      if (!e.parallel_note.empty()) out << fmt::format("* {}\n", e.parallel_note);
  }
  if (cost)
    out << fmt::format("energy cost at {} {}/kWh with a subsidy of {:.0f}% of the bill\n", f.price_kwh, f.currency, f.subsidy * 100);
  const auto sys = system_view(r);
  if (!sys.empty()) {
    out << "\nsystem view\n";
    out << fmt::format("{:<17} {:>6} {:<24} {:>14} {:>10} {:>8}{}\n", "system", "chips", "parallel", "tok/s/system", "power kW", "tok/J",
                       cost ? fmt::format(" {:>12}", f.currency + "/Mtok") : "");
    for (const auto& s : sys)
      out << fmt::format("{:<17} {:>6} {:<24} {:>14.0f} {:>10} {:>8}{}\n", s.profile, s.chips, s.parallel + (s.parallel_note.empty() ? "" : " *"),
                         s.tokens_per_s, fmt_opt(s.power_kw, "{:.0f}"),
                         fmt_opt(s.tokens_per_joule, "{:.3f}"),
                         cost && s.tokens_per_joule ? fmt::format(" {:>12.4f}", energy_cost_per_mtok(*s.tokens_per_joule, f.price_kwh, f.subsidy)) : "");
    auto find = [&](const char* slug) -> const system_row* {
      for (const auto& s : sys)
        if (s.profile == slug) return &s;
      return nullptr;
    };
    const system_row *cm = find("cloudmatrix-384"), *nv = find("gb200-nvl72");
    if (cm && nv) {
      out << fmt::format("cloudmatrix-384 / gb200-nvl72: throughput {:.2f}x", cm->tokens_per_s / nv->tokens_per_s);
      if (cm->power_kw && nv->power_kw) out << fmt::format(", power {:.2f}x", *cm->power_kw / *nv->power_kw);
      if (cm->tokens_per_joule && nv->tokens_per_joule)
        out << fmt::format(", tokens per joule {:.2f}x ({:.2f}x worse per watt)", *cm->tokens_per_joule / *nv->tokens_per_joule,
                           *nv->tokens_per_joule / *cm->tokens_per_joule);
      out << "\n";
    }
  }
}

void print_csv(const estimate_report& r, const estimate_flags& f, std::ostream& out) {
  const bool cost = f.price_kwh > 0;
  out << "profile,dtype,bound,layer_time_s,time_s,p10,p90,tokens_per_s,relative_per_chip,tokens_per_joule,relative_per_watt,"
         "memory_gb,capacity_gb,host_fraction,provenance"
      << (cost ? ",energy_cost_per_mtok" : "") << ",parallel,warning,error\n";
  auto o = [](const std::optional<double>& v) { return v ? fmt::format("{}", *v) : std::string(); };
  for (const auto& e : r.estimates) {
    if (e.error) {
      out << fmt::format("{},,,,,,,,,,,,,,{},,\"{}\"\n", e.profile, cost ? "," : "", *e.error);
      continue;
    }
    out << fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{},{},\"{}\"", e.profile, e.dtype, e.bound, e.layer_s, e.step_s, e.p10_s,
                       e.p90_s, e.tokens_per_s, e.relative_per_chip, o(e.tokens_per_joule), o(e.relative_per_watt), e.memory_gb,
                       o(e.capacity_gb), o(e.host_fraction), e.provenance_summary);
    if (cost) out << "," << (e.tokens_per_joule ? fmt::format("{}", energy_cost_per_mtok(*e.tokens_per_joule, f.price_kwh, f.subsidy)) : "");
    out << fmt::format(",{},\"{}\",\n", e.parallel, e.warning ? *e.warning : "");
  }
}

// Everything `estimate` does before printing: validates the request, loads profiles (adding `host` from
// the probe when asked for), reads the host fractions, and runs the model. `ep_only` is true when only
// --ep was given (the production layout: experts over every chip, attention data-parallel).
estimate_report compute_estimate(const estimate_flags& fl, bool ep_only, bool parallel_given, const global_options& g) {
  const estimate_flags* f = &fl;  // the body reads like the flag handling it came from
  estimate_options opt;
  opt.request.model = f->workload;
  opt.request.ph = parse_phase(f->phase);
  opt.request.batch = f->batch;
  opt.request.context = f->context;
  opt.request.par = {f->tp, f->ep, f->attn_dp};
  // --ep alone means the production layout: experts over every chip, attention data-parallel.
  if (ep_only) opt.request.par.attn_dp = f->ep;
  validate(opt.request);
  opt.fit_systems = !parallel_given;
  opt.reference = f->reference;
  opt.mode = parse_estimate_mode(f->mode);
  if (!f->dtype.empty()) {
    (void)storage_dtype(f->dtype);
    opt.dtype = f->dtype;
  }
  if (f->price_kwh != 0 || f->subsidy != 0) (void)energy_cost_per_mtok(1, f->price_kwh, f->subsidy);

  profile_db db = profile_db::load(profiles_dir());
  std::vector<std::string> targets;
  if (f->profiles == "all") {
    targets = db.slugs();
    targets.push_back("host");
  } else {
    targets = split_list(f->profiles);
    if (targets.empty()) throw std::invalid_argument("--profiles is empty; give slugs or 'all'");
  }
  const bool need_host = opt.reference == "host" || std::find(targets.begin(), targets.end(), "host") != targets.end();
  if (need_host) {
    std::cerr << "host profile: using the cached probe or measuring it (see 'infermark probe')\n";
    db.add(make_host_profile(load_or_measure_probe(g.results_dir, false).to_json()));
  }
  for (const auto& t : targets) (void)db.get(t);
  (void)db.get(opt.reference);

  // Host fractions: needed by portable mode, shown beside the estimates whenever available.
  std::filesystem::path rf = f->results.empty() ? newest_run_file(g.results_dir) : std::filesystem::path(f->results);
  if (!f->results.empty() && !std::filesystem::exists(rf))
    throw std::invalid_argument(fmt::format("results file '{}' does not exist", rf.string()));
  if (!rf.empty()) {
    try {
      opt.host = aggregate_host_fractions(host_cases_from_results(rf));
      opt.host_source = rf.filename().string();
    } catch (const std::exception& e) {
      if (!f->results.empty() || opt.mode == estimate_mode::portable) throw;
      std::cerr << "note: host fractions unavailable (" << e.what() << ")\n";
    }
  }
  if (opt.mode == estimate_mode::portable && opt.host.empty())
    throw std::invalid_argument(fmt::format("portable mode needs the host's measured roofline fractions and {} holds "
                                            "no usable results: run 'infermark run' first (or pass --results FILE)",
                                            rf.empty() ? g.results_dir + " (no run-*.json)" : rf.string()));

  const std::filesystem::path cal = profiles_dir() / "calibration";
  const efficiency_model model(db, load_calibration(cal), load_overheads(cal));
  return estimate(db, model, targets, opt);
}

}  // namespace

nlohmann::json default_estimate_tables(const global_options& g, const std::filesystem::path& results_file,
                                       std::ostream& out) {
  // The main job's tables: DeepSeek-V3 decode and prefill, Qwen3-30B-A3B decode, every profile, the
  // calibrated model, host fractions from this run.
  struct request {
    const char* workload;
    const char* phase;
    std::int64_t batch, context;
  };
  constexpr request requests[] = {{"deepseek-v3", "decode", 128, 4096},
                                  {"deepseek-v3", "prefill", 4, 4096},
                                  {"qwen3-30b-a3b", "decode", 128, 4096}};
  nlohmann::json all = nlohmann::json::array();
  for (const auto& rq : requests) {
    estimate_flags f;
    f.workload = rq.workload;
    f.phase = rq.phase;
    f.batch = rq.batch;
    f.context = rq.context;
    f.results = results_file.string();
    out << fmt::format("\n== estimate: {} {}, batch {}, context {} (infermark estimate --workload {} --phase {} "
                       "--batch {} --context {}) ==\n",
                       rq.workload, rq.phase, rq.batch, rq.context, rq.workload, rq.phase, rq.batch, rq.context);
    const estimate_report r = compute_estimate(f, false, false, g);
    print_table(r, f, out);
    all.push_back(r.to_json());
  }
  return all;
}

namespace {

command estimate_command_impl() {
  return {"estimate", "estimate a whole-model workload on hardware profiles: per chip, per watt, per system",
          [](CLI::App& sub, const global_options& g) -> std::function<int()> {
            auto f = std::make_shared<estimate_flags>();
            // Not the slugs themselves: reading the model files here would make a broken one fail every command.
            sub.add_option("--workload", f->workload, "a model of profiles/models, e.g. deepseek-v3 ('infermark list workloads')")->required();
            sub.add_option("--phase", f->phase, "decode | prefill")->capture_default_str();
            sub.add_option("--batch", f->batch, "sequences per step of one instance")->required();
            sub.add_option("--context", f->context, "tokens per sequence (decode: in the cache; prefill: prompt length)")->required();
            sub.add_option("--profiles", f->profiles, "comma-separated profile slugs, or 'all' (every chip and system, and host)")->capture_default_str();
            sub.add_option("--reference", f->reference, "profile whose per-chip and per-watt figures are 1.00")->capture_default_str();
            sub.add_option("--mode", f->mode, "calibrated | portable")->capture_default_str();
            sub.add_option("--dtype", f->dtype, "force the GEMM format: fp32 | bf16 | fp16 | int8 | fp8 (default: each target's best native)");
            sub.add_option("--tp", f->tp, "tensor-parallel degree of attention (and dense FFN)")->capture_default_str();
            sub.add_option("--ep", f->ep, "expert-parallel degree: 1 or tp x attn-dp")->capture_default_str();
            sub.add_option("--attn-dp", f->attn_dp, "data-parallel attention groups")->capture_default_str();
            sub.add_option("--format", f->format, "table | json | csv")->capture_default_str();
            sub.add_option("--results", f->results, "results file for the host fractions (default: newest <results-dir>/run-*.json)");
            sub.add_option("--price-kwh", f->price_kwh, "electricity price per kWh (adds energy cost per million tokens)");
            sub.add_option("--currency", f->currency, "currency label of --price-kwh")->capture_default_str();
            sub.add_option("--subsidy", f->subsidy, "electricity subsidy as a fraction of the bill, in [0, 1)")->capture_default_str();
            return [f, &g, &sub] {
              if (f->format != "table" && f->format != "json" && f->format != "csv")
                throw std::invalid_argument(fmt::format("unknown format '{}'; valid choices: table, json, csv", f->format));
              const estimate_report r = compute_estimate(*f, sub.count("--ep") && !sub.count("--tp") && !sub.count("--attn-dp"),
                                                         sub.count("--ep") || sub.count("--tp") || sub.count("--attn-dp"), g);
              if (f->format == "json") {
                nlohmann::json j = r.to_json();
                if (f->price_kwh > 0) {
                  j["energy"] = {{"price_per_kwh", f->price_kwh}, {"currency", f->currency}, {"subsidy", f->subsidy}};
                  for (auto& e : j["estimates"])
                    if (e.contains("tokens_per_joule") && e["tokens_per_joule"].is_number()) {
                      const double tpj = e["tokens_per_joule"].get<double>();
                      e["energy_cost_per_mtok"] = energy_cost_per_mtok(tpj, f->price_kwh, f->subsidy);
                      e["energy_cost_per_mtok_unsubsidised"] = energy_cost_per_mtok(tpj, f->price_kwh, 0);
                    }
                }
                std::cout << j.dump(2) << "\n";
              } else if (f->format == "csv") {
                print_csv(r, *f, std::cout);
              } else {
                print_table(r, *f, std::cout);
              }
              return 0;
            };
          }};
}

}  // namespace

command estimate_command() { return estimate_command_impl(); }

}  // namespace infermark
