#include "bench/compare/compare.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>

#include "bench/compare/stats.hpp"

namespace infermark {

correction parse_correction(const std::string& s) {
  if (s == "holm") return correction::holm;
  if (s == "bh") return correction::benjamini_hochberg;
  if (s == "none") return correction::none;
  throw std::invalid_argument(fmt::format("unknown correction '{}'; valid choices: holm, bh, none", s));
}

const char* to_string(correction c) {
  switch (c) {
    case correction::holm: return "Holm";
    case correction::benjamini_hochberg: return "Benjamini-Hochberg";
    case correction::none: return "no";
  }
  return "?";
}

const char* to_string(verdict v) {
  switch (v) {
    case verdict::improved: return "improved";
    case verdict::regressed: return "regressed";
    case verdict::unchanged: return "unchanged";
    case verdict::inconclusive: return "inconclusive";
    case verdict::only_base: return "only in base";
    case verdict::only_new: return "only in new";
  }
  return "?";
}

double parse_fraction(const std::string& s, const char* what) {
  std::string t = s;
  bool percent = false;
  if (!t.empty() && t.back() == '%') {
    percent = true;
    t.pop_back();
  }
  double v = 0;
  std::size_t used = 0;
  try {
    v = std::stod(t, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (t.empty() || used != t.size() || !std::isfinite(v))
    throw std::invalid_argument(fmt::format("{} '{}' is not a number; write e.g. 5% or 0.05", what, s));
  if (percent) v /= 100.0;
  else if (v >= 1)
    throw std::invalid_argument(fmt::format("{} '{}' is ambiguous; write a percentage (e.g. {}%) or a fraction "
                                            "below 1 (e.g. 0.05)", what, s, s));
  if (!(v > 0 && v < 1))
    throw std::invalid_argument(fmt::format("{} '{}' is out of range; it must be above 0% and below 100%", what, s));
  return v;
}

int comparison::count(verdict v) const {
  return static_cast<int>(std::count_if(cases.begin(), cases.end(), [&](const case_comparison& c) { return c.v == v; }));
}

int comparison::exit_code() const {
  if (count(verdict::regressed) > 0) return 1;
  if (count(verdict::inconclusive) > 0) return 3;
  return 0;
}

std::string comparison::summary() const {
  std::string s = fmt::format("{} regressed, {} improved, {} unchanged, {} inconclusive", count(verdict::regressed),
                              count(verdict::improved), count(verdict::unchanged), count(verdict::inconclusive));
  if (const int b = count(verdict::only_base)) s += fmt::format(", {} only in base", b);
  if (const int n = count(verdict::only_new)) s += fmt::format(", {} only in new", n);
  return s + fmt::format(" (exit {})", exit_code());
}

namespace {

std::string pct(double ratio) { return fmt::format("{:+.1f}%", (ratio - 1.0) * 100.0); }

std::string fact_of(const results_set& r, const char* key) {
  if (std::string(key) == "pinning") return r.pinning();
  if (std::string(key) == "repetitions") return r.repetitions();
  if (std::string(key) == "host") return r.context.value("host_name", std::string("unknown"));
  if (std::string(key) == "load_avg") {
    if (r.context.contains("load_avg") && r.context["load_avg"].is_array() && !r.context["load_avg"].empty())
      return fmt::format("{:.2f}", r.context["load_avg"][0].get<double>());
    return "unknown";
  }
  if (std::string(key) == "date") return r.context.value("date", std::string("unknown"));
  return r.fact(key);
}

// Facts shown side by side; those marked `must_match` are noise-control settings that make timings
// incomparable when they differ.
struct fact_spec {
  const char* name;
  const char* key;
  bool must_match;
};
constexpr fact_spec kFacts[] = {
    {"git revision", "/build/git_revision", false}, {"date", "date", false},
    {"host", "host", false},                        {"load average (1 min)", "load_avg", false},
    {"suite", "/suite", false},                     {"mode", "/mode", true},
    {"repetitions", "repetitions", true},           {"pinning", "pinning", true},
    {"backend", "/backend", true},                  {"threads", "/threads", true},
    {"effective ISA", "/isa/effective", true},      {"build type", "/build/build_type", true},
    {"compiler", "/build/compiler", true},          {"sanitizer", "/build/sanitizer", true},
};

void compare_time_case(case_comparison& cc, const compare_options& opt) {
  std::vector<double> lb, ln;
  for (double v : cc.base) lb.push_back(std::log(v));
  for (double v : cc.next) ln.push_back(std::log(v));
  const auto hl = stats::hodges_lehmann(lb, ln, opt.alpha);
  const auto mw = stats::mann_whitney_u(lb, ln);
  cc.ratio = std::exp(hl.estimate);
  cc.ci_available = hl.ci_available;
  cc.ratio_lo = hl.ci_available ? std::exp(hl.lower) : 0.0;
  cc.ratio_hi = hl.ci_available ? std::exp(hl.upper) : INFINITY;
  cc.ci_confidence = hl.confidence;
  cc.p = mw.p;
  cc.p_exact = mw.exact;
}

// The verdict once p_adjusted is known (time tier).
void decide_time(case_comparison& cc, const compare_options& opt) {
  const double up = 1.0 + opt.threshold, down = 1.0 / (1.0 + opt.threshold);
  const int need = stats::min_repetitions_for(opt.alpha);
  const std::string thr = fmt::format("{:.3g}%", opt.threshold * 100);
  if (cc.base.size() < 2 || cc.next.size() < 2 || !cc.ci_available) {
    cc.v = verdict::inconclusive;
    cc.reason = fmt::format("too few repetitions ({} base, {} new): at least {} per side are needed for a "
                            "{:.0f}% confidence interval, more when many cases are compared (e.g. --repetitions 10)",
                            cc.base.size(), cc.next.size(), need, (1 - opt.alpha) * 100);
    return;
  }
  if (cc.cv_base > opt.max_cv || cc.cv_new > opt.max_cv) {
    cc.v = verdict::inconclusive;
    cc.reason = fmt::format("too noisy: coefficient of variation {:.1f}% (base) / {:.1f}% (new) exceeds --max-cv "
                            "{:.3g}%; quiet the machine, pin threads, or use the A/B mode",
                            cc.cv_base * 100, cc.cv_new * 100, opt.max_cv * 100);
    return;
  }
  const bool significant = cc.p_adjusted < opt.alpha;
  const std::string ci = fmt::format("CI [{}, {}]", pct(cc.ratio_lo), pct(cc.ratio_hi));
  if (cc.ratio_lo >= up && significant) {
    cc.v = verdict::regressed;
    cc.reason = fmt::format("slower by {} ({}), beyond the {} threshold, p_adj {:.2g}", pct(cc.ratio), ci, thr,
                            cc.p_adjusted);
  } else if (cc.ratio_hi <= down && significant) {
    cc.v = verdict::improved;
    cc.reason = fmt::format("faster: {} ({}), beyond the {} threshold, p_adj {:.2g}", pct(cc.ratio), ci, thr,
                            cc.p_adjusted);
  } else if (cc.ratio_lo > down && cc.ratio_hi < up) {
    cc.v = verdict::unchanged;
    cc.reason = fmt::format("{} within ±{}", ci, thr);
  } else {
    cc.v = verdict::inconclusive;
    if (cc.ratio_lo >= up || cc.ratio_hi <= down)
      cc.reason = fmt::format("{} is beyond the {} threshold but not significant after {} correction (p_adj {:.2g} "
                              ">= alpha {}); add repetitions", ci, thr, to_string(opt.corr), cc.p_adjusted, opt.alpha);
    else
      cc.reason = fmt::format("{} straddles the ±{} threshold: cannot tell whether the change matters; add "
                              "repetitions or use the A/B mode", ci, thr);
  }
}

void decide_callgrind(case_comparison& cc, const compare_options& opt) {
  cc.ratio = cc.new_median / cc.base_median;
  cc.ratio_lo = cc.ratio_hi = cc.ratio;
  cc.ci_available = true;
  cc.ci_confidence = 1;
  cc.p = cc.p_adjusted = cc.ratio == 1 ? 1.0 : 0.0;
  const std::string thr = fmt::format("{:.3g}%", opt.threshold * 100);
  if (cc.ratio >= 1.0 + opt.threshold) {
    cc.v = verdict::regressed;
    cc.reason = fmt::format("{} instructions, beyond the {} threshold", pct(cc.ratio), thr);
  } else if (cc.ratio <= 1.0 / (1.0 + opt.threshold)) {
    cc.v = verdict::improved;
    cc.reason = fmt::format("{} instructions, beyond the {} threshold", pct(cc.ratio), thr);
  } else {
    cc.v = verdict::unchanged;
    cc.reason = fmt::format("{} instructions, within ±{}", pct(cc.ratio), thr);
  }
}

}  // namespace

comparison compare_results(const results_set& base, const results_set& next, const compare_options& opt) {
  if (!(opt.threshold > 0 && opt.threshold < 1) || !(opt.alpha > 0 && opt.alpha < 1) || !(opt.max_cv > 0))
    throw std::invalid_argument(fmt::format("compare options out of range: threshold {}, alpha {}, max-cv {}",
                                            opt.threshold, opt.alpha, opt.max_cv));
  if (base.tier != next.tier)
    throw std::invalid_argument(fmt::format("'{}' holds {} results but '{}' holds {} results; compare like with like",
                                            base.label, to_string(base.tier), next.label, to_string(next.tier)));
  comparison c;
  c.tier = base.tier;
  c.opt = opt;
  c.base_label = base.label;
  c.new_label = next.label;
  c.base_fingerprint = base.fingerprint.value_or("unknown");
  c.new_fingerprint = next.fingerprint.value_or("unknown");

  // Machines: timings are only comparable on the same machine. Instruction counts do not depend on the
  // machine's speed, so the callgrind tier only reports the fingerprints.
  if (base.fingerprint && next.fingerprint && *base.fingerprint != *next.fingerprint) {
    if (c.tier == metric_tier::time && !opt.allow_different_machines)
      throw std::invalid_argument(fmt::format(
          "'{}' was measured on machine fingerprint {} and '{}' on {}: timings from different machines are not "
          "comparable. Pass --allow-different-machines to compare them anyway", base.label, *base.fingerprint,
          next.label, *next.fingerprint));
    c.different_machines = c.tier == metric_tier::time;
    c.warnings.push_back(
        c.tier == metric_tier::time
            ? fmt::format("DIFFERENT MACHINES: fingerprint {} vs {}, compared anyway (--allow-different-machines); "
                          "the ratios include the machine difference", *base.fingerprint, *next.fingerprint)
            : fmt::format("instruction counts from machine fingerprints {} and {}: comparable only when the "
                          "compiler and the ISA cap match", *base.fingerprint, *next.fingerprint));
  }
  for (const auto* r : {&base, &next})
    if (!r->fingerprint)
      c.warnings.push_back(fmt::format("fingerprint unknown for '{}' ({}): cannot check that both files come from "
                                       "the same machine", r->label,
                                       r->infermark ? "no fingerprint recorded" : "plain Google Benchmark JSON"));

  // Noise control: the settings that must match, side by side.
  for (const auto& f : kFacts) {
    const std::string b = fact_of(base, f.key), n = fact_of(next, f.key);
    c.facts.push_back({f.name, {b, n}});
    if (f.must_match && b != n && b != "unknown" && n != "unknown")
      c.warnings.push_back(fmt::format("{} differs: {} (base) vs {} (new)", f.name, b, n));
  }
  for (const auto* r : {&base, &next}) {
    if (r->fact("/interrupted") == "true")
      c.warnings.push_back(fmt::format("'{}' is from an interrupted run (partial results)", r->label));
    if (const auto failed = r->fact("/summary/failed"); failed != "unknown" && failed != "0")
      c.warnings.push_back(fmt::format("'{}' records {} failed verification(s): those cases were not timed", r->label,
                                       failed));
    if (r->infermark && r->fact("/build/build_type") != "unknown" && r->fact("/build/build_type") != "Release")
      c.warnings.push_back(fmt::format("'{}' comes from a {} build", r->label, r->fact("/build/build_type")));
    for (const auto& note : r->notes) c.warnings.push_back(note);
  }

  // Pair the cases.
  for (const auto& b : base.cases) {
    case_comparison cc;
    cc.name = b.name;
    cc.base = b.values;
    const case_samples* n = next.find(b.name);
    if (n == nullptr) {
      cc.v = verdict::only_base;
      cc.reason = fmt::format("not in '{}'", next.label);
      if (!cc.base.empty()) cc.base_median = stats::median(cc.base);
      c.cases.push_back(std::move(cc));
      continue;
    }
    cc.next = n->values;
    c.cases.push_back(std::move(cc));
  }
  for (const auto& n : next.cases)
    if (base.find(n.name) == nullptr) {
      case_comparison cc;
      cc.name = n.name;
      cc.next = n.values;
      cc.v = verdict::only_new;
      cc.reason = fmt::format("not in '{}'", base.label);
      if (!cc.next.empty()) cc.new_median = stats::median(cc.next);
      c.cases.push_back(std::move(cc));
    }
  const auto paired = std::count_if(c.cases.begin(), c.cases.end(), [](const case_comparison& x) {
    return x.v != verdict::only_base && x.v != verdict::only_new;
  });
  if (paired == 0)
    throw std::invalid_argument(fmt::format("'{}' and '{}' have no case in common (by run_name)", base.label, next.label));

  std::vector<std::size_t> tested;
  for (std::size_t i = 0; i < c.cases.size(); ++i) {
    auto& cc = c.cases[i];
    if (cc.v == verdict::only_base || cc.v == verdict::only_new) continue;
    if (cc.base.empty() || cc.next.empty()) {
      cc.v = verdict::inconclusive;
      cc.reason = "only aggregates recorded: no repetitions to compare (record the individual repetitions)";
      continue;
    }
    cc.base_median = stats::median(cc.base);
    cc.new_median = stats::median(cc.next);
    cc.cv_base = stats::coefficient_of_variation(cc.base);
    cc.cv_new = stats::coefficient_of_variation(cc.next);
    if (c.tier == metric_tier::callgrind) {
      decide_callgrind(cc, opt);
      if (cc.cv_base > 1e-3 || cc.cv_new > 1e-3)
        c.warnings.push_back(fmt::format("{}: instruction counts vary between repetitions (CV {:.2f}% / {:.2f}%)",
                                         cc.name, cc.cv_base * 100, cc.cv_new * 100));
      continue;
    }
    compare_time_case(cc, opt);
    if (cc.base.size() >= 2 && cc.next.size() >= 2) tested.push_back(i);
  }
  if (c.tier == metric_tier::time) {
    std::vector<double> ps;
    for (auto i : tested) ps.push_back(c.cases[i].p);
    const auto adj = opt.corr == correction::holm ? stats::holm(ps)
                     : opt.corr == correction::benjamini_hochberg ? stats::benjamini_hochberg(ps)
                                                                   : ps;
    for (std::size_t k = 0; k < tested.size(); ++k) c.cases[tested[k]].p_adjusted = adj[k];
    for (auto& cc : c.cases)
      if (cc.v != verdict::only_base && cc.v != verdict::only_new && !cc.base.empty() && !cc.next.empty())
        decide_time(cc, opt);
  }
  return c;
}

// ---- rendering ----

namespace {

std::string fmt_value(double v, metric_tier tier) {
  if (tier == metric_tier::callgrind) {
    if (v >= 1e9) return fmt::format("{:.4g}G", v / 1e9);
    if (v >= 1e6) return fmt::format("{:.4g}M", v / 1e6);
    if (v >= 1e3) return fmt::format("{:.4g}k", v / 1e3);
    return fmt::format("{:.0f}", v);
  }
  if (v >= 1) return fmt::format("{:.3f}s", v);
  if (v >= 1e-3) return fmt::format("{:.3f}ms", v * 1e3);
  if (v >= 1e-6) return fmt::format("{:.3f}us", v * 1e6);
  return fmt::format("{:.1f}ns", v * 1e9);
}

bool paired(const case_comparison& cc) { return cc.v != verdict::only_base && cc.v != verdict::only_new; }
bool has_numbers(const case_comparison& cc) { return paired(cc) && !cc.base.empty() && !cc.next.empty(); }

std::string change_cell(const comparison& c, const case_comparison& cc) {
  if (!has_numbers(cc)) return "-";
  if (c.tier == metric_tier::callgrind) return pct(cc.ratio);
  if (!cc.ci_available) return pct(cc.ratio) + " [no CI]";
  return fmt::format("{} [{}, {}]", pct(cc.ratio), pct(cc.ratio_lo), pct(cc.ratio_hi));
}

std::string p_cell(const comparison& c, const case_comparison& cc) {
  if (!has_numbers(cc) || c.tier == metric_tier::callgrind || cc.base.size() < 2 || cc.next.size() < 2) return "-";
  return fmt::format("{:.2g}", cc.p_adjusted);
}

std::string method_line(const comparison& c) {
  if (c.tier == metric_tier::callgrind)
    return fmt::format("callgrind instruction counts (deterministic); threshold ±{:.3g}%", c.opt.threshold * 100);
  return fmt::format("time per iteration; change = Hodges-Lehmann estimate of new/base with its {:.0f}% "
                     "distribution-free CI; p = two-sided Mann-Whitney U, {} correction over {} case(s); threshold "
                     "±{:.3g}%, alpha {}, max CV {:.3g}%",
                     (1 - c.opt.alpha) * 100, to_string(c.opt.corr),
                     std::count_if(c.cases.begin(), c.cases.end(),
                                   [](const case_comparison& x) { return x.base.size() >= 2 && x.next.size() >= 2; }),
                     c.opt.threshold * 100, c.opt.alpha, c.opt.max_cv * 100);
}

}  // namespace

std::string render_table(const comparison& c) {
  std::ostringstream o;
  o << fmt::format("base: {} (fingerprint {})\nnew:  {} (fingerprint {})\n", c.base_label, c.base_fingerprint,
                   c.new_label, c.new_fingerprint);
  o << method_line(c) << "\n";
  for (const auto& w : c.warnings) o << "warning: " << w << "\n";
  std::size_t w = 4;
  for (const auto& cc : c.cases) w = std::max(w, cc.name.size());
  const bool time = c.tier == metric_tier::time;
  o << fmt::format("\n{:<{}}  {:>10}  {:>10}  {:<28} {:>7}  {:>13}  {}\n", "case", w, "base", "new",
                   time ? "change [CI]" : "change", time ? "p_adj" : "", time ? "CV base/new" : "", "verdict");
  for (const auto& cc : c.cases) {
    std::string verdict_text = to_string(cc.v);
    if (cc.v == verdict::regressed || cc.v == verdict::improved) {
      std::transform(verdict_text.begin(), verdict_text.end(), verdict_text.begin(), ::toupper);
    }
    o << fmt::format("{:<{}}  {:>10}  {:>10}  {:<28} {:>7}  {:>13}  {}\n", cc.name, w,
                     cc.base.empty() ? "-" : fmt_value(stats::median(cc.base), c.tier),
                     cc.next.empty() ? "-" : fmt_value(stats::median(cc.next), c.tier), change_cell(c, cc),
                     p_cell(c, cc),
                     time && has_numbers(cc) ? fmt::format("{:.1f}%/{:.1f}%", cc.cv_base * 100, cc.cv_new * 100) : "",
                     verdict_text);
  }
  bool any = false;
  for (const auto& cc : c.cases)
    if (cc.v != verdict::unchanged) {
      if (!any) o << "\n";
      any = true;
      o << fmt::format("  {}: {}: {}\n", cc.name, to_string(cc.v), cc.reason);
    }
  o << "\n" << c.summary() << "\n";
  return o.str();
}

std::string render_markdown(const comparison& c) {
  std::ostringstream o;
  const int reg = c.count(verdict::regressed), inc = c.count(verdict::inconclusive);
  const std::string headline = reg > 0   ? fmt::format("{} regression{}", reg, reg == 1 ? "" : "s")
                               : inc > 0 ? fmt::format("no regression found, {} inconclusive", inc)
                                         : "no regression";
  o << fmt::format("### infermark compare ({} tier): {}\n\n", to_string(c.tier), headline);
  if (c.different_machines)
    o << fmt::format("> **Different machines** (fingerprint `{}` vs `{}`), compared because "
                     "`--allow-different-machines` was given.\n\n", c.base_fingerprint, c.new_fingerprint);
  o << "| case | base | new | change | p (adj.) | verdict |\n|---|---:|---:|---|---:|---|\n";
  for (const auto& cc : c.cases) {
    const std::string v = to_string(cc.v);
    const bool bold = cc.v == verdict::regressed || cc.v == verdict::improved;
    o << fmt::format("| `{}` | {} | {} | {} | {} | {} |\n", cc.name,
                     cc.base.empty() ? "-" : fmt_value(stats::median(cc.base), c.tier),
                     cc.next.empty() ? "-" : fmt_value(stats::median(cc.next), c.tier), change_cell(c, cc),
                     p_cell(c, cc), bold ? "**" + v + "**" : v);
  }
  o << "\n" << c.summary() << "\n";
  bool any = false;
  for (const auto& cc : c.cases)
    if (cc.v != verdict::unchanged) {
      if (!any) o << "\n";
      any = true;
      o << fmt::format("- `{}`: {}: {}\n", cc.name, to_string(cc.v), cc.reason);
    }
  if (!c.warnings.empty()) {
    o << "\n";
    for (const auto& w : c.warnings) o << "> warning: " << w << "\n";
  }
  o << "\n<details><summary>Method and context</summary>\n\n" << method_line(c) << "\n\n";
  o << fmt::format("| | base | new |\n|---|---|---|\n| file | `{}` | `{}` |\n| fingerprint | `{}` | `{}` |\n",
                   c.base_label, c.new_label, c.base_fingerprint, c.new_fingerprint);
  for (const auto& [name, v] : c.facts) o << fmt::format("| {} | {} | {} |\n", name, v.first, v.second);
  o << "\n</details>\n";
  return o.str();
}

nlohmann::json to_json(const comparison& c) {
  nlohmann::json j;
  j["tier"] = to_string(c.tier);
  j["base"] = {{"file", c.base_label}, {"fingerprint", c.base_fingerprint}};
  j["new"] = {{"file", c.new_label}, {"fingerprint", c.new_fingerprint}};
  j["different_machines"] = c.different_machines;
  j["options"] = {{"threshold", c.opt.threshold}, {"alpha", c.opt.alpha}, {"max_cv", c.opt.max_cv},
                  {"correction", to_string(c.opt.corr)}, {"allow_different_machines", c.opt.allow_different_machines}};
  j["warnings"] = c.warnings;
  for (const auto& [name, v] : c.facts) j["facts"][name] = {{"base", v.first}, {"new", v.second}};
  j["cases"] = nlohmann::json::array();
  for (const auto& cc : c.cases) {
    nlohmann::json e = {{"name", cc.name}, {"verdict", to_string(cc.v)}, {"reason", cc.reason},
                        {"base_values", cc.base}, {"new_values", cc.next}};
    if (has_numbers(cc)) {
      e["base_median"] = cc.base_median;
      e["new_median"] = cc.new_median;
      e["ratio"] = cc.ratio;
      if (cc.ci_available) {
        e["ratio_ci"] = {cc.ratio_lo, cc.ratio_hi};
        e["ci_confidence"] = cc.ci_confidence;
      } else {
        e["ratio_ci"] = nullptr;
      }
      if (c.tier == metric_tier::time) {
        e["p"] = cc.p;
        e["p_adjusted"] = cc.p_adjusted;
        e["p_exact"] = cc.p_exact;
      }
      e["cv_base"] = cc.cv_base;
      e["cv_new"] = cc.cv_new;
    }
    j["cases"].push_back(e);
  }
  j["summary"] = {{"regressed", c.count(verdict::regressed)}, {"improved", c.count(verdict::improved)},
                  {"unchanged", c.count(verdict::unchanged)}, {"inconclusive", c.count(verdict::inconclusive)},
                  {"only_base", c.count(verdict::only_base)}, {"only_new", c.count(verdict::only_new)},
                  {"exit_code", c.exit_code()}};
  return j;
}

nlohmann::json to_bmf(const comparison& c) {
  nlohmann::json j = nlohmann::json::object();
  const bool time = c.tier == metric_tier::time;
  const double scale = time ? 1e9 : 1.0;  // Bencher's built-in latency measure is in nanoseconds
  for (const auto& cc : c.cases) {
    if (cc.next.empty()) continue;
    const auto [mn, mx] = std::minmax_element(cc.next.begin(), cc.next.end());
    j[cc.name][time ? "latency" : "instructions"] = {{"value", stats::median(cc.next) * scale},
                                                     {"lower_value", *mn * scale},
                                                     {"upper_value", *mx * scale}};
  }
  return j;
}

nlohmann::json to_github_benchmark(const comparison& c) {
  nlohmann::json j = nlohmann::json::array();
  const bool time = c.tier == metric_tier::time;
  const double scale = time ? 1e9 : 1.0;
  for (const auto& cc : c.cases) {
    if (cc.next.empty()) continue;
    const auto [mn, mx] = std::minmax_element(cc.next.begin(), cc.next.end());
    std::string extra = fmt::format("median of {} repetitions", cc.next.size());
    if (has_numbers(cc)) extra += fmt::format("; vs base: {} ({})", change_cell(c, cc), to_string(cc.v));
    j.push_back({{"name", cc.name},
                 {"unit", time ? "ns" : "instructions"},
                 {"value", stats::median(cc.next) * scale},
                 {"range", fmt::format("± {:.4g}", (*mx - *mn) / 2 * scale)},
                 {"extra", extra}});
  }
  return j;
}

}  // namespace infermark
