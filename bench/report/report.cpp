#include "bench/report/report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <stdexcept>

#include "bench/compare/stats.hpp"
#include "bench/report/svg.hpp"
#include "bench/results.hpp"

namespace infermark::report {
namespace {

using json = nlohmann::json;

// --- reading ----------------------------------------------------------------------------------------

std::optional<double> opt_num(const json& j, const char* key, const std::string& where) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (!it->is_number()) throw std::runtime_error(fmt::format("{}: '{}' is not a number ({})", where, key, it->dump()));
  const double v = it->get<double>();
  if (!std::isfinite(v)) return std::nullopt;
  return v;
}

// A field printed as text: strings as they are, lists joined, objects as "key: value" pairs.
std::string text_of(const json& v) {
  if (v.is_null()) return "";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_array()) {
    std::string out;
    for (const auto& e : v) out += (out.empty() ? "" : "; ") + text_of(e);
    return out;
  }
  if (v.is_object()) {
    std::string out;
    for (const auto& [k, e] : v.items()) out += (out.empty() ? "" : "; ") + k + ": " + text_of(e);
    return out;
  }
  return v.dump();
}

std::string str_field(const json& j, const char* key) {
  const auto it = j.find(key);
  return it == j.end() ? std::string() : text_of(*it);
}

struct entry_group {
  json first;                        // the first entry: the case's descriptive fields
  std::vector<double> seconds;       // iteration entries' real_time in seconds
  std::vector<json> iterations;
  std::optional<json> median;        // the "median" aggregate
  bool correctness = false;
};

estimate_row read_estimate_row(const json& e, const std::string& where) {
  if (!e.is_object()) throw std::runtime_error(fmt::format("{} is not an object", where));
  estimate_row r;
  const auto pit = e.find("profile");
  if (pit == e.end() || !pit->is_string()) throw std::runtime_error(fmt::format("{} has no \"profile\" string", where));
  r.profile = pit->get<std::string>();
  if (const auto it = e.find("error"); it != e.end() && !it->is_null()) {
    r.error = text_of(*it);
    return r;
  }
  const std::string w = fmt::format("{} ('{}')", where, r.profile);
  r.kind = str_field(e, "kind");
  r.name = str_field(e, "name");
  r.dtype = str_field(e, "dtype");
  r.bound = str_field(e, "bound");
  r.provenance_detail = str_field(e, "provenance");
  r.provenance = str_field(e, "provenance_summary");
  if (r.provenance.empty()) r.provenance = r.provenance_detail;
  r.host_fraction = opt_num(e, "host_fraction", w);
  r.time_s = opt_num(e, "time_s", w);
  r.tokens_per_s = opt_num(e, "tokens_per_s", w);
  r.relative_per_chip = opt_num(e, "relative_per_chip", w);
  r.tokens_per_joule = opt_num(e, "tokens_per_joule", w);
  r.relative_per_watt = opt_num(e, "relative_per_watt", w);
  for (const char* k : {"p10", "p90"}) {
    const auto it = e.find(k);
    if (it == e.end() || it->is_null()) continue;
    if (!it->is_number() && !it->is_object())
      throw std::runtime_error(fmt::format("{}: '{}' is neither a number nor an object ({})", w, k, it->dump()));
    (k[1] == '1' ? r.p10 : r.p90) = *it;
  }
  derive_ranges(r);
  return r;
}

estimate_set read_estimate_set(const json& s, const std::string& where) {
  if (!s.is_object()) throw std::runtime_error(fmt::format("{} is not an object", where));
  estimate_set out;
  if (const auto w = s.find("workload"); w != s.end() && w->is_object()) {
    out.workload = str_field(*w, "name");
    out.model = str_field(*w, "model");
    out.phase = str_field(*w, "phase");
    out.batch = str_field(*w, "batch");
    out.context = str_field(*w, "context");
  } else {
    out.workload = str_field(s, "workload");
  }
  out.reference = str_field(s, "reference");
  out.mode = str_field(s, "mode");
  for (const char* k : {"phase", "batch", "context"}) {
    const std::string v = str_field(s, k);
    if (!v.empty()) (k[0] == 'p' ? out.phase : k[0] == 'b' ? out.batch : out.context) = v;
  }
  if (const auto sys = s.find("systems"); sys != s.end() && sys->is_array())
    for (std::size_t i = 0; i < sys->size(); ++i) {
      const json& x = (*sys)[i];
      const std::string w = fmt::format("{}.systems[{}]", where, i);
      if (!x.is_object()) throw std::runtime_error(w + " is not an object");
      out.systems.push_back({str_field(x, "profile"), opt_num(x, "chips", w), opt_num(x, "power_kw", w), opt_num(x, "tokens_per_s", w),
                             opt_num(x, "tokens_per_joule", w)});
    }
  const auto it = s.find("estimates");
  if (it == s.end() || !it->is_array())
    throw std::runtime_error(fmt::format("{} ('{}') has no \"estimates\" list", where, out.workload));
  for (std::size_t i = 0; i < it->size(); ++i)
    out.rows.push_back(read_estimate_row((*it)[i], fmt::format("{}.estimates[{}]", where, i)));
  return out;
}

}  // namespace

