#include "profiles/model/estimate.hpp"

#include <algorithm>
#include <cmath>
#include <set>

#include <fmt/format.h>

namespace infermark {

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

bool is_unsupported(const profile& p, std::string_view dt) {
  return std::find(p.unsupported.begin(), p.unsupported.end(), dt) != p.unsupported.end();
}

// The dense peak in FLOP/s; a missing unit is not estimable, like an unknown figure.
double peak_flops(const profile& chip, const std::string& dt) {
  const auto pk = chip.peak(dt);  // throws not_estimable when unknown
  if (!pk) throw not_estimable(chip.slug, "peak." + dt, "the chip has no such unit");
  return *pk * 1e12;
}

struct eta_set {
  double p50, fast, slow;  // fast: the P90 factor (short time), slow: the P10 factor
  std::string provenance;
  provenance_kind kind = provenance_kind::assumed;
};

}  // namespace

std::string_view to_string(estimate_mode m) { return m == estimate_mode::calibrated ? "calibrated" : "portable"; }

estimate_mode parse_estimate_mode(std::string_view name) {
  if (name == "calibrated") return estimate_mode::calibrated;
  if (name == "portable") return estimate_mode::portable;
  throw std::invalid_argument(fmt::format("unknown mode '{}'; valid choices: calibrated, portable", name));
}

host_fractions aggregate_host_fractions(const std::vector<host_case>& cases) {
  std::map<kernel_class, std::vector<const host_case*>> by;
  for (const auto& c : cases) {
    if (!std::isfinite(c.fraction) || c.fraction <= 0 || c.fraction > 1.5)
      throw std::invalid_argument(fmt::format("host case '{}': roofline fraction {} is outside (0, 1.5]", c.descriptor, c.fraction));
    by[c.kclass].push_back(&c);
  }
  host_fractions out;
  for (const auto& [k, v] : by) {
    host_class_fraction f;
    std::vector<double> fr;
    for (const auto* c : v) {
      fr.push_back(c->fraction);
      f.cases.push_back(c->descriptor);
    }
    f.fraction = median(fr);
    f.lo = *std::min_element(fr.begin(), fr.end());
    f.hi = *std::max_element(fr.begin(), fr.end());
    out[k] = std::move(f);
  }
  return out;
}

dtype_choice choose_dtypes(const profile& chip, const std::optional<std::string>& forced) {
  dtype_choice d;
  const bool host_without_bf16 = is_unsupported(chip, "bf16");
  d.aux_peak = host_without_bf16 ? "fp32" : "bf16";
  if (forced) {
    (void)storage_dtype(*forced);  // validates the name
    d.gemm_peak = *forced;
    if (*forced == "fp32" || *forced == "bf16" || *forced == "fp16") d.aux_peak = *forced;
  } else if (chip.has("peak.fp8")) {
    d.gemm_peak = "fp8";  // Hopper / Blackwell (DeepGEMM-style block-scaled FP8)
  } else if (chip.vendor == "Huawei" && chip.has("peak.int8")) {
    d.gemm_peak = "int8";  // Ascend: no FP8 unit; W8A8 INT8 is what DeepSeek serving uses there
  } else {
    d.gemm_peak = host_without_bf16 ? "fp32" : "bf16";
  }
  d.gemm_dt = storage_dtype(d.gemm_peak);
  d.aux_dt = storage_dtype(d.aux_peak);
  return d;
}

double memory_per_chip_gb(const workload_request& r, const dtype_choice& dt) {
  const workload_plan plan = decompose(r, dt);
  return (plan.weight_bytes_per_chip + plan.kv_bytes_per_chip) / 1e9;
}

std::optional<parallel_config> smallest_fitting_config(workload_request r, const dtype_choice& dt, double capacity_gb,
                                                       int max_chips) {
  const model_config& m = find_model(r.model);
  for (int n = 1; n <= max_chips; n *= 2) {
    parallel_config c;
    if (m.moe()) {
      int dp = 1;
      while (dp * 2 <= n && r.batch % (dp * 2) == 0) dp *= 2;
      c = {n / dp, n > 1 ? n : 1, dp};
    } else {
      c = {n, 1, 1};
    }
    r.par = c;
    try {
      validate(r);
    } catch (const std::invalid_argument&) {
      continue;
    }
    if (memory_per_chip_gb(r, dt) <= capacity_gb) return c;
  }
  return std::nullopt;
}

