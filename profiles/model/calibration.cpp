#include "profiles/model/calibration.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "profiles/model/toml_read.hpp"

namespace infermark {

namespace {

constexpr std::array<std::string_view, 7> kernel_names = {"gemm",        "grouped_gemm", "attention_decode",
                                                          "attention_prefill", "mla_decode", "elementwise",
                                                          "all_to_all"};
constexpr std::array<std::string_view, 4> bound_names = {"compute", "memory", "scale_up", "scale_out"};

template <std::size_t N>
std::string list(const std::array<std::string_view, N>& a) {
  std::string s;
  for (auto v : a) s += (s.empty() ? "" : ", ") + std::string(v);
  return s;
}

using toml_read::line_of;

// Units a measurement may be given in, for each bound.
bool unit_ok(bound_kind b, const std::string& dtype, const std::string& unit) {
  if (unit == "percent") return true;
  switch (b) {
    case bound_kind::compute: return unit == (dtype == "int8" ? "TOPS" : "TFLOPS");
    case bound_kind::memory: return unit == "TB/s" || unit == "GB/s";
    case bound_kind::scale_up:
    case bound_kind::scale_out: return unit == "GB/s";
  }
  return false;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Work model of a point whose shape states integer m, n, k (and optionally groups): see calibration_point.
void set_work(calibration_point& p) {
  const auto& sh = p.shape;
  auto dim = [&](const char* k) -> double { return sh.contains(k) && sh[k].is_number_integer() ? sh[k].get<double>() : 0.0; };
  if (p.kernel == kernel_class::gemm || p.kernel == kernel_class::grouped_gemm) {
    const double m = dim("m"), n = dim("n"), k = dim("k"), g = sh.contains("groups") ? dim("groups") : 1.0;
    if (m > 0 && n > 0 && k > 0 && g > 0) {
      const double es = p.dtype == "fp8" || p.dtype == "int8" ? 1.0 : p.dtype == "fp32" || p.dtype == "tf32" ? 4.0 : 2.0;
      p.flops = 2 * g * m * n * k;
      p.bytes = g * (m * k + n * k) * es + g * m * n * 2;
    }
  }
  if (sh.contains("mode") && sh["mode"].is_string()) {
    const std::string m = sh["mode"].get<std::string>();
    p.mode = m.rfind("low-latency", 0) == 0 ? "low-latency" : m.rfind("normal", 0) == 0 ? "normal" : "";
  }
}

double peak_of_bound(const profile& t, bound_kind b, const std::string& dtype) {
  switch (b) {
    case bound_kind::compute: {
      auto pk = t.peak(dtype);
      if (!pk) throw not_estimable(t.slug, "peak." + dtype, "the chip has no such unit");
      return *pk * 1e12;
    }
    case bound_kind::memory: return t.at("memory.bandwidth").value * 1e12;
    case bound_kind::scale_up: return t.at("scale_up.bandwidth").value * 1e9;
    case bound_kind::scale_out: return t.at("scale_out.bandwidth").value * 1e9;
  }
  return 0;
}

}  // namespace

std::vector<op_overhead> load_overheads(const std::filesystem::path& dir) {
  const std::vector<std::filesystem::path> files = toml_read::files(dir);
  std::vector<op_overhead> out;
  std::set<std::string> vendors;
  for (const auto& f : files) {
    const std::string file = f.string();
    const toml::table root = toml_read::parse(f);
    const toml::node* node = root.get("overhead");
    if (!node) continue;
    const toml::array* arr = node->as_array();
    if (!arr) throw profile_error(file, line_of(node), "overhead", "expected [[overhead]] tables");
    for (const auto& el : *arr) {
      const toml::table* t = el.as_table();
      if (!t) throw profile_error(file, line_of(&el), "overhead", "expected a table");
      op_overhead o;
      o.origin = fmt::format("{}:{}", file, line_of(t));
      auto fail = [&](const toml::node* n, const std::string& key, const std::string& what) {
        throw profile_error(file, line_of(n ? n : t), "overhead." + key, what);
      };
      std::string unit;
      for (auto&& kv : *t) {
        // Named, not a structured binding: clang 14 cannot capture bindings in the lambda below.
        const std::string key(kv.first.str());
        const toml::node& v = kv.second;
        auto str = [&]() {
          auto s = v.value<std::string>();
          if (!v.is_string() || !s || s->empty()) fail(&v, key, "expected a non-empty string");
          return *s;
        };
        if (key == "vendor") o.vendor = str();
        else if (key == "source") o.source = str();
        else if (key == "notes") o.notes = str();
        else if (key == "unit") unit = str();
        else if (key == "confidence") {
          try {
            o.grade = parse_confidence(str());
          } catch (const std::invalid_argument& e) {
            fail(&v, key, e.what());
          }
        } else if (key == "value") {
          const double x = v.is_integer() ? static_cast<double>(v.as_integer()->get()) : v.is_floating_point() ? v.as_floating_point()->get() : -1;
          if (!std::isfinite(x) || x <= 0) fail(&v, key, "expected a number > 0");
          o.seconds = x * 1e-6;
        } else {
          fail(&v, key, "unknown key (valid: vendor, value, unit, source, confidence, notes)");
        }
      }
      for (const char* req : {"vendor", "value", "unit", "source", "confidence"})
        if (!t->contains(req)) fail(nullptr, req, "missing required key");
      if (unit != "us") fail(t->get("unit"), "unit", fmt::format("unit '{}' is not allowed (valid: us)", unit));
      if (!vendors.insert(o.vendor).second) fail(t->get("vendor"), "vendor", fmt::format("duplicate vendor '{}'", o.vendor));
      out.push_back(std::move(o));
    }
  }
  return out;
}

std::string overhead_choice::describe() const {
  if (seconds == 0 && source.empty()) return "none (no overhead figures loaded)";
  if (sourced) return fmt::format("{:.1f} us ({}: {}; {})", seconds * 1e6, vendor, source, grade);
  return fmt::format("{:.1f} us assumed for {} (no published figure; median of the other vendors' figures: {})",
                     seconds * 1e6, vendor, source);
}

std::string_view to_string(kernel_class k) { return kernel_names.at(static_cast<std::size_t>(k)); }
std::string_view to_string(bound_kind b) { return bound_names.at(static_cast<std::size_t>(b)); }

kernel_class parse_kernel_class(std::string_view name) {
  for (std::size_t i = 0; i < kernel_names.size(); ++i) {
    if (kernel_names[i] == name) return static_cast<kernel_class>(i);
  }
  throw std::invalid_argument(fmt::format("unknown kernel class '{}' (valid: {})", name, list(kernel_names)));
}

bound_kind parse_bound(std::string_view name) {
  for (std::size_t i = 0; i < bound_names.size(); ++i) {
    if (bound_names[i] == name) return static_cast<bound_kind>(i);
  }
  throw std::invalid_argument(fmt::format("unknown bound '{}' (valid: {})", name, list(bound_names)));
}

std::vector<calibration_point> load_calibration(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(dir)) throw std::invalid_argument(fmt::format("calibration directory '{}' does not exist", dir.string()));
  const std::vector<fs::path> files = toml_read::files(dir);
  std::vector<calibration_point> out;
  std::map<std::string, std::string> ids;  // id -> origin
  for (const auto& f : files) {
    const std::string file = f.string();
    const toml::table root = toml_read::parse(f);
    for (auto&& [k, node] : root) {
      if (k == "overhead") continue;  // load_overheads
      if (k != "point") throw profile_error(file, line_of(&node), std::string(k.str()), "unknown key (valid: point, overhead)");
      const toml::array* arr = node.as_array();
      if (!arr) throw profile_error(file, line_of(&node), "point", "expected [[point]] tables");
      for (const auto& el : *arr) {
        const toml::table* t = el.as_table();
        if (!t) throw profile_error(file, line_of(&el), "point", "expected a table");
        calibration_point p;
        p.origin = fmt::format("{}:{}", file, line_of(t));
        auto fail = [&](const toml::node* n, const std::string& key, const std::string& what) {
          throw profile_error(file, line_of(n ? n : t), "point." + key, what);
        };
        auto str = [&](const toml::node& n, const std::string& key) {
          auto v = n.value<std::string>();
          if (!n.is_string() || !v || v->empty()) fail(&n, key, "expected a non-empty string");
          return *v;
        };
        for (auto&& [pk, pv] : *t) {
          const std::string key(pk.str());
          try {
            if (key == "id") p.id = str(pv, key);
            else if (key == "target") p.target = str(pv, key);
            else if (key == "kernel") p.kernel = parse_kernel_class(str(pv, key));
            else if (key == "dtype") {
              p.dtype = str(pv, key);
              if (std::find(peak_dtypes.begin(), peak_dtypes.end(), p.dtype) == peak_dtypes.end()) {
                fail(&pv, key, fmt::format("unknown dtype '{}' (valid: fp32, tf32, bf16, fp16, fp8, int8, fp4)", p.dtype));
              }
            } else if (key == "bound") p.bound = parse_bound(str(pv, key));
            else if (key == "value") {
              double v = 0;
              if (pv.is_integer()) v = static_cast<double>(pv.as_integer()->get());
              else if (pv.is_floating_point()) v = pv.as_floating_point()->get();
              else fail(&pv, key, "expected a number");
              if (!std::isfinite(v) || v <= 0) fail(&pv, key, fmt::format("must be > 0, got {}", v));
              p.value = v;
            } else if (key == "unit") p.unit = str(pv, key);
            else if (key == "source") p.source = str(pv, key);
            else if (key == "confidence") p.grade = parse_confidence(str(pv, key));
            else if (key == "notes") p.notes = str(pv, key);
            else if (key == "shape") {
              const toml::table* st = pv.as_table();
              if (!st || st->empty()) fail(&pv, key, "expected a non-empty table of dimensions");
              p.shape = nlohmann::json::object();
              for (auto&& [sk, sv] : *st) {
                const std::string sname(sk.str());
                if (sv.is_integer() && sv.as_integer()->get() > 0) p.shape[sname] = sv.as_integer()->get();
                else if (sv.is_string()) p.shape[sname] = *sv.value<std::string>();
                else fail(&sv, "shape." + sname, "expected an integer > 0 or a string");
              }
            } else {
              fail(&pv, key, "unknown key (valid: id, target, kernel, dtype, bound, value, unit, shape, source, confidence, notes)");
            }
          } catch (const profile_error&) {
            throw;
          } catch (const std::invalid_argument& e) {
            fail(&pv, key, e.what());
          }
        }
        for (const char* req : {"id", "target", "kernel", "dtype", "bound", "value", "unit", "shape", "source", "confidence"}) {
          if (!t->contains(req)) fail(nullptr, req, "missing required key");
        }
        if (!unit_ok(p.bound, p.dtype, p.unit)) {
          fail(t->get("unit"), "unit", fmt::format("unit '{}' does not fit bound '{}' (compute: TFLOPS, TOPS for int8; memory: TB/s or GB/s; links: GB/s; any: percent)", p.unit, to_string(p.bound)));
        }
        if (p.unit == "percent" && p.value > 100) fail(t->get("value"), "value", "a percentage cannot exceed 100");
        set_work(p);
        if (auto [it, fresh] = ids.emplace(p.id, p.origin); !fresh) {
          fail(t->get("id"), "id", fmt::format("duplicate id '{}' (first at {})", p.id, it->second));
        }
        out.push_back(std::move(p));
      }
    }
  }
  return out;
}

double achieved_fraction(const calibration_point& p, const profile& target) {
  double peak = 0;
  double value = p.value;
  switch (p.bound) {
    case bound_kind::compute: {
      auto pk = target.peak(p.dtype);
      if (!pk) throw not_estimable(target.slug, "peak." + p.dtype, "the chip has no such unit");
      peak = *pk;
      break;
    }
    case bound_kind::memory:
      peak = target.at("memory.bandwidth").value;  // TB/s
      if (p.unit == "GB/s") value /= 1000.0;
      break;
    case bound_kind::scale_up: peak = target.at("scale_up.bandwidth").value; break;   // GB/s
    case bound_kind::scale_out: peak = target.at("scale_out.bandwidth").value; break;  // GB/s
  }
  if (p.unit == "percent") return p.value / 100.0;
  return value / peak;
}

void check_targets(const std::vector<calibration_point>& points, const profile_db& db) {
  for (const auto& p : points) {
    const auto colon = p.origin.rfind(':');
    const std::string file = p.origin.substr(0, colon);
    const int line = std::stoi(p.origin.substr(colon + 1));
    const profile* t = db.find(p.target);
    if (!t) {
      std::string valid;
      for (const auto& s : db.slugs()) valid += (valid.empty() ? "" : ", ") + s;
      throw profile_error(file, line, "point.target", fmt::format("unknown profile '{}' (valid: {})", p.target, valid));
    }
    try {
      (void)achieved_fraction(p, db.chip_of(*t));
    } catch (const not_estimable& e) {
      throw profile_error(file, line, "point.target", e.what());
    }
  }
}

std::string efficiency_factor::describe() const {
  switch (provenance) {
    case provenance_kind::fitted:
      return fmt::format("fitted on {} point{}{}", n_points, n_points == 1 ? "" : "s", shape_note.empty() ? "" : "; " + shape_note);
    case provenance_kind::borrowed:
      return fmt::format("borrowed from {}; {} point{}{}", from, n_points, n_points == 1 ? "" : "s", shape_note.empty() ? "" : "; " + shape_note);
    case provenance_kind::assumed: return fmt::format("assumed ({})", from);
  }
  return "?";
}

nlohmann::json efficiency_factor::to_json() const {
  return {{"eta", eta}, {"p10", p10}, {"p90", p90}, {"provenance", describe()}, {"n_points", n_points}, {"points", point_ids}};
}

efficiency_model::efficiency_model(const profile_db& db, std::vector<calibration_point> points, std::vector<op_overhead> overheads)
    : db_(db), points_(std::move(points)), overheads_(std::move(overheads)) {
  check_targets(points_, db_);
  for (const auto& p : points_) {
    const profile& t = db_.chip_of(db_.get(p.target));
    const double measured = achieved_fraction(p, t);
    entry e{&p, measured, t.vendor, p.bound};
    if (p.flops > 0 && (p.bound == bound_kind::compute || p.bound == bound_kind::memory) && t.has("memory.bandwidth")) {
      // A measured time: fitted in the roofline's binding bound, net of the per-op overhead (never below a
      // quarter of the time: an overhead that large would say the figure is not a kernel time).
      const double pc = peak_of_bound(t, bound_kind::compute, p.dtype), pm = peak_of_bound(t, bound_kind::memory, p.dtype);
      const double roof_c = p.flops / pc, roof_m = p.bytes / pm;
      const double time = (p.bound == bound_kind::compute ? roof_c : roof_m) / measured;
      e.bound = roof_c >= roof_m ? bound_kind::compute : bound_kind::memory;
      const double net = std::max(time - overhead(p.target).seconds, 0.25 * time);
      e.fraction = (e.bound == bound_kind::compute ? roof_c : roof_m) / net;
    }
    entries_.push_back(e);
  }
}

overhead_choice efficiency_model::overhead(std::string_view target) const {
  const profile& t = db_.chip_of(db_.get(target));
  overhead_choice c;
  c.vendor = t.vendor;
  if (overheads_.empty()) return c;
  for (const auto& o : overheads_)
    if (o.vendor == t.vendor) {
      c.seconds = o.seconds;
      c.sourced = true;
      c.source = o.source;
      c.grade = std::string(to_string(o.grade));
      return c;
    }
  std::vector<double> v;
  for (const auto& o : overheads_) {
    v.push_back(o.seconds);
    c.source += (c.source.empty() ? "" : ", ") + o.vendor;
  }
  c.seconds = median(v);
  c.grade = "assumed";
  return c;
}

efficiency_factor efficiency_model::factor(std::string_view target, kernel_class kernel, std::string_view dtype,
                                           bound_kind bound) const {
  return factor_excluding(target, kernel, dtype, bound, nullptr);
}

efficiency_factor efficiency_model::factor(std::string_view target, kernel_class kernel, std::string_view dtype,
                                           bound_kind bound, std::optional<double> group) const {
  return factor_excluding(target, kernel, dtype, bound, nullptr, group);
}

efficiency_factor efficiency_model::factor(std::string_view target, kernel_class kernel, std::string_view dtype,
                                           bound_kind bound, std::optional<double> group, const std::string& mode) const {
  return factor_excluding(target, kernel, dtype, bound, nullptr, group, mode);
}

efficiency_factor efficiency_model::factor_excluding(std::string_view target, kernel_class kernel, std::string_view dtype,
                                                     bound_kind bound, const calibration_point* excluded,
                                                     std::optional<double> group, const std::string& mode) const {
  const profile& t = db_.chip_of(db_.get(target));
  auto select = [&](auto pred) {
    std::vector<const entry*> v;
    for (const auto& e : entries_) {
      if (e.point == excluded || e.point->kernel != kernel || e.bound != bound) continue;
      if (pred(e)) v.push_back(&e);
    }
    return v;
  };
  // Spread of the points, widened to at least +-`min_rel` of the median: one point says nothing about
  // spread, and a borrowed factor is less certain than the target's own.
  auto make = [&](const std::vector<const entry*>& v, provenance_kind prov, std::string from, double min_rel) {
    efficiency_factor f;
    std::vector<double> fr;
    for (const auto* e : v) {
      fr.push_back(e->fraction);
      f.point_ids.push_back(e->point->id);
    }
    f.eta = median(fr);
    const auto [lo, hi] = std::minmax_element(fr.begin(), fr.end());
    f.p10 = std::min(*lo, f.eta * (1 - min_rel));
    f.p90 = std::min(1.0, std::max(*hi, f.eta * (1 + min_rel)));
    // EP-size-aware all_to_all: least squares on ln(ep) over the points that state their EP size.
    if (group && *group > 0 && kernel == kernel_class::all_to_all) {
      std::vector<std::pair<double, double>> xy;
      std::set<std::int64_t> eps;
      for (const auto* e : v) {
        const auto& sh = e->point->shape;
        if (sh.contains("ep") && sh["ep"].is_number_integer()) {
          xy.emplace_back(std::log(sh["ep"].get<double>()), e->fraction);
          eps.insert(sh["ep"].get<std::int64_t>());
        }
      }
      if (eps.size() >= 2 && xy.size() == v.size()) {
        double mx = 0, my = 0;
        for (const auto& [x, y] : xy) mx += x, my += y;
        mx /= static_cast<double>(xy.size()), my /= static_cast<double>(xy.size());
        double sxy = 0, sxx = 0;
        for (const auto& [x, y] : xy) sxy += (x - mx) * (y - my), sxx += (x - mx) * (x - mx);
        const double b = sxy / sxx, a = my - b * mx;
        double resid = 0;
        for (const auto& [x, y] : xy) resid = std::max(resid, std::fabs(y - (a + b * x)));
        f.eta = std::clamp(a + b * std::log(*group), *lo, *hi);
        f.p10 = std::max(1e-3, std::min(f.eta - resid, f.eta * (1 - min_rel)));
        f.p90 = std::min(1.0, std::max(f.eta + resid, f.eta * (1 + min_rel)));
        f.shape_note = fmt::format("line in ln(ep) over {} EP sizes, at ep {}", eps.size(), *group);
      }
    }
    f.provenance = prov;
    f.n_points = static_cast<int>(v.size());
    f.from = std::move(from);
    return f;
  };
  auto slugs_of = [](const std::vector<const entry*>& v) {
    std::set<std::string> s;
    for (const auto* e : v) s.insert(e->point->target);
    std::string out;
    for (const auto& x : s) out += (out.empty() ? "" : ", ") + x;
    return out;
  };
  const std::string tslug = t.slug;
  // all_to_all in a stated regime: the target's own points of that regime first.
  if (kernel == kernel_class::all_to_all && !mode.empty()) {
    auto own_mode = [&](const entry& e) { return e.point->target == tslug && e.point->mode == mode; };
    if (auto v = select([&](const entry& e) { return own_mode(e) && e.point->dtype == dtype; }); !v.empty()) {
      auto f = make(v, provenance_kind::fitted, tslug, 0.10);
      f.shape_note = mode + " kernels" + (f.shape_note.empty() ? "" : "; " + f.shape_note);
      return f;
    }
    if (auto v = select(own_mode); !v.empty()) {
      auto f = make(v, provenance_kind::borrowed, fmt::format("{} itself, other dtypes, {} kernels", tslug, mode), 0.20);
      return f;
    }
  }
  if (auto own = select([&](const entry& e) { return e.point->target == tslug && e.point->dtype == dtype; }); !own.empty()) {
    return make(own, provenance_kind::fitted, tslug, 0.10);
  }
  auto family_other = [&](const entry& e) { return e.point->target != tslug && e.vendor == t.vendor; };
  if (auto fam = select([&](const entry& e) { return family_other(e) && e.point->dtype == dtype; }); !fam.empty()) {
    return make(fam, provenance_kind::borrowed, fmt::format("{} family, same dtype ({})", t.vendor, slugs_of(fam)), 0.20);
  }
  if (auto own_any = select([&](const entry& e) { return e.point->target == tslug; }); !own_any.empty()) {
    return make(own_any, provenance_kind::borrowed, fmt::format("{} itself, other dtypes", tslug), 0.20);
  }
  if (auto fam = select(family_other); !fam.empty()) {
    return make(fam, provenance_kind::borrowed, fmt::format("{} family, other dtypes ({})", t.vendor, slugs_of(fam)), 0.25);
  }
  if (auto all = select([](const entry&) { return true; }); !all.empty()) {
    return make(all, provenance_kind::borrowed, fmt::format("cross-vendor default ({})", slugs_of(all)), 0.30);
  }
  efficiency_factor f;
  f.eta = bound == bound_kind::compute ? 0.7 : bound == bound_kind::memory ? 0.6 : 0.7;
  f.p10 = f.eta * 0.6;
  f.p90 = std::min(1.0, f.eta * 1.4);
  f.provenance = provenance_kind::assumed;
  f.from = "Huawei Ascend/msmodeling uncalibrated defaults: compute 0.7, memory 0.6, communication 0.7";
  return f;
}

std::vector<loo_result> efficiency_model::leave_one_out() const {
  std::vector<loo_result> out;
  for (const auto& e : entries_) {
    const auto& p = *e.point;
    const profile& t = db_.chip_of(db_.get(p.target));
    const double measured = achieved_fraction(p, t);
    const bool timed = p.flops > 0 && (p.bound == bound_kind::compute || p.bound == bound_kind::memory) && t.has("memory.bandwidth");
    if (timed) {
      // The estimator's formula with both etas refitted without the point.
      const double pc = peak_of_bound(t, bound_kind::compute, p.dtype), pm = peak_of_bound(t, bound_kind::memory, p.dtype);
      const efficiency_factor fc = factor_excluding(p.target, p.kernel, p.dtype, bound_kind::compute, &p);
      const efficiency_factor fm = factor_excluding(p.target, p.kernel, p.dtype, bound_kind::memory, &p);
      const double time = std::max(p.flops / (pc * fc.eta), p.bytes / (pm * fm.eta)) + overhead(p.target).seconds;
      const double predicted = (p.bound == bound_kind::compute ? p.flops / pc : p.bytes / pm) / time;
      const efficiency_factor& f = e.bound == bound_kind::compute ? fc : fm;
      out.push_back({p.id, measured, predicted, (predicted - measured) / measured,
                     f.describe() + fmt::format("; timed: max(compute, memory) + {:.1f} us", overhead(p.target).seconds * 1e6),
                     std::string(to_string(e.bound))});
      continue;
    }
    std::optional<double> group;
    if (p.shape.contains("ep") && p.shape["ep"].is_number_integer()) group = p.shape["ep"].get<double>();
    const efficiency_factor f = factor_excluding(p.target, p.kernel, p.dtype, p.bound, &p, group, p.mode);
    out.push_back({p.id, e.fraction, f.eta, (f.eta - e.fraction) / e.fraction, f.describe(), std::string(to_string(e.bound))});
  }
  return out;
}

nlohmann::json efficiency_model::fitted_json() const {
  std::set<std::tuple<std::string, int, std::string, int>> keys;
  for (const auto& e : entries_) {
    keys.emplace(db_.chip_of(db_.get(e.point->target)).slug, static_cast<int>(e.point->kernel), e.point->dtype,
                 static_cast<int>(e.bound));
  }
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [t, k, dt, b] : keys) {
    nlohmann::json j = factor(t, static_cast<kernel_class>(k), dt, static_cast<bound_kind>(b)).to_json();
    j["target"] = t;
    j["kernel"] = std::string(to_string(static_cast<kernel_class>(k)));
    j["dtype"] = dt;
    j["bound"] = std::string(to_string(static_cast<bound_kind>(b)));
    out.push_back(std::move(j));
  }
  return out;
}