void derive_ranges(estimate_row& row) {
  if (row.error) return;
  auto apply = [&](double lo_ratio, double hi_ratio, const std::string& basis) {
    if (lo_ratio > hi_ratio) std::swap(lo_ratio, hi_ratio);
    if (row.relative_per_chip) row.chip_lo = *row.relative_per_chip * lo_ratio, row.chip_hi = *row.relative_per_chip * hi_ratio;
    if (row.relative_per_watt) row.watt_lo = *row.relative_per_watt * lo_ratio, row.watt_hi = *row.relative_per_watt * hi_ratio;
    row.range_basis = basis;
  };
  const json& a = row.p10;
  const json& b = row.p90;
  if (a.is_null() || b.is_null()) {
    row.range_basis = "no p10/p90 given";
    return;
  }
  auto num_in = [](const json& o, const char* k) -> std::optional<double> {
    const auto it = o.find(k);
    if (it == o.end() || !it->is_number()) return std::nullopt;
    const double v = it->get<double>();
    return std::isfinite(v) ? std::optional<double>(v) : std::nullopt;
  };
  std::optional<double> lo, hi;
  std::string quantity;  // what lo/hi are percentiles of
  if (a.is_object() && b.is_object()) {
    const auto c10 = num_in(a, "relative_per_chip"), c90 = num_in(b, "relative_per_chip");
    const auto w10 = num_in(a, "relative_per_watt"), w90 = num_in(b, "relative_per_watt");
    if ((c10 && c90) || (w10 && w90)) {
      if (c10 && c90) row.chip_lo = std::min(*c10, *c90), row.chip_hi = std::max(*c10, *c90);
      if (w10 && w90) row.watt_lo = std::min(*w10, *w90), row.watt_hi = std::max(*w10, *w90);
      row.range_basis = "relative figures given";
      return;
    }
    for (const char* k : {"tokens_per_s", "time_s"}) {
      lo = num_in(a, k), hi = num_in(b, k);
      if (lo && hi) {
        quantity = k;
        break;
      }
    }
    if (quantity.empty()) {
      row.range_basis = "p10/p90 objects hold no relative_per_chip, relative_per_watt, tokens_per_s or time_s";
      return;
    }
  } else if (a.is_number() && b.is_number()) {
    lo = a.get<double>(), hi = b.get<double>();
  } else {
    row.range_basis = "p10 and p90 are of different kinds";
    return;
  }
  const double l = std::min(*lo, *hi), h = std::max(*lo, *hi);
  auto brackets = [&](const std::optional<double>& v) { return v && *v > 0 && l > 0 && l <= *v * (1 + 1e-9) && h >= *v * (1 - 1e-9); };
  if ((quantity.empty() || quantity == "tokens_per_s") && brackets(row.tokens_per_s)) {
    apply(l / *row.tokens_per_s, h / *row.tokens_per_s, "tokens_per_s");
  } else if ((quantity.empty() || quantity == "time_s") && brackets(row.time_s)) {
    apply(*row.time_s / h, *row.time_s / l, "time_s");  // a shorter time is a higher throughput
  } else {
    row.range_basis = fmt::format("p10 {} and p90 {} bracket neither tokens_per_s nor time_s; no whisker drawn", *lo, *hi);
  }
}

namespace {
report_data read_report_unprefixed(const json& doc, const std::string& source) {
  auto bad = [&](const std::string& what) {
    return std::runtime_error(fmt::format("'{}' is not a usable results file: {}", source, what));
  };
  if (!doc.is_object()) throw bad("the top level is not a JSON object");
  const auto bit = doc.find("benchmarks");
  if (bit == doc.end() || !bit->is_array()) throw bad("it has no \"benchmarks\" list (results files are written by 'infermark run')");
  const auto cit = doc.find("context");
  if (cit == doc.end() || !cit->is_object()) throw bad("it has no \"context\" object");
  const auto iit = cit->find("infermark");
  if (iit == cit->end() || !iit->is_object())
    throw bad("it has no context.infermark, so it was not written by 'infermark run' (plain Google Benchmark "
              "JSON carries no work model to place on the roofline)");
  const json& im = *iit;
  if (str_field(im, "tier") == "callgrind")
    throw bad("it holds callgrind instruction counts ('infermark compare --callgrind'), not timings");

  // Seconds per unit of an entry's times (Google Benchmark's default unit is ns).
  auto seconds_per = [&](const json& e, const std::string& where) {
    const std::string unit = e.contains("time_unit") ? str_field(e, "time_unit") : "ns";
    const auto s = time_unit_seconds(unit);
    if (!s) throw bad(fmt::format("{}: unknown time_unit '{}'; valid choices: ns, us, ms, s", where, unit));
    return *s;
  };

  report_data r;
  r.source = source;
  r.context = *cit;
  if (const auto it = im.find("threads"); it != im.end() && it->is_number_integer()) r.run_threads = it->get<int>();
  if (const auto it = im.find("probe"); it != im.end() && !it->is_null()) {
    try {
      r.probe = probe_result::from_json(*it);
    } catch (const std::exception& e) {
      throw bad(fmt::format("context.infermark.probe: {}", e.what()));
    }
  } else {
    r.notes.push_back("the run had no host roofline probe (--no-probe): no roofline chart and no roofline fractions");
  }

  // Fold the entries of each run_name together, in file order.
  std::vector<std::string> order;
  std::map<std::string, entry_group> groups;
  for (std::size_t i = 0; i < bit->size(); ++i) {
    const json& e = (*bit)[i];
    const std::string where = fmt::format("benchmarks[{}]", i);
    if (!e.is_object()) throw bad(where + " is not an object");
    std::string name;
    for (const char* k : {"run_name", "name"})
      if (const auto it = e.find(k); name.empty() && it != e.end() && it->is_string()) name = it->get<std::string>();
    if (name.empty()) throw bad(where + " has no \"name\"");
    if (const auto it = e.find("error_occurred"); it != e.end() && it->is_boolean() && it->get<bool>()) {
      r.notes.push_back(fmt::format("{} ('{}') reports an error: {}", where, name, str_field(e, "error_message")));
      continue;
    }
    auto [git, fresh] = groups.try_emplace(name);
    if (fresh) {
      order.push_back(name);
      git->second.first = e;
    }
    entry_group& g = git->second;
    const std::string type = e.contains("run_type") ? str_field(e, "run_type") : "iteration";
    if (type == "correctness") {
      g.correctness = true;
      continue;
    }
    const std::string w = fmt::format("{} ('{}')", where, name);
    if (type == "aggregate") {
      if (str_field(e, "aggregate_name") == "median") g.median = e;
      continue;
    }
    if (type != "iteration") throw bad(fmt::format("{}: unknown run_type '{}'; valid choices: iteration, aggregate, correctness", w, type));
    const auto t = opt_num(e, "real_time", w);
    if (!t) throw bad(w + " has no real_time");
    g.seconds.push_back(*t * seconds_per(e, w));
    g.iterations.push_back(e);
  }

  for (const auto& name : order) {
    const entry_group& g = groups.at(name);
    const json& f = g.first;
    const std::string w = fmt::format("'{}'", name);
    kernel_result k;
    k.index = static_cast<int>(r.kernels.size()) + 1;
    k.name = name;
    k.descriptor = f.contains("descriptor") ? str_field(f, "descriptor") : name;
    k.impl = str_field(f, "impl");
    k.backend = str_field(f, "backend");
    if (const auto v = opt_num(f, "backend_threads", w)) k.threads = static_cast<int>(*v);
    else if (const auto v2 = opt_num(f, "threads", w)) k.threads = static_cast<int>(*v2);
    k.peak_dtype = str_field(f, "peak_dtype");
    if (const auto it = f.find("verified"); it != f.end() && it->is_boolean()) k.verified = it->get<bool>();
    k.verification = str_field(f, "verification");
    k.repro = str_field(f, "repro");
    const auto flops = opt_num(f, "flops_per_iteration", w);
    const auto bytes = opt_num(f, "bytes_per_iteration", w);
    k.intensity = opt_num(f, "intensity", w);
    if (!k.intensity && flops && bytes && *bytes > 0) k.intensity = *flops / *bytes;

    k.repetitions = static_cast<int>(g.seconds.size());
    if (!g.seconds.empty()) k.median_s = stats::median(g.seconds);
    else if (g.median) {
      const std::string mw = w + " median aggregate";
      if (const auto t = opt_num(*g.median, "real_time", mw))
        k.median_s = *t * seconds_per(*g.median, mw);
    }
    k.timed = k.median_s.has_value();
    if (!k.timed && !g.correctness) r.notes.push_back(fmt::format("{}: no timing entries", name));
    // A stored counter: the median aggregate's, else the median over the iteration entries.
    auto counter = [&](const char* key) -> std::optional<double> {
      if (g.median)
        if (const auto v = opt_num(*g.median, key, w)) return v;
      std::vector<double> vs;
      for (const auto& e : g.iterations)
        if (const auto v = opt_num(e, key, w)) vs.push_back(*v);
      if (vs.empty()) return std::nullopt;
      return stats::median(vs);
    };
    if (k.median_s && *k.median_s > 0) {
      k.flops_per_s = flops ? std::optional<double>(*flops / *k.median_s) : counter("flops_per_s");
      k.bytes_per_s = bytes ? std::optional<double>(*bytes / *k.median_s) : counter("bytes_per_s");
    }
    // A memory-bound case timed with the DRAM read bandwidth measured beside it (runner): its fraction is
    // against that figure, as the runner's table prints it.
    // Each repetition is paired with its own reads: the stored fraction (the median aggregate's median of
    // the repetitions' fractions) is used as it is; files without one get bytes/s over the mean read.
    const nlohmann::json* with = g.median ? &*g.median : (g.iterations.empty() ? nullptr : &g.iterations.front());
    if (with) k.dram_read_gbs_alongside = alongside_read_gbs(*with);
    const auto paired = with ? opt_num(*with, "roofline_fraction_alongside", w) : std::nullopt;
    if (k.dram_read_gbs_alongside && paired) {
      k.roofline_fraction = *paired;
    } else if (k.dram_read_gbs_alongside && k.bytes_per_s) {
      k.roofline_fraction = *k.bytes_per_s / (*k.dram_read_gbs_alongside * 1e9);
    } else if (r.probe && k.flops_per_s && k.intensity && !k.peak_dtype.empty() && k.threads >= 1) {
      // Same formula as the runner: achieved / min(peak for the dtype at these threads, intensity x DRAM read).
      std::optional<double> peak;
      try {
        peak = r.probe->peak_for(k.peak_dtype, k.threads);
      } catch (const std::invalid_argument&) {
        r.notes.push_back(fmt::format("{}: no probe peak for dtype '{}'", name, k.peak_dtype));
      }
      if (peak) k.roofline_fraction = *k.flops_per_s / std::min(*peak * 1e9, *k.intensity * r.probe->read_gbs * 1e9);
    }
    if (!k.roofline_fraction && k.timed) k.roofline_fraction = counter("roofline_fraction");
    r.kernels.push_back(std::move(k));
  }

  if (const auto it = im.find("failures"); it != im.end() && it->is_array())
    for (const auto& f : *it)
      if (f.is_object())
        r.failures.push_back({str_field(f, "descriptor"), str_field(f, "impl"), str_field(f, "kind"), str_field(f, "message"),
                              str_field(f, "repro")});

  if (const auto it = doc.find("estimates"); it != doc.end()) {
    r.has_estimates = true;
    try {
      if (it->is_object()) r.estimates.push_back(read_estimate_set(*it, "estimates"));
      else if (it->is_array())
        for (std::size_t i = 0; i < it->size(); ++i) r.estimates.push_back(read_estimate_set((*it)[i], fmt::format("estimates[{}]", i)));
      else
        throw std::runtime_error("\"estimates\" is neither a list nor an object");
    } catch (const std::runtime_error& e) {
      throw bad(e.what());
    }
  }
  return r;
}

}  // namespace