std::string parallel_flags(const parallel_config& c) {
  if (c.ep > 1) return c.tp == 1 && c.attn_dp == c.ep ? fmt::format("--ep {}", c.ep) : fmt::format("--tp {} --ep {} --attn-dp {}", c.tp, c.ep, c.attn_dp);
  if (c.attn_dp > 1) return fmt::format("--tp {} --attn-dp {}", c.tp, c.attn_dp);
  return fmt::format("--tp {}", c.tp);
}

double energy_cost_per_mtok(double tokens_per_joule, double price_per_kwh, double subsidy) {
  if (!(price_per_kwh > 0)) throw std::invalid_argument(fmt::format("price per kWh {} is out of range; valid: > 0", price_per_kwh));
  if (!(subsidy >= 0 && subsidy < 1))
    throw std::invalid_argument(fmt::format("subsidy {} is out of range; valid: a fraction of the bill in [0, 1)", subsidy));
  if (!(tokens_per_joule > 0)) throw std::invalid_argument("energy cost: tokens per joule must be > 0");
  const double kwh = 1e6 / tokens_per_joule / 3.6e6;
  return kwh * price_per_kwh * (1 - subsidy);
}

target_estimate estimate_target(const profile_db& db, const efficiency_model& model, const profile& target,
                                const estimate_options& opt) {
  target_estimate e;
  e.profile = target.slug;
  e.kind = std::string(to_string(target.kind));
  e.name = target.name;
  const profile& chip = db.chip_of(target);
  try {
    const dtype_choice dt = choose_dtypes(chip, opt.dtype);
    e.dtype = dt.gemm_peak;
    e.aux_dtype = dt.aux_peak;
    if (chip.has("memory.capacity")) e.capacity_gb = chip.at("memory.capacity").value;
    // Memory: weights + KV per chip against the chip's capacity. A system runs at the smallest config that
    // fits when none was asked for; one that was asked for and does not fit is an error; a chip that does not
    // fit keeps its figures with a warning (the per-chip rate as if the weights were resident).
    workload_request req = opt.request;
    const double need = memory_per_chip_gb(req, dt);
    const bool system = target.kind == profile_kind::system;
    if (e.capacity_gb && need > *e.capacity_gb && system) {
      const auto fit = smallest_fitting_config(req, dt, *e.capacity_gb, target.count);
      const std::string does_not = fmt::format("does not fit: needs {:.0f} GB per chip at tp {} ep {} attn-dp {}, has {:.0f} GB",
                                               need, req.par.tp, req.par.ep, req.par.attn_dp, *e.capacity_gb);
      if (!opt.fit_systems || !fit) {
        e.error = fit ? fmt::format("{} (smallest that fits: {})", does_not, parallel_flags(*fit))
                      : fmt::format("{}; nothing fits within its {} chips", does_not, target.count);
        return e;
      }
      req.par = *fit;
      e.parallel_note = fmt::format("{} needs {:.0f} GB per chip at tp 1 ep 1, has {:.0f} GB: estimated at {}, the smallest "
                                    "{} that fits ({:.0f} GB per chip)", target.slug, need, *e.capacity_gb, parallel_flags(*fit),
                                    fit->ep > 1 ? "expert-parallel degree" : "tensor-parallel degree", memory_per_chip_gb(req, dt));
    }
    e.parallel = fmt::format("tp {} ep {} attn-dp {}", req.par.tp, req.par.ep, req.par.attn_dp);
    const workload_plan plan = decompose(req, dt);
    const int chips = plan.chips;
    e.memory_gb = (plan.weight_bytes_per_chip + plan.kv_bytes_per_chip) / 1e9;
    if (e.capacity_gb && e.memory_gb > *e.capacity_gb) {
      const auto fit = smallest_fitting_config(req, dt, *e.capacity_gb, 1024);
      e.warning = fmt::format("does not fit: needs {:.0f} GB per chip, has {:.0f} GB ({}); figures assume the weights "
                              "were resident", e.memory_gb, *e.capacity_gb,
                              fit ? "smallest that fits: " + parallel_flags(*fit) : std::string("nothing up to 1024 chips fits"));
    }
    const overhead_choice oh = model.overhead(chip.slug);
    const double op_overhead_s = opt.op_overhead_s ? *opt.op_overhead_s : oh.seconds;
    const std::string regime = req.ph == phase::decode ? "low-latency" : "normal";

    // Which link the collectives use: scale-up when the instance fits in one scale-up domain.
    bool has_comm = false;
    for (const auto& g : plan.groups)
      for (const auto& o : g.ops) has_comm |= o.link_bytes > 0;
    bound_kind link_bound = bound_kind::scale_up;
    double link_bw = 0;
    e.link = "none";
    if (has_comm) {
      const profile& dom = target.kind == profile_kind::system && target.has("scale_up.domain") ? target : chip;
      const double domain = dom.at("scale_up.domain").value;
      link_bound = chips <= domain ? bound_kind::scale_up : bound_kind::scale_out;
      e.link = std::string(to_string(link_bound));
      link_bw = chip.at(link_bound == bound_kind::scale_up ? "scale_up.bandwidth" : "scale_out.bandwidth").value * 1e9;
    }
    const double bw = chip.at("memory.bandwidth").value * 1e12;

    std::map<std::string, std::string> prov;  // key -> description (deduplicated)
    std::map<provenance_kind, int> kinds;
    auto eta = [&](kernel_class k, const std::string& dtn, bound_kind b, int group = 0) {
      // Collectives: EP-size-aware, in the phase's regime (decode: low-latency kernels; prefill: normal).
      const efficiency_factor f =
          k == kernel_class::all_to_all
              ? model.factor(chip.slug, k, dtn, b, group > 0 ? std::optional<double>(group) : std::nullopt, regime)
              : model.factor(chip.slug, k, dtn, b);
      const std::string key = fmt::format("{}/{}/{}{}", to_string(k), to_string(b), dtn,
                                          k == kernel_class::all_to_all ? fmt::format("/{}{}", regime, group > 0 ? fmt::format("/n{}", group) : "") : "");
      if (prov.emplace(key, f.describe()).second) ++kinds[f.provenance];
      return eta_set{f.eta, f.p90, f.p10, f.describe(), f.provenance};
    };
    const bool portable = opt.mode == estimate_mode::portable;
    std::set<std::string> portable_missing;

    // The host's achieved fraction over this workload: roofline time / host-fraction-scaled time.
    double host_roof = 0, host_real = 0;
    bool host_complete = !opt.host.empty();

    std::map<std::string, double> bound_time;
    double step50 = 0, step10 = 0, step90 = 0;
    std::size_t rep = 0;
    for (std::size_t gi = 0; gi < plan.groups.size(); ++gi)
      if (plan.groups[gi].kind != "head" && plan.groups[gi].count > plan.groups[rep].count) rep = gi;
    for (const auto& g : plan.groups) {
      group_time gt;
      gt.kind = g.kind;
      gt.count = g.count;
      for (const auto& o : g.ops) {
        op_time t;
        t.name = o.name;
        t.kclass = o.kclass;
        t.dtype = o.link_bytes > 0 ? o.link_dtype : o.peak;
        t.flops = o.flops, t.bytes = o.bytes, t.link_bytes = o.link_bytes;
        if (o.kclass == kernel_class::all_to_all) {
          const eta_set l = eta(kernel_class::all_to_all, o.link_dtype, link_bound, o.group);
          const double raw = o.link_bytes / link_bw;
          t.t50 = raw / l.p50 + op_overhead_s;
          t.t10 = raw / l.fast + op_overhead_s;
          t.t90 = raw / l.slow + op_overhead_s;
          t.bound = std::string(to_string(link_bound));
          t.provenance = "link: " + l.provenance;
        } else {
          // Elementwise ops run on the vector units: their compute term uses the fp32 vector peak; where
          // that figure is unknown the term is dropped (they move > 1 byte per FLOP, so memory binds).
          std::optional<double> pk;
          if (o.compute_on_vector) {
            if (chip.has("peak.fp32")) pk = chip.at("peak.fp32").value * 1e12;
          } else {
            pk = peak_flops(chip, o.peak);
          }
          const double roof_c = pk && o.flops > 0 ? o.flops / *pk : 0, roof_m = o.bytes / bw;
          const auto host_it = opt.host.find(o.kclass);
          if (host_it != opt.host.end()) {
            host_roof += std::max(roof_c, roof_m);
            host_real += std::max(roof_c, roof_m) / host_it->second.fraction;
          } else if (o.kclass != kernel_class::elementwise) {
            host_complete = false;
          }
          if (portable && host_it != opt.host.end()) {
            const auto& hf = host_it->second;
            const double roof = std::max(roof_c, roof_m);
            t.t50 = roof / hf.fraction + op_overhead_s;
            t.t10 = roof / hf.hi + op_overhead_s;
            t.t90 = roof / hf.lo + op_overhead_s;
            t.bound = roof_c > roof_m ? "compute" : "memory";
            t.provenance = fmt::format("portable: host fraction {:.3f} of {} case(s)", hf.fraction, hf.cases.size());
          } else {
            if (portable) portable_missing.insert(std::string(to_string(o.kclass)));
            const eta_set em = eta(o.kclass, o.peak, bound_kind::memory);
            double c50 = 0, c10 = 0, c90 = 0;
            if (pk && o.flops > 0) {
              const eta_set ec = eta(o.kclass, o.peak, bound_kind::compute);
              c50 = roof_c / ec.p50, c10 = roof_c / ec.fast, c90 = roof_c / ec.slow;
            }
            const double m50 = roof_m / em.p50, m10 = roof_m / em.fast, m90 = roof_m / em.slow;
            t.t50 = std::max(c50, m50) + op_overhead_s;
            t.t10 = std::max(c10, m10) + op_overhead_s;
            t.t90 = std::max(c90, m90) + op_overhead_s;
            t.bound = c50 > m50 ? "compute" : "memory";
            t.provenance = em.provenance;
            if (o.compute_on_vector && !pk) prov.emplace("elementwise/compute/fp32", "term omitted: peak.fp32 unknown (memory-bound op)");
          }
        }
        gt.t50 += t.t50, gt.t10 += t.t10, gt.t90 += t.t90;
        bound_time[t.bound] += t.t50 * static_cast<double>(g.count);
        gt.ops.push_back(std::move(t));
      }
      step50 += gt.t50 * static_cast<double>(g.count);
      step10 += gt.t10 * static_cast<double>(g.count);
      step90 += gt.t90 * static_cast<double>(g.count);
      e.groups.push_back(std::move(gt));
    }
    e.step_s = step50, e.p10_s = step10, e.p90_s = step90;
    e.layer_s = e.groups[rep].t50;
    e.layer_kind = fmt::format("{} ({} of {})", e.groups[rep].kind, e.groups[rep].count, plan.layers());
    // Per chip: the instance's tokens per step over its chips.
    const double per_chip_tokens = plan.tokens_per_step / chips;
    e.tokens_per_s = per_chip_tokens / step50;
    e.tokens_per_s_p10 = per_chip_tokens / step90;
    e.tokens_per_s_p90 = per_chip_tokens / step10;
    double best = -1;
    for (const auto& [b, t] : bound_time) {
      e.bound_share[b] = t / step50;
      if (t > best) best = t, e.bound = b;
    }
    for (const auto& [k, d] : prov) e.provenance.push_back(k + ": " + d);
    e.provenance.push_back(opt.op_overhead_s ? fmt::format("per-op overhead: {:.1f} us (given by the caller)", op_overhead_s * 1e6)
                                             : "per-op overhead: " + oh.describe());
    if (portable) {
      std::string covered;
      for (const auto& [k, f] : opt.host) covered += (covered.empty() ? "" : ", ") + std::string(to_string(k));
      e.provenance.push_back("portable: host fractions for " + (covered.empty() ? std::string("no class") : covered) +
                             (opt.host_source.empty() ? "" : " from " + opt.host_source));
      for (const auto& k : portable_missing) e.provenance.push_back("portable: no host measurement of " + k + ", calibrated factor used");
    }
    e.provenance_summary = fmt::format("fitted {}, borrowed {}, assumed {}", kinds[provenance_kind::fitted],
                                       kinds[provenance_kind::borrowed], kinds[provenance_kind::assumed]);
    if (portable) e.provenance_summary = "portable (" + e.provenance_summary + " where no host data)";
    if (host_complete && host_real > 0) e.host_fraction = host_roof / host_real;

    // Power: a chip's TDP; a system's all-in power shared over its chips (CPUs, switches, optics included).
    try {
      if (target.kind == profile_kind::system) {
        e.system_count = target.count;
        e.system_power_kw = target.at("power.all_in").value;
        e.power_w = *e.system_power_kw * 1000.0 / target.count;
        e.power_basis = fmt::format("system all-in {} kW / {} chips", *e.system_power_kw, target.count);
      } else {
        e.power_w = chip.at("power.tdp").value;
        e.power_basis = "chip TDP";
      }
      e.tokens_per_joule = e.tokens_per_s / *e.power_w;
    } catch (const not_estimable& ne) {
      e.power_basis = ne.what();
    }
  } catch (const not_estimable& ne) {
    // The row already names the profile: "not estimable: <field> ...", the chip named only when it is
    // a system's chip that lacks the figure.
    std::string msg = ne.what();
    const std::string own = "not estimable: " + target.slug + ": ";
    if (msg.rfind(own, 0) == 0) msg = "not estimable: " + msg.substr(own.size());
    e.error = msg;
    e.warning.reset();
  }
  return e;
}