double median_abs(const std::vector<loo_result>& r) {
  if (r.empty()) throw std::invalid_argument("median_abs: no leave-one-out results");
  std::vector<double> v;
  for (const auto& x : r) v.push_back(std::fabs(x.rel_error));
  return median(v);
}

nlohmann::json calibration_json(const efficiency_model& m) {
  const auto loo = m.leave_one_out();
  nlohmann::json l = nlohmann::json::array();
  for (const auto& r : loo) {
    const auto& pts = m.points();
    const auto it = std::find_if(pts.begin(), pts.end(), [&](const calibration_point& p) { return p.id == r.id; });
    l.push_back({{"id", r.id}, {"target", it->target}, {"kernel", std::string(to_string(it->kernel))}, {"dtype", it->dtype},
                 {"bound", std::string(to_string(it->bound))}, {"fit_bound", r.fit_bound}, {"measured", r.measured},
                 {"predicted", r.predicted}, {"rel_error", r.rel_error}, {"provenance", r.provenance}});
  }
  nlohmann::json oh = nlohmann::json::array();
  for (const auto& o : m.overheads())
    oh.push_back({{"vendor", o.vendor}, {"us", o.seconds * 1e6}, {"source", o.source}, {"confidence", std::string(to_string(o.grade))}});
  return {{"method", "median achieved fraction per target x kernel class x dtype x bound; points with a work model "
                     "(m, n, k) are times: fitted in the roofline's binding bound net of the vendor's per-op overhead and "
                     "predicted as max(compute, memory) + overhead; all_to_all by EP size (ln(ep) line) and regime "
                     "(low-latency / normal); borrowing: vendor family (same dtype), the target in other dtypes, the family "
                     "in other dtypes, all vendors; else assumed (see profiles/README.md)"},
          {"points", m.points().size()},
          {"overheads", oh},
          {"factors", m.fitted_json()},
          {"leave_one_out", l},
          {"median_abs_loo_error", median_abs(loo)}};
}

}  // namespace infermark