report_data read_report(const json& doc, const std::string& source) {
  // Every problem names the file: the field readers below it throw without it.
  const std::string prefix = fmt::format("'{}' is not a usable results file: ", source);
  try {
    return read_report_unprefixed(doc, source);
  } catch (const std::runtime_error& e) {
    if (std::string(e.what()).rfind(prefix, 0) == 0) throw;
    throw std::runtime_error(prefix + e.what());
  }
}

report_data read_report_file(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw std::runtime_error(fmt::format("cannot read '{}': no such file", path.string()));
  if (std::filesystem::is_directory(path, ec))
    throw std::runtime_error(fmt::format("cannot read '{}': it is a directory; give a results file", path.string()));
  return read_report(read_json_file(path), path.string());
}

report_format format_for_path(const std::filesystem::path& path) {
  const std::string ext = path.extension().string();
  if (ext == ".html") return report_format::html;
  if (ext == ".md") return report_format::markdown;
  throw std::invalid_argument(fmt::format("cannot tell the report format of '{}' from its extension '{}'; valid "
                                          "extensions: .html, .md",
                                          path.string(), ext));
}

// --- shared formatting -------------------------------------------------------------------------------
namespace {

constexpr const char* dash = "\u2014";

std::string num(const std::optional<double>& v, int decimals = 1) {
  if (!v || !std::isfinite(*v)) return dash;
  return fmt::format("{:.{}f}", *v, decimals);
}

// About three significant digits without exponent notation for everyday magnitudes.
std::string sig(const std::optional<double>& v) {
  if (!v || !std::isfinite(*v)) return dash;
  const double a = std::fabs(*v);
  if (a == 0) return "0";
  if (a >= 1e6 || a < 1e-3) return fmt::format("{:.3g}", *v);
  if (a >= 100) return fmt::format("{:.0f}", *v);
  if (a >= 10) return fmt::format("{:.1f}", *v);
  if (a >= 1) return fmt::format("{:.2f}", *v);
  return fmt::format("{:.3f}", *v);
}

std::string rel(const std::optional<double>& v) {
  if (!v || !std::isfinite(*v)) return dash;
  return relative_text(*v);
}

std::string time_text(const std::optional<double>& s) {
  if (!s || !std::isfinite(*s)) return dash;
  const double v = *s;
  if (v < 1e-6) return fmt::format("{:.1f} ns", v * 1e9);
  if (v < 1e-3) return fmt::format("{:.2f} \u00b5s", v * 1e6);
  if (v < 1) return fmt::format("{:.3f} ms", v * 1e3);
  return fmt::format("{:.3f} s", v);
}

std::string giga(const std::optional<double>& v) {
  if (!v) return dash;
  return num(*v / 1e9, *v < 1e10 ? 2 : 1);
}

std::string percent(const std::optional<double>& v) {
  if (!v || !std::isfinite(*v)) return dash;
  // Below 1%, two decimals: a kernel far under its roofline should not read as 0.0%.
  return fmt::format("{:.{}f}%", *v * 100, *v > 0 && *v < 0.01 ? 2 : 1);
}

std::string bytes_text(double b) {
  if (b >= 1 << 30) return fmt::format("{:.1f} GiB", b / (1 << 30));
  if (b >= 1 << 20) return fmt::format("{:.0f} MiB", b / (1 << 20));
  if (b >= 1 << 10) return fmt::format("{:.0f} KiB", b / (1 << 10));
  return fmt::format("{:.0f} B", b);
}

const json& at_path(const json& j, std::initializer_list<const char*> keys) {
  static const json null_json;
  const json* cur = &j;
  for (const char* k : keys) {
    if (!cur->is_object()) return null_json;
    const auto it = cur->find(k);
    if (it == cur->end()) return null_json;
    cur = &*it;
  }
  return *cur;
}

std::string fact(const json& j, std::initializer_list<const char*> keys) {
  const std::string s = text_of(at_path(j, keys));
  return s.empty() ? "unknown" : s;
}

std::string dtype_color(const std::string& dt) {
  if (dt == "fp32") return "#1f77b4";
  if (dt == "bf16") return "#d62728";
  if (dt == "int8") return "#2ca02c";
  if (dt == "fp8") return "#9467bd";
  return "#7f7f7f";
}

std::string cpu_model(const report_data& r) {
  const std::string t = text_of(at_path(r.context, {"infermark", "topology", "cpu_model"}));
  if (!t.empty()) return t;
  if (r.probe) return text_of(at_path(r.probe->fingerprint_fields, {"cpu_model"}));
  return "unknown CPU";
}

std::string setting_title(const estimate_set& s) {
  std::string t = s.workload.empty() ? std::string("workload") : s.workload;
  if (!s.phase.empty()) t += " " + s.phase;
  if (!s.batch.empty()) t += ", batch " + s.batch;
  if (!s.context.empty()) t += ", context " + s.context;
  return t;
}

std::string setting_note(const estimate_set& s) {
  std::string t = fmt::format("reference: {} (= 1.00)", s.reference.empty() ? std::string("not named") : s.reference);
  if (!s.model.empty()) t += "; model: " + s.model;
  if (!s.mode.empty()) t += "; mode: " + s.mode;
  return t + "; whiskers: P10–P90";
}

// A profile, with its kind when it is not a single chip (systems and the host appear among the chips).
std::string row_label(const estimate_row& e) {
  return e.kind.empty() || e.kind == "chip" ? e.profile : fmt::format("{} ({})", e.profile, e.kind);
}

bool has_host_fraction(const estimate_set& s) {
  for (const auto& e : s.rows)
    if (e.host_fraction) return true;
  return false;
}

// Rows of the machine-context table: label, value.
std::vector<std::pair<std::string, std::string>> machine_rows(const report_data& r) {
  const json& c = r.context;
  const json& im = at_path(c, {"infermark"});
  std::vector<std::pair<std::string, std::string>> rows;
  rows.emplace_back("host", fact(c, {"host_name"}));
  rows.emplace_back("date", fact(c, {"date"}));
  const json& topo = at_path(im, {"topology"});
  std::string cpu = cpu_model(r);
  if (topo.is_object())
    cpu += fmt::format(" ({}; {} package(s), {} cores, {} PUs)", fact(topo, {"arch"}), fact(topo, {"packages"}), fact(topo, {"cores"}),
                       fact(topo, {"pus"}));
  rows.emplace_back("CPU", cpu);
  if (topo.is_object()) {
    std::string caches;
    if (const json& cs = at_path(topo, {"caches"}); cs.is_array())
      for (const auto& e : cs) {
        const json& size = at_path(e, {"size_bytes"});
        caches += fmt::format("{}L{} {} {} x{}", caches.empty() ? "" : ", ", fact(e, {"level"}), text_of(at_path(e, {"type"})),
                              size.is_number() ? bytes_text(size.get<double>()) : "unknown size", fact(e, {"instances"}));
      }
    rows.emplace_back("caches", caches.empty() ? "unknown" : caches);
    const json& mem = at_path(topo, {"memory_bytes"});
    const json& numa = at_path(topo, {"numa_nodes"});
    rows.emplace_back("memory", fmt::format("{}, {} NUMA node(s)", mem.is_number() ? bytes_text(mem.get<double>()) : "unknown",
                                            numa.is_array() ? std::to_string(numa.size()) : "unknown"));
  }
  rows.emplace_back("ISA", fmt::format("detected {}, effective {} [{}]", fact(im, {"isa", "detected"}), fact(im, {"isa", "effective"}),
                                       text_of(at_path(im, {"isa", "features"}))));
  rows.emplace_back("compiler", fmt::format("{} ({}; flags {})", fact(im, {"build", "compiler"}), fact(im, {"build", "build_type"}),
                                            fact(im, {"build", "cxx_flags"})));
  if (const std::string san = text_of(at_path(im, {"build", "sanitizer"})); !san.empty() && san != "none" && san != "OFF")
    rows.emplace_back("sanitizer", san + " (timings are not representative)");
  rows.emplace_back("infermark", fmt::format("{} (git {})", fact(im, {"build", "version"}), fact(im, {"build", "git_revision"})));
  rows.emplace_back("backend", fmt::format("{}, {} thread(s)", fact(im, {"backend"}), fact(im, {"threads"})));
  const json& pin = at_path(im, {"pinning"});
  if (pin.is_object()) {
    const json& applied = at_path(pin, {"applied"});
    std::string p = fmt::format("requested {}, {}", fact(pin, {"requested"}),
                                applied.is_boolean() && applied.get<bool>() ? "applied on cpus " + text_of(at_path(pin, {"cpus"}))
                                                                            : std::string("not applied"));
    if (const std::string m = text_of(at_path(pin, {"message"})); !m.empty()) p += " (" + m + ")";
    rows.emplace_back("pinning", p);
  }
  rows.emplace_back("suite / mode / seed", fmt::format("{} / {} / {}", fact(im, {"suite"}), fact(im, {"mode"}), fact(im, {"seed"})));
  rows.emplace_back("command", fact(im, {"command"}));
  rows.emplace_back("fingerprint", fact(im, {"fingerprint"}));
  if (r.probe) {
    const auto& p = *r.probe;
    std::string ceil;
    auto add = [&](const char* n, const std::optional<double>& v, const char* unit) {
      if (v) ceil += fmt::format("{}{} {:.1f} {}", ceil.empty() ? "" : ", ", n, *v, unit);
    };
    add("fp32", p.peak_gflops.fp32, "GFLOP/s");
    add("bf16", p.peak_gflops.bf16, "GFLOP/s");
    add("int8", p.peak_gflops.int8, "GOP/s");
    ceil += fmt::format(", DRAM read {:.1f} GB/s, triad {:.1f} GB/s", p.read_gbs, p.triad_gbs);
    for (const auto& cb : p.caches) ceil += fmt::format(", L{} read {:.1f} GB/s", cb.level, cb.read_gbs);
    rows.emplace_back("probe ceilings", fmt::format("{} ({} threads, isa {}, measured {})", ceil, p.threads, p.isa_level, p.measured_at));
  } else {
    rows.emplace_back("probe ceilings", "none (run with --no-probe)");
  }
  if (const json& peers = at_path(im, {"peers"}); peers.is_object())
    for (const auto& [k, v] : peers.items()) rows.emplace_back("peer " + k, text_of(v));
  rows.emplace_back("Google Benchmark context",
                    fmt::format("{} CPUs at {} MHz, CPU scaling {}, load average {}", fact(c, {"num_cpus"}), fact(c, {"mhz_per_cpu"}),
                                at_path(c, {"cpu_scaling_enabled"}).is_boolean()
                                    ? (at_path(c, {"cpu_scaling_enabled"}).get<bool>() ? "enabled" : "disabled")
                                    : "unknown",
                                text_of(at_path(c, {"load_avg"}))));
  return rows;
}

struct ceiling_row {
  std::string name, all, one, unit, note;
};

std::vector<ceiling_row> ceiling_rows(const probe_result& p) {
  std::vector<ceiling_row> rows;
  auto peak = [&](const char* n, const std::optional<double>& all, const std::optional<double>& one, const char* unit) {
    rows.push_back({fmt::format("{} peak", n), all ? fmt::format("{:.1f}", *all) : "unsupported",
                    one ? fmt::format("{:.1f}", *one) : dash, unit, text_of(at_path(p.isa_used, {n}))});
  };
  peak("fp32", p.peak_gflops.fp32, p.peak_gflops_1core.fp32, "GFLOP/s");
  peak("bf16", p.peak_gflops.bf16, p.peak_gflops_1core.bf16, "GFLOP/s");
  peak("int8", p.peak_gflops.int8, p.peak_gflops_1core.int8, "GOP/s");
  rows.push_back({"DRAM read", fmt::format("{:.1f}", p.read_gbs), dash, "GB/s",
                  fmt::format("working set {}", bytes_text(static_cast<double>(p.dram_working_set_bytes)))});
  rows.push_back({"DRAM triad", fmt::format("{:.1f}", p.triad_gbs), dash, "GB/s", "STREAM convention"});
  for (const auto& c : p.caches)
    rows.push_back({fmt::format("L{} read", c.level), fmt::format("{:.1f}", c.read_gbs), dash, "GB/s",
                    fmt::format("working set {} per thread", bytes_text(static_cast<double>(c.working_set_per_thread_bytes)))});
  return rows;
}

std::string summary_line(const report_data& r) {
  const json& s = at_path(r.context, {"infermark", "summary"});
  std::string out = fmt::format("{} verified, {} failed verification, {} refused, {} timed", fact(s, {"verified"}), fact(s, {"failed"}),
                                fact(s, {"refused"}), fact(s, {"timed"}));
  if (const json& i = at_path(r.context, {"infermark", "interrupted"}); i.is_boolean() && i.get<bool>())
    out += " (interrupted: partial results)";
  return out;
}

std::string verification_text(const kernel_result& k) {
  if (!k.verified) return "not verified";
  return k.verification.empty() ? "yes" : "yes: " + k.verification;
}

std::string range_text(const estimate_row& e) {
  if (e.chip_lo && e.chip_hi) return fmt::format("{}\u2013{}", relative_text(*e.chip_lo), relative_text(*e.chip_hi));
  return dash;
}

}  // namespace