estimate_report estimate(const profile_db& db, const efficiency_model& model, const std::vector<std::string>& targets,
                         const estimate_options& opt) {
  validate(opt.request);
  if (opt.mode == estimate_mode::portable && opt.host.empty())
    throw std::invalid_argument("portable mode needs the host's measured roofline fractions: run 'infermark run' first "
                                "(or pass --results FILE)");
  estimate_report r;
  r.reference = opt.reference;
  r.mode = opt.mode;
  r.host = opt.host;
  r.host_source = opt.host_source;
  const target_estimate ref = estimate_target(db, model, db.get(opt.reference), opt);
  if (ref.error) throw std::invalid_argument(fmt::format("reference '{}' is not estimable: {}", opt.reference, *ref.error));
  for (const auto& s : targets) (void)db.get(s);  // unknown slugs fail before any work
  for (const auto& s : targets) {
    target_estimate e = s == opt.reference ? ref : estimate_target(db, model, db.get(s), opt);
    if (!e.error) {
      e.relative_per_chip = e.tokens_per_s / ref.tokens_per_s;
      if (e.tokens_per_joule && ref.tokens_per_joule) e.relative_per_watt = *e.tokens_per_joule / *ref.tokens_per_joule;
    }
    r.estimates.push_back(std::move(e));
  }
  const workload_plan plan = decompose(opt.request, choose_dtypes(db.chip_of(db.get(opt.reference)), opt.dtype));
  const model_config& m = *plan.model;
  const param_counts pc = count_params(m);
  r.workload = {{"name", m.slug},
                {"model", m.name},
                {"source", m.source},
                {"phase", std::string(to_string(opt.request.ph))},
                {"batch", opt.request.batch},
                {"context", opt.request.context},
                {"tp", opt.request.par.tp},
                {"ep", opt.request.par.ep},
                {"attn_dp", opt.request.par.attn_dp},
                {"chips_per_instance", plan.chips},
                {"tokens_per_step", plan.tokens_per_step},
                {"layers", m.layers},
                {"total_params", pc.total},
                {"active_params", pc.active},
                {"forced_dtype", opt.dtype ? nlohmann::json(*opt.dtype) : nlohmann::json(nullptr)},
                {"expected_experts_hit_per_chip", plan.expected_experts_hit},
                {"routed_rows_per_chip", plan.routed_rows_per_chip}};
  return r;
}