std::string roofline_chart(const report_data& r) {
  if (!r.probe) return "";
  const auto& p = *r.probe;
  roofline_spec spec;
  spec.title = fmt::format("Host roofline: {}, {} threads (probe {})", cpu_model(r), p.threads, p.measured_at);
  auto peak = [&](const char* n, const std::optional<double>& v, const char* unit) {
    if (v && *v > 0)
      spec.peaks.push_back({fmt::format("{} peak {:.1f} {}", n, *v, unit), fmt::format("{} {:.0f}", n, *v), *v, dtype_color(n), false});
  };
  peak("fp32", p.peak_gflops.fp32, "GFLOP/s");
  peak("bf16", p.peak_gflops.bf16, "GFLOP/s");
  peak("int8", p.peak_gflops.int8, "GOP/s");
  // Kernels run on fewer threads than the probe are bounded by a lower peak: draw it dashed.
  std::set<std::pair<std::string, int>> seen;
  for (const auto& k : r.kernels) {
    if (k.threads < 1 || k.threads >= p.threads || (k.peak_dtype != "fp32" && k.peak_dtype != "bf16" && k.peak_dtype != "int8")) continue;
    if (!seen.insert({k.peak_dtype, k.threads}).second) continue;
    const auto v = p.peak_for(k.peak_dtype, k.threads);
    const auto all = k.peak_dtype == "fp32" ? p.peak_gflops.fp32 : k.peak_dtype == "bf16" ? p.peak_gflops.bf16 : p.peak_gflops.int8;
    if (v && all && *v < *all * 0.999)
      spec.peaks.push_back({fmt::format("{} peak, {} thread(s) {:.1f}", k.peak_dtype, k.threads, *v),
                            fmt::format("{} {}thr {:.0f}", k.peak_dtype, k.threads, *v), *v, dtype_color(k.peak_dtype), true});
  }
  if (spec.peaks.empty()) return "";
  spec.bandwidths.push_back({fmt::format("DRAM read {:.1f} GB/s", p.read_gbs), "DRAM", p.read_gbs, "#222222", false});
  const char* cache_colors[] = {"#17a2b8", "#e08e0b", "#8c564b", "#7f7f7f"};
  std::vector<cache_bandwidth> caches = p.caches;
  std::sort(caches.begin(), caches.end(), [](const auto& a, const auto& b) { return a.level > b.level; });
  for (const auto& c : caches)
    spec.bandwidths.push_back({fmt::format("L{} read {:.1f} GB/s", c.level, c.read_gbs), fmt::format("L{}", c.level), c.read_gbs,
                               cache_colors[std::min(std::max(c.level - 1, 0), 3)], true});
  std::set<std::string> dtypes;
  for (const auto& k : r.kernels) {
    if (!(k.flops_per_s && *k.flops_per_s > 0 && k.intensity && *k.intensity > 0)) continue;
    spec.points.push_back({k.index, *k.intensity, *k.flops_per_s / 1e9, dtype_color(k.peak_dtype),
                           fmt::format("#{} {} ({}, {}/{}): {} GFLOP/s at {} FLOP/B, {} of the roofline, median {}", k.index, k.descriptor,
                                       k.impl, k.backend, k.threads, giga(k.flops_per_s), sig(k.intensity), percent(k.roofline_fraction),
                                       time_text(k.median_s))});
    dtypes.insert(k.peak_dtype);
  }
  for (const auto& d : dtypes) spec.point_legend.push_back({fmt::format("{} kernels", d.empty() ? "other" : d), dtype_color(d)});
  return roofline_svg(spec);
}

// --- HTML --------------------------------------------------------------------------------------------
namespace {

const char* css = R"(
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; color: #1d1d1f;
       background: #f6f7f9; margin: 0; line-height: 1.45; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 48px; background: #fff; }
h1 { font-size: 26px; margin: 4px 0 4px; }
h2 { font-size: 20px; margin: 34px 0 10px; padding-bottom: 4px; border-bottom: 2px solid #e3e6ea; }
h3 { font-size: 16px; margin: 24px 0 8px; }
p.sub { color: #555; margin: 2px 0; }
nav a { margin-right: 14px; color: #2a5db0; text-decoration: none; }
.note { color: #555; font-size: 14px; }
.warn { background: #fff4e5; border-left: 4px solid #e08e0b; padding: 6px 10px; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0 12px; width: 100%; }
th, td { padding: 4px 8px; border-bottom: 1px solid #e6e6e6; text-align: left; vertical-align: top; }
th { background: #f0f2f5; font-weight: 600; white-space: nowrap; }
tr:nth-child(even) td { background: #fafbfc; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.small { font-size: 12px; color: #444; max-width: 320px; overflow-wrap: anywhere; }
code, td.code { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 12px; }
.dot { display: inline-block; width: 10px; height: 10px; border-radius: 50%; margin-right: 5px; vertical-align: baseline; }
.ok { color: #1e7b34; } .bad { color: #b3261e; font-weight: 600; }
svg.chart { max-width: 100%; height: auto; display: block; }
.charts { display: flex; flex-wrap: wrap; gap: 12px 24px; }
.charts svg.chart { flex: 1 1 520px; max-width: 560px; }
table.kv th { width: 190px; }
table.kernels { table-layout: auto; }
table.kernels td.code { overflow-wrap: anywhere; word-break: break-all; max-width: 300px; }
table.kernels td.small { max-width: 240px; }
footer { margin-top: 36px; color: #777; font-size: 12px; }
)";

std::string h(std::string_view s) { return xml_escape(s); }

std::string html_kernels(const report_data& r) {
  std::string s;
  if (r.kernels.empty()) return "<p class=\"note\">No kernel results in this file.</p>\n";
  s += "<table class=\"kernels\">\n<thead><tr><th>#</th><th>descriptor</th><th>impl</th><th>backend / threads</th><th>median</th>"
       "<th>GFLOP/s</th><th>GB/s</th><th>FLOP/B</th><th>roofline</th><th>verification</th></tr></thead>\n<tbody>\n";
  for (const auto& k : r.kernels) {
    s += fmt::format("<tr><td class=\"num\"><span class=\"dot\" style=\"background:{}\" title=\"{}\"></span>{}</td>"
                     "<td class=\"code\" title=\"{}\">{}</td><td class=\"code\">{}</td><td>{} / {}</td>"
                     "<td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>"
                     "<td class=\"num\">{}</td><td class=\"small {}\">{}</td></tr>\n",
                     dtype_color(k.peak_dtype), h(k.peak_dtype), k.index, h(k.repro), h(k.descriptor), h(k.impl), h(k.backend), k.threads,
                     k.timed ? h(time_text(k.median_s)) : "not timed", h(giga(k.flops_per_s)), h(giga(k.bytes_per_s)),
                     h(sig(k.intensity)),
                     k.dram_read_gbs_alongside
                         ? fmt::format("<span title=\"memory-bound: against the DRAM read bandwidth measured beside the "
                                       "case, {:.1f} GB/s\">{}*</span>",
                                       *k.dram_read_gbs_alongside, h(percent(k.roofline_fraction)))
                         : h(percent(k.roofline_fraction)),
                     k.verified ? "ok" : "bad", h(verification_text(k)));
  }
  s += "</tbody></table>\n";
  return s;
}

std::string html_failures(const report_data& r) {
  if (r.failures.empty()) return "";
  std::string s = "<h3>Failed or refused cases</h3>\n<table class=\"failures\">\n<thead><tr><th>kind</th><th>descriptor</th><th>impl</th>"
                  "<th>message</th><th>repro</th></tr></thead>\n<tbody>\n";
  for (const auto& f : r.failures)
    s += fmt::format("<tr><td class=\"{}\">{}</td><td class=\"code\">{}</td><td class=\"code\">{}</td><td class=\"small\">{}</td>"
                     "<td class=\"code small\">{}</td></tr>\n",
                     f.kind == "verification" ? "bad" : "", h(f.kind), h(f.descriptor), h(f.impl), h(f.message), h(f.repro));
  return s + "</tbody></table>\n";
}

std::string html_estimates(const report_data& r) {
  if (!r.has_estimates)
    return "<p class=\"note\">No estimates in this file (it has no top-level \"estimates\" key; see 'infermark estimate').</p>\n";
  if (r.estimates.empty()) return "<p class=\"note\">No estimates in this file (the \"estimates\" list is empty).</p>\n";
  std::string s;
  for (const auto& set : r.estimates) {
    const std::string ref_name = set.reference.empty() ? "the reference" : set.reference;
    s += fmt::format("<h3>{}</h3>\n<p class=\"note\">{}</p>\n", h(setting_title(set)), h(setting_note(set)));
    bar_chart_spec chip, watt;
    chip.title = "Relative performance per chip";
    chip.axis_label = fmt::format("tokens/s per chip relative to {}", ref_name);
    watt.title = "Relative performance per watt";
    watt.axis_label = fmt::format("tokens per joule relative to {}", ref_name);
    chip.reference_line = watt.reference_line = 1.0;
    std::vector<const estimate_row*> errors;
    for (const auto& e : set.rows) {
      const bool ref = e.profile == set.reference;
      if (e.error) {
        errors.push_back(&e);
        chip.rows.push_back({row_label(e), std::nullopt, std::nullopt, std::nullopt, ref, "not estimable (see below)"});
        watt.rows.push_back(chip.rows.back());
        continue;
      }
      chip.rows.push_back({row_label(e), e.relative_per_chip, e.chip_lo, e.chip_hi, ref, "n/a"});
      watt.rows.push_back({row_label(e), e.relative_per_watt, e.watt_lo, e.watt_hi, ref, "n/a (no power figure)"});
    }
    s += "<div class=\"charts\">\n" + bar_chart_svg(chip) + bar_chart_svg(watt) + "</div>\n";
    const bool host = has_host_fraction(set);
    s += "<table class=\"estimates\">\n<thead><tr><th>profile</th><th>dtype</th><th>time / step</th><th>tokens/s per chip</th>"
         "<th>rel. per chip</th><th>tokens/J</th><th>rel. per watt</th><th>bound</th><th>P10\u2013P90 (rel. per chip)</th>";
    if (host) s += "<th>host fraction</th>";
    s += "<th>provenance</th></tr></thead>\n<tbody>\n";
    for (const auto& e : set.rows) {
      if (e.error) continue;
      s += fmt::format("<tr><td{} title=\"{}\">{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>"
                       "<td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td><td class=\"num\" title=\"{}\">{}</td>",
                       e.profile == set.reference ? " style=\"font-weight:700\"" : "", h(e.name), h(row_label(e)), h(e.dtype),
                       h(time_text(e.time_s)), h(sig(e.tokens_per_s)), h(rel(e.relative_per_chip)), h(sig(e.tokens_per_joule)),
                       h(rel(e.relative_per_watt)), h(e.bound), h(e.range_basis), h(range_text(e)));
      if (host) s += fmt::format("<td class=\"num\">{}</td>", h(num(e.host_fraction, 2)));
      s += fmt::format("<td class=\"small\" title=\"{}\">{}</td></tr>\n", h(e.provenance_detail), h(e.provenance));
    }
    s += "</tbody></table>\n";
    if (!errors.empty()) {
      s += "<p class=\"note\">Not estimable:</p>\n<ul class=\"not-estimable\">\n";
      for (const auto* e : errors) s += fmt::format("<li><b>{}</b>: {}</li>\n", h(e->profile), h(*e->error));
      s += "</ul>\n";
    }
    if (!set.systems.empty()) {
      s += "<p class=\"note\">System view:</p>\n<table class=\"systems\">\n<thead><tr><th>system</th><th>chips</th><th>power (kW)</th>"
           "<th>tokens/s per system</th><th>tokens/J</th></tr></thead>\n<tbody>\n";
      for (const auto& y : set.systems)
        s += fmt::format("<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>\n",
                         h(y.profile), h(num(y.chips, 0)), h(sig(y.power_kw)), h(sig(y.tokens_per_s)), h(sig(y.tokens_per_joule)));
      s += "</tbody></table>\n";
    }
  }
  return s;
}

}  // namespace

std::string render_html(const report_data& r) {
  std::string s;
  s += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
       "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  s += fmt::format("<title>infermark report: {}</title>\n<style>{}</style>\n</head>\n<body>\n<main>\n", h(r.source), css);
  const json& im = at_path(r.context, {"infermark"});
  s += "<h1>infermark report</h1>\n";
  s += fmt::format("<p class=\"sub\">{} \u00b7 {} \u00b7 {} \u00b7 suite {} \u00b7 {}, {} thread(s)</p>\n", h(r.source), h(fact(r.context, {"date"})),
                   h(fact(r.context, {"host_name"})), h(fact(im, {"suite"})), h(fact(im, {"backend"})), h(fact(im, {"threads"})));
  s += fmt::format("<p class=\"sub\">{}</p>\n", h(summary_line(r)));
  if (const json& i = at_path(im, {"interrupted"}); i.is_boolean() && i.get<bool>())
    s += "<p class=\"warn\">This run was interrupted: the results are partial.</p>\n";
  s += "<nav><a href=\"#roofline\">Host roofline</a><a href=\"#kernels\">Kernel results</a><a href=\"#estimates\">Estimates</a>"
       "<a href=\"#machine\">Machine context</a></nav>\n";

  s += "<section id=\"roofline\">\n<h2>Host roofline</h2>\n";
  const std::string chart = roofline_chart(r);
  if (chart.empty()) {
    s += "<p class=\"note\">No roofline chart: this run had no host probe (it was run with --no-probe). Run without it, or "
         "'infermark probe', to measure the ceilings.</p>\n";
  } else {
    s += chart;
    s += "<p class=\"note\">Ceilings measured by the probe on all its threads (dashed compute ceilings: fewer threads, as some "
         "kernels ran); DRAM and cache lines are read bandwidths. Each kernel is placed by the arithmetic intensity of its work "
         "model and its achieved rate at the median time; numbers are the rows of the kernel table. The roofline column is "
         "achieved / min(peak of the kernel's dtype at its thread count, intensity \u00d7 DRAM read).</p>\n";
    s += "<table class=\"ceilings\">\n<thead><tr><th>ceiling</th><th>all threads</th><th>1 core</th><th>unit</th><th>how</th></tr></thead>\n<tbody>\n";
    for (const auto& c : ceiling_rows(*r.probe))
      s += fmt::format("<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td><td class=\"small\">{}</td></tr>\n",
                       h(c.name), h(c.all), h(c.one), h(c.unit), h(c.note));
    s += "</tbody></table>\n";
  }
  s += "</section>\n";

  s += "<section id=\"kernels\">\n<h2>Kernel results</h2>\n" + html_kernels(r) + html_failures(r) + "</section>\n";
  s += "<section id=\"estimates\">\n<h2>Estimates</h2>\n" + html_estimates(r) + "</section>\n";
  s += "<section id=\"machine\">\n<h2>Machine context</h2>\n<table class=\"kv\">\n<tbody>\n";
  for (const auto& [k, v] : machine_rows(r)) s += fmt::format("<tr><th>{}</th><td>{}</td></tr>\n", h(k), h(v));
  s += "</tbody></table>\n</section>\n";
  if (!r.notes.empty()) {
    s += "<section id=\"notes\">\n<h2>Notes</h2>\n<ul>\n";
    for (const auto& n : r.notes) s += fmt::format("<li>{}</li>\n", h(n));
    s += "</ul>\n</section>\n";
  }
  s += fmt::format("<footer>Written by 'infermark report' from {}. Self-contained: no scripts, fonts or other files are loaded.</footer>\n",
                   h(r.source));
  s += "</main>\n</body>\n</html>\n";
  return s;
}

// --- Markdown ----------------------------------------------------------------------------------------
namespace {

std::string md(std::string_view s) {
  std::string out;
  for (const char c : s) {
    if (c == '|') out += "\\|";
    else if (c == '\n' || c == '\r') out += ' ';
    else if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else out += c;
  }
  return out;
}

std::string md_row(const std::vector<std::string>& cells) {
  std::string s = "|";
  for (const auto& c : cells) {
    s += ' ';
    s += md(c);
    s += " |";
  }
  return s + "\n";
}

std::string md_header(const std::vector<std::string>& cells, const std::vector<bool>& numeric) {
  std::string s = md_row(cells) + "|";
  for (std::size_t i = 0; i < cells.size(); ++i) s += i < numeric.size() && numeric[i] ? "---:|" : "---|";
  return s + "\n";
}

}  // namespace

std::string render_markdown(const report_data& r) {
  const json& im = at_path(r.context, {"infermark"});
  std::string s = "# infermark report\n\n";
  s += fmt::format("`{}` \u00b7 {} \u00b7 {} \u00b7 suite {} \u00b7 {}, {} thread(s)\n\n", r.source, fact(r.context, {"date"}), md(fact(r.context, {"host_name"})),
                   md(fact(im, {"suite"})), md(fact(im, {"backend"})), md(fact(im, {"threads"})));
  s += summary_line(r) + "\n\n";

  s += "## Host roofline\n\n";
  if (!r.probe) {
    s += "No roofline: this run had no host probe (it was run with --no-probe).\n\n";
  } else {
    s += fmt::format("Ceilings measured by the probe ({} threads, {}). The chart is in the HTML report "
                     "(`infermark report {} -o report.html`); the kernel table below gives each kernel's place on it "
                     "(FLOP/B, GFLOP/s) and its fraction of the roofline.\n\n",
                     r.probe->threads, r.probe->measured_at, r.source);
    s += md_header({"ceiling", "all threads", "1 core", "unit", "how"}, {false, true, true, false, false});
    for (const auto& c : ceiling_rows(*r.probe)) s += md_row({c.name, c.all, c.one, c.unit, c.note});
    s += "\n";
  }

  s += "## Kernel results\n\n";
  if (r.kernels.empty()) {
    s += "No kernel results in this file.\n\n";
  } else {
    s += md_header({"#", "descriptor", "impl", "backend / threads", "median", "GFLOP/s", "GB/s", "FLOP/B", "roofline", "verification"},
                   {true, false, false, false, true, true, true, true, true, false});
    for (const auto& k : r.kernels)
      s += md_row({std::to_string(k.index), k.descriptor, k.impl, fmt::format("{} / {}", k.backend, k.threads),
                   k.timed ? time_text(k.median_s) : "not timed", giga(k.flops_per_s), giga(k.bytes_per_s), sig(k.intensity),
                   percent(k.roofline_fraction) + (k.dram_read_gbs_alongside ? "*" : ""), verification_text(k)});
    s += "\n";
    if (std::any_of(r.kernels.begin(), r.kernels.end(), [](const auto& k) { return k.dram_read_gbs_alongside.has_value(); }))
      s += "\\* memory-bound: against the DRAM read bandwidth measured right before and after the case.\n\n";
  }
  if (!r.failures.empty()) {
    s += "### Failed or refused cases\n\n";
    s += md_header({"kind", "descriptor", "impl", "message", "repro"}, {});
    for (const auto& f : r.failures) s += md_row({f.kind, f.descriptor, f.impl, f.message, f.repro});
    s += "\n";
  }

  s += "## Estimates\n\n";
  if (!r.has_estimates) s += "No estimates in this file (it has no top-level \"estimates\" key; see 'infermark estimate').\n\n";
  else if (r.estimates.empty()) s += "No estimates in this file (the \"estimates\" list is empty).\n\n";
  for (const auto& set : r.estimates) {
    s += fmt::format("### {}\n\n{}; the P10\u2013P90 column is of the relative per-chip figure.\n\n", md(setting_title(set)),
                     md(setting_note(set)));
    const bool host = has_host_fraction(set);
    std::vector<std::string> head = {"profile", "dtype", "time / step", "tokens/s per chip", "rel. per chip", "tokens/J", "rel. per watt",
                                     "bound", "P10\u2013P90"};
    std::vector<bool> numeric = {false, false, true, true, true, true, true, false, true};
    if (host) head.push_back("host fraction"), numeric.push_back(true);
    head.push_back("provenance");
    s += md_header(head, numeric);
    std::string errors;
    for (const auto& e : set.rows) {
      if (e.error) {
        errors += fmt::format("- **{}**: {}\n", md(e.profile), md(*e.error));
        continue;
      }
      std::vector<std::string> cells = {e.profile == set.reference ? "**" + row_label(e) + "**" : row_label(e), e.dtype, time_text(e.time_s),
                                        sig(e.tokens_per_s), rel(e.relative_per_chip), sig(e.tokens_per_joule),
                                        rel(e.relative_per_watt), e.bound, range_text(e)};
      if (host) cells.push_back(num(e.host_fraction, 2));
      cells.push_back(e.provenance);
      s += md_row(cells);
    }
    s += "\n";
    if (!errors.empty()) s += "Not estimable:\n\n" + errors + "\n";
    if (!set.systems.empty()) {
      s += "System view:\n\n";
      s += md_header({"system", "chips", "power (kW)", "tokens/s per system", "tokens/J"}, {false, true, true, true, true});
      for (const auto& y : set.systems) s += md_row({y.profile, num(y.chips, 0), sig(y.power_kw), sig(y.tokens_per_s), sig(y.tokens_per_joule)});
      s += "\n";
    }
  }

  s += "## Machine context\n\n";
  s += md_header({"what", "value"}, {});
  for (const auto& [k, v] : machine_rows(r)) s += md_row({k, v});
  s += "\n";
  if (!r.notes.empty()) {
    s += "## Notes\n\n";
    for (const auto& n : r.notes) s += "- " + md(n) + "\n";
    s += "\n";
  }
  return s;
}

}  // namespace infermark::report