nlohmann::json target_estimate::to_json() const {
  nlohmann::json j = {{"profile", profile}, {"kind", kind}, {"name", name}};
  if (error) {
    j["error"] = *error;
    return j;
  }
  auto opt = [](const std::optional<double>& v) { return v ? nlohmann::json(*v) : nlohmann::json(nullptr); };
  j["dtype"] = dtype;
  j["aux_dtype"] = aux_dtype;
  j["time_s"] = step_s;
  j["p10"] = p10_s;
  j["p90"] = p90_s;
  j["layer_time_s"] = layer_s;
  j["layer_kind"] = layer_kind;
  j["tokens_per_s"] = tokens_per_s;
  j["tokens_per_s_p10"] = tokens_per_s_p10;
  j["tokens_per_s_p90"] = tokens_per_s_p90;
  j["relative_per_chip"] = relative_per_chip;
  j["power_w"] = opt(power_w);
  j["power_basis"] = power_basis;
  j["tokens_per_joule"] = opt(tokens_per_joule);
  j["relative_per_watt"] = opt(relative_per_watt);
  j["bound"] = bound;
  j["bound_share"] = bound_share;
  j["provenance"] = provenance;
  j["provenance_summary"] = provenance_summary;
  j["link"] = link;
  j["parallel"] = parallel;
  if (!parallel_note.empty()) j["parallel_note"] = parallel_note;
  if (warning) j["warning"] = *warning;
  j["memory_gb_per_chip"] = memory_gb;
  j["capacity_gb"] = opt(capacity_gb);
  j["fits"] = capacity_gb ? nlohmann::json(memory_gb <= *capacity_gb) : nlohmann::json(nullptr);
  j["host_fraction"] = opt(host_fraction);
  if (system_count > 0) {
    j["system_chips"] = system_count;
    j["system_power_kw"] = opt(system_power_kw);
    j["system_tokens_per_s"] = tokens_per_s * system_count;
  }
  nlohmann::json gs = nlohmann::json::array();
  for (const auto& g : groups) {
    nlohmann::json ops = nlohmann::json::array();
    for (const auto& o : g.ops)
      ops.push_back({{"name", o.name}, {"class", std::string(to_string(o.kclass))}, {"dtype", o.dtype}, {"flops", o.flops},
                     {"bytes", o.bytes}, {"link_bytes", o.link_bytes}, {"time_s", o.t50}, {"p10", o.t10}, {"p90", o.t90},
                     {"bound", o.bound}, {"provenance", o.provenance}});
    gs.push_back({{"kind", g.kind}, {"count", g.count}, {"time_s", g.t50}, {"p10", g.t10}, {"p90", g.t90}, {"ops", ops}});
  }
  j["layers"] = gs;
  return j;
}

nlohmann::json estimate_report::to_json() const {
  nlohmann::json es = nlohmann::json::array();
  for (const auto& e : estimates) es.push_back(e.to_json());
  nlohmann::json h = nlohmann::json::object();
  for (const auto& [k, f] : host)
    h[std::string(to_string(k))] = {{"fraction", f.fraction}, {"lo", f.lo}, {"hi", f.hi}, {"cases", f.cases}};
  nlohmann::json j = {{"workload", workload}, {"reference", reference}, {"mode", std::string(to_string(mode))},
                      {"estimates", es}, {"host_fractions", h}};
  if (!host_source.empty()) j["host_source"] = host_source;
  nlohmann::json sys = nlohmann::json::array();
  for (const auto& s : system_view(*this)) {
    sys.push_back({{"profile", s.profile}, {"chips", s.chips}, {"parallel", s.parallel}, {"parallel_note", s.parallel_note},
                   {"tokens_per_s", s.tokens_per_s},
                   {"power_kw", s.power_kw ? nlohmann::json(*s.power_kw) : nlohmann::json(nullptr)},
                   {"tokens_per_joule", s.tokens_per_joule ? nlohmann::json(*s.tokens_per_joule) : nlohmann::json(nullptr)}});
  }
  j["systems"] = sys;
  return j;
}

std::vector<system_row> system_view(const estimate_report& r) {
  std::vector<system_row> out;
  for (const auto& e : r.estimates) {
    if (e.kind != "system" || e.error) continue;
    system_row s;
    s.profile = e.profile;
    s.chips = e.system_count;
    s.parallel = e.parallel;
    s.parallel_note = e.parallel_note;
    s.tokens_per_s = e.tokens_per_s * e.system_count;
    s.power_kw = e.system_power_kw;
    if (s.power_kw) s.tokens_per_joule = s.tokens_per_s / (*s.power_kw * 1000.0);
    out.push_back(s);
  }
  return out;
}

}  // namespace infermark
