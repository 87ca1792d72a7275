#include "profiles/model/profile.hpp"
#include "profiles/model/toml_read.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <set>

#include <fmt/format.h>
#include <toml++/toml.h>

namespace infermark {

namespace {

constexpr std::array<std::string_view, 6> confidence_names = {"vendor",    "paper", "third-party",
                                                              "community", "rumor", "measured"};

std::string join(const std::vector<std::string>& v, std::string_view sep = ", ") {
  std::string out;
  for (const auto& s : v) {
    if (!out.empty()) out += sep;
    out += s;
  }
  return out;
}

using toml_read::line_of;

// The fixed schema of a profile kind: which figure keys exist (with their unit), which are required
// (present or listed unknown), which strings exist, and which tables may group them.
struct schema {
  std::map<std::string, std::string> figure_units;  // dotted key -> the one accepted unit
  std::set<std::string> required_figures;
  std::set<std::string> text_keys;                   // optional strings
  std::set<std::string> required_text;               // strings that must be given or listed unknown
  std::set<std::string> groups;                      // tables that only group other keys
};

const schema& chip_schema() {
  static const schema s = [] {
    schema c;
    for (auto dt : peak_dtypes) {
      c.figure_units["peak." + std::string(dt)] = dt == "int8" ? "TOPS" : "TFLOPS";
    }
    c.figure_units["memory.capacity"] = "GB";
    c.figure_units["memory.bandwidth"] = "TB/s";
    c.figure_units["power.tdp"] = "W";
    c.figure_units["scale_up.bandwidth"] = "GB/s";
    c.figure_units["scale_up.domain"] = "devices";
    c.figure_units["scale_out.bandwidth"] = "GB/s";
    // Peaks are accounted for separately (figure, unsupported or unknown).
    for (const auto& [k, u] : c.figure_units) {
      if (k.rfind("peak.", 0) != 0) c.required_figures.insert(k);
    }
    c.text_keys = {"process_node", "form_factor", "memory.type", "scale_up.technology",
                   "scale_out.technology", "notes"};
    c.required_text = {"process_node", "form_factor", "memory.type", "scale_up.technology",
                       "scale_out.technology"};
    c.groups = {"peak", "memory", "power", "scale_up", "scale_out"};
    return c;
  }();
  return s;
}

const schema& system_schema() {
  static const schema s = [] {
    schema c;
    c.figure_units["power.all_in"] = "kW";
    c.figure_units["scale_up.domain"] = "devices";
    c.required_figures = {"power.all_in", "scale_up.domain"};
    for (auto dt : peak_dtypes) {
      c.figure_units["totals.peak." + std::string(dt)] = dt == "int8" ? "POPS" : "PFLOPS";
    }
    c.figure_units["totals.memory.capacity"] = "TB";
    c.figure_units["totals.memory.bandwidth"] = "TB/s";
    c.figure_units["totals.scale_up.bandwidth"] = "TB/s";
    c.text_keys = {"scale_up.technology", "host", "notes"};
    c.groups = {"power", "scale_up", "totals", "totals.peak", "totals.memory", "totals.scale_up"};
    return c;
  }();
  return s;
}

struct parser {
  std::string file;
  const schema* sc = nullptr;
  profile out;
  std::map<std::string, int> unknown_lines;     // field -> line of its [[unknown]] entry
  bool have_unsupported = false;
  int unsupported_line = 1;

  [[noreturn]] void fail(int line, const std::string& key, const std::string& problem) const {
    throw profile_error(file, line, key, problem);
  }

  // Keys valid directly under `prefix`, for "unknown key" messages.
  std::vector<std::string> valid_keys_under(const std::string& prefix, bool root) const {
    std::set<std::string> keys;
    auto add_child = [&](const std::string& full) {
      if (prefix.empty()) {
        keys.insert(full.substr(0, full.find('.')));
      } else if (full.rfind(prefix + ".", 0) == 0) {
        std::string rest = full.substr(prefix.size() + 1);
        keys.insert(rest.substr(0, rest.find('.')));
      }
    };
    for (const auto& [k, u] : sc->figure_units) add_child(k);
    for (const auto& k : sc->text_keys) add_child(k);
    for (const auto& k : sc->groups) add_child(k);
    if (prefix == "peak") keys.insert("unsupported");
    if (root) {
      for (const char* k : {"kind", "vendor", "name", "year", "speculative", "unknown"}) keys.insert(k);
      if (out.kind == profile_kind::system) {
        keys.insert("chip");
        keys.insert("count");
      }
    }
    return {keys.begin(), keys.end()};
  }

  std::string str(const toml::node& n, const std::string& key, bool nonempty = true) const {
    auto v = n.value<std::string>();
    if (!n.is_string() || !v) fail(line_of(&n), key, "expected a string");
    if (nonempty && v->empty()) fail(line_of(&n), key, "must not be empty");
    return *v;
  }

  double number(const toml::node& n, const std::string& key) const {
    double v = 0;
    if (n.is_integer()) {
      v = static_cast<double>(n.as_integer()->get());
    } else if (n.is_floating_point()) {
      v = n.as_floating_point()->get();
    } else {
      fail(line_of(&n), key, "expected a number");
    }
    if (!std::isfinite(v) || v <= 0) fail(line_of(&n), key, fmt::format("must be > 0, got {}", v));
    return v;
  }

  sourced_value parse_value(const toml::table& t, const std::string& key, const std::string& unit,
                            bool allow_alternatives, figure* fig) const {
    sourced_value sv;
    for (auto&& [k, node] : t) {
      const std::string sub = key + "." + std::string(k.str());
      if (k == "value") {
        sv.value = number(node, sub);
      } else if (k == "unit") {
        sv.unit = str(node, sub);
        if (sv.unit != unit) {
          fail(line_of(&node), sub, fmt::format("wrong unit '{}': this field takes '{}'", sv.unit, unit));
        }
      } else if (k == "source") {
        sv.source = str(node, sub);
      } else if (k == "confidence") {
        const std::string c = str(node, sub);
        try {
          sv.grade = parse_confidence(c);
        } catch (const std::invalid_argument& e) {
          fail(line_of(&node), sub, e.what());
        }
      } else if (k == "notes") {
        sv.notes = str(node, sub, false);
      } else if (k == "alternatives" && allow_alternatives) {
        const toml::array* arr = node.as_array();
        if (!arr) fail(line_of(&node), sub, "expected an array of tables ([[...alternatives]])");
        for (const auto& el : *arr) {
          const toml::table* at = el.as_table();
          if (!at) fail(line_of(&el), sub, "expected a table");
          fig->alternatives.push_back(parse_value(*at, sub, unit, false, nullptr));
        }
      } else {
        fail(line_of(&node), sub,
             fmt::format("unknown key '{}' (valid: value, unit, source, confidence, notes{})",
                         std::string(k.str()), allow_alternatives ? ", alternatives" : ""));
      }
    }
    const int line = line_of(&t);
    if (!t.contains("value")) fail(line, key + ".value", "missing required key");
    if (!t.contains("unit")) fail(line, key + ".unit", fmt::format("missing required key (expected '{}')", unit));
    if (!t.contains("source")) fail(line, key + ".source", "missing required key: every figure needs a source");
    if (!t.contains("confidence")) {
      fail(line, key + ".confidence",
           "missing required key: every figure needs a confidence (vendor, paper, third-party, community, rumor, measured)");
    }
    return sv;
  }

  void parse_figure(const toml::node& n, const std::string& key) {
    const toml::table* t = n.as_table();
    if (!t) fail(line_of(&n), key, "expected a table with value, unit, source, confidence");
    figure f;
    static_cast<sourced_value&>(f) = parse_value(*t, key, sc->figure_units.at(key), true, &f);
    f.origin = fmt::format("{}:{}", file, line_of(&n));
    out.figures[key] = std::move(f);
  }

  void parse_unknown(const toml::node& n) {
    const toml::array* arr = n.as_array();
    if (!arr) fail(line_of(&n), "unknown", "expected an array of tables ([[unknown]] with field and reason)");
    for (const auto& el : *arr) {
      const toml::table* t = el.as_table();
      if (!t) fail(line_of(&el), "unknown", "expected a table with field and reason");
      std::string field, reason;
      for (auto&& [k, v] : *t) {
        if (k == "field") {
          field = str(v, "unknown.field");
        } else if (k == "reason") {
          reason = str(v, "unknown.reason");
        } else {
          fail(line_of(&v), "unknown." + std::string(k.str()), "unknown key (valid: field, reason)");
        }
      }
      const int line = line_of(t);
      if (field.empty()) fail(line, "unknown.field", "missing required key");
      if (reason.empty()) fail(line, "unknown.reason", fmt::format("missing required key: say why '{}' is unknown", field));
      const bool known_field = sc->figure_units.count(field) || sc->required_text.count(field) ||
                               (field == "year");
      if (!known_field) {
        std::vector<std::string> valid;
        for (const auto& [k, u] : sc->figure_units) valid.push_back(k);
        for (const auto& k : sc->required_text) valid.push_back(k);
        valid.push_back("year");
        fail(line, "unknown.field", fmt::format("'{}' is not a field of this profile kind (valid: {})", field, join(valid)));
      }
      if (out.unknown.count(field)) fail(line, "unknown.field", fmt::format("'{}' listed twice", field));
      out.unknown[field] = reason;
      unknown_lines[field] = line;
    }
  }

  void walk(const toml::table& t, const std::string& prefix) {
    for (auto&& [k, node] : t) {
      const std::string key = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
      const int line = line_of(&node);
      if (sc->figure_units.count(key)) {
        parse_figure(node, key);
      } else if (sc->text_keys.count(key)) {
        (key == "notes" ? out.notes : out.text[key]) = str(node, key, key != "notes");
      } else if (prefix.empty() && (key == "kind" || key == "vendor" || key == "name")) {
        const std::string v = str(node, key);
        if (key == "vendor") out.vendor = v;
        if (key == "name") out.name = v;
      } else if (prefix.empty() && key == "year") {
        if (!node.is_integer()) fail(line, key, "expected an integer year");
        const auto y = node.as_integer()->get();
        if (y < 1990 || y > 2100) fail(line, key, fmt::format("implausible year {}", y));
        out.year = static_cast<int>(y);
      } else if (prefix.empty() && key == "speculative") {
        if (!node.is_boolean()) fail(line, key, "expected true or false");
        out.speculative = node.as_boolean()->get();
      } else if (prefix.empty() && key == "unknown") {
        parse_unknown(node);
      } else if (prefix.empty() && out.kind == profile_kind::system && key == "chip") {
        out.chip = str(node, key);
      } else if (prefix.empty() && out.kind == profile_kind::system && key == "count") {
        if (!node.is_integer() || node.as_integer()->get() <= 0) fail(line, key, "expected an integer > 0");
        out.count = static_cast<int>(node.as_integer()->get());
      } else if (out.kind == profile_kind::chip && key == "peak.unsupported") {
        const toml::array* arr = node.as_array();
        if (!arr) fail(line, key, "expected an array of dtype names");
        have_unsupported = true;
        unsupported_line = line;
        for (const auto& el : *arr) {
          const std::string dt = str(el, key);
          if (std::find(peak_dtypes.begin(), peak_dtypes.end(), dt) == peak_dtypes.end()) {
            fail(line_of(&el), key, fmt::format("'{}' is not a peak dtype (valid: fp32, tf32, bf16, fp16, fp8, int8, fp4)", dt));
          }
          out.unsupported.push_back(dt);
        }
      } else if (sc->groups.count(key)) {
        const toml::table* sub = node.as_table();
        if (!sub) fail(line, key, "expected a table");
        walk(*sub, key);
      } else {
        fail(line, key, fmt::format("unknown key (valid here: {})", join(valid_keys_under(prefix, prefix.empty()))));
      }
    }
  }

  // Line of the deepest table that exists on the path to `key`, for "missing" messages.
  int line_for_missing(const toml::table& root, const std::string& key) const {
    const toml::node* best = &root;
    const toml::table* cur = &root;
    std::string rest = key;
    while (cur) {
      const auto dot = rest.find('.');
      const std::string head = rest.substr(0, dot);
      const toml::node* n = cur->get(head);
      if (!n || dot == std::string::npos) break;
      best = n;
      cur = n->as_table();
      rest = rest.substr(dot + 1);
    }
    return line_of(best);
  }

  void check_complete(const toml::table& root) {
    auto given = [&](const std::string& k) {
      return out.figures.count(k) || out.text.count(k) || (k == "year" && out.year);
    };
    auto require = [&](const std::string& k) {
      const bool unk = out.unknown.count(k) > 0;
      if (given(k) && unk) fail(unknown_lines.at(k), "unknown.field", fmt::format("'{}' is given and also listed as unknown", k));
      if (!given(k) && !unk) {
        fail(line_for_missing(root, k), k, "missing required field (give it, or list it under [[unknown]] with a reason)");
      }
    };
    if (out.vendor.empty()) fail(1, "vendor", "missing required key");
    if (out.name.empty()) fail(1, "name", "missing required key");
    for (const auto& k : sc->required_figures) require(k);
    for (const auto& k : sc->required_text) require(k);
    require("year");
    for (const auto& [k, reason] : out.unknown) {
      if (given(k)) fail(unknown_lines.at(k), "unknown.field", fmt::format("'{}' is given and also listed as unknown", k));
    }
    if (out.kind == profile_kind::chip) {
      std::set<std::string> seen;
      for (const auto& dt : out.unsupported) {
        if (!seen.insert(dt).second) fail(unsupported_line, "peak.unsupported", fmt::format("'{}' listed twice", dt));
      }
      for (auto dtv : peak_dtypes) {
        const std::string dt(dtv), key = "peak." + dt;
        const int states = int(out.figures.count(key)) + int(seen.count(dt)) + int(out.unknown.count(key));
        if (states == 0) {
          fail(line_for_missing(root, key), key,
               "missing: give the dense peak, list the dtype in peak.unsupported (no such unit), or list it under [[unknown]]");
        }
        if (states > 1) {
          fail(seen.count(dt) ? unsupported_line : line_for_missing(root, key), key,
               "given more than once (figure, peak.unsupported and [[unknown]] are exclusive)");
        }
      }
    } else {
      if (out.chip.empty()) fail(1, "chip", "missing required key (slug of the chip profile)");
      if (out.count <= 0) fail(1, "count", "missing required key (chips per system)");
    }
  }
};

std::string confidence_list() {
  std::vector<std::string> v(confidence_names.begin(), confidence_names.end());
  return join(v);
}

nlohmann::json value_json(const sourced_value& v) {
  nlohmann::json j = {{"value", v.value}, {"unit", v.unit}, {"source", v.source},
                      {"confidence", std::string(to_string(v.grade))}};
  if (!v.notes.empty()) j["notes"] = v.notes;
  return j;
}

}  // namespace

std::string_view to_string(confidence c) { return confidence_names.at(static_cast<std::size_t>(c)); }

confidence parse_confidence(std::string_view name) {
  for (std::size_t i = 0; i < confidence_names.size(); ++i) {
    if (confidence_names[i] == name) return static_cast<confidence>(i);
  }
  throw std::invalid_argument(fmt::format("unknown confidence grade '{}' (valid: {})", name, confidence_list()));
}

std::string_view to_string(profile_kind k) {
  switch (k) {
    case profile_kind::chip: return "chip";
    case profile_kind::system: return "system";
    case profile_kind::host: return "host";
  }
  return "?";
}

profile_error::profile_error(std::string file, int line, std::string key, const std::string& problem)
    : std::invalid_argument(fmt::format("{}:{}: key '{}': {}", file, line, key, problem)),
      file_(std::move(file)),
      line_(line),
      key_(std::move(key)) {}

not_estimable::not_estimable(const std::string& slug, const std::string& field, const std::string& reason)
    : std::runtime_error(fmt::format("not estimable: {}: {} is unknown ({})", slug, field, reason)),
      field_(field),
      reason_(reason) {}

const figure& profile::at(std::string_view key) const {
  const std::string k(key);
  if (auto it = figures.find(k); it != figures.end()) return it->second;
  if (auto it = unknown.find(k); it != unknown.end()) throw not_estimable(slug, k, it->second);
  throw not_estimable(slug, k, fmt::format("{} profile has no such field", to_string(kind)));
}

std::optional<double> profile::peak(std::string_view dtype) const {
  if (std::find(peak_dtypes.begin(), peak_dtypes.end(), dtype) == peak_dtypes.end()) {
    throw std::invalid_argument(
        fmt::format("unknown peak dtype '{}' (valid: fp32, tf32, bf16, fp16, fp8, int8, fp4)", dtype));
  }
  if (std::find(unsupported.begin(), unsupported.end(), dtype) != unsupported.end()) return std::nullopt;
  return at("peak." + std::string(dtype)).value;
}

nlohmann::json profile::to_json() const {
  nlohmann::json j = {{"slug", slug}, {"kind", std::string(to_string(kind))}, {"vendor", vendor}, {"name", name}};
  j["year"] = year ? nlohmann::json(*year) : nlohmann::json(nullptr);
  j["speculative"] = speculative;
  if (!notes.empty()) j["notes"] = notes;
  if (!file.empty()) j["file"] = file.string();
  j["text"] = text;
  nlohmann::json figs = nlohmann::json::object();
  for (const auto& [k, f] : figures) {
    nlohmann::json fj = value_json(f);
    fj["origin"] = f.origin;
    fj["alternatives"] = nlohmann::json::array();
    for (const auto& a : f.alternatives) fj["alternatives"].push_back(value_json(a));
    figs[k] = std::move(fj);
  }
  j["figures"] = std::move(figs);
  j["unknown"] = unknown;
  j["unsupported"] = unsupported;
  if (kind == profile_kind::system) {
    j["chip"] = chip;
    j["count"] = count;
  }
  return j;
}

profile load_profile(const std::filesystem::path& file, std::optional<profile_kind> expected) {
  const std::string fname = file.string();
  const toml::table root = toml_read::parse(file);
  parser p;
  p.file = fname;
  p.out.slug = file.stem().string();
  p.out.file = file;
  const toml::node* kind = root.get("kind");
  if (!kind) throw profile_error(fname, 1, "kind", "missing required key (chip or system)");
  const std::string k = p.str(*kind, "kind");
  if (k == "chip") {
    p.out.kind = profile_kind::chip;
  } else if (k == "system") {
    p.out.kind = profile_kind::system;
  } else {
    throw profile_error(fname, line_of(kind), "kind", fmt::format("unknown kind '{}' (valid: chip, system)", k));
  }
  if (expected && *expected != p.out.kind) {
    throw profile_error(fname, line_of(kind), "kind",
                        fmt::format("'{}' found where a {} profile is expected", k, to_string(*expected)));
  }
  p.sc = p.out.kind == profile_kind::chip ? &chip_schema() : &system_schema();
  p.walk(root, "");
  p.check_complete(root);
  std::sort(p.out.unsupported.begin(), p.out.unsupported.end());
  return std::move(p.out);
}

profile make_host_profile(const nlohmann::json& probe) {
  if (!probe.is_object()) throw std::invalid_argument("host profile: probe result must be a JSON object");
  auto number_at = [&](const char* group, const char* key) -> std::optional<double> {
    if (!probe.contains(group) || !probe[group].is_object() || !probe[group].contains(key)) return std::nullopt;
    const auto& v = probe[group][key];
    if (v.is_null()) return std::nullopt;
    if (!v.is_number()) {
      throw std::invalid_argument(fmt::format("host profile: {}.{} must be a number or null, got {}", group, key, v.dump()));
    }
    const double d = v.get<double>();
    if (!std::isfinite(d) || d <= 0) {
      throw std::invalid_argument(fmt::format("host profile: {}.{} must be > 0, got {}", group, key, d));
    }
    return d;
  };
  const auto fp32 = number_at("peak_gflops", "fp32");
  if (!fp32) throw std::invalid_argument("host profile: probe result lacks peak_gflops.fp32 (GFLOP/s)");
  const auto read = number_at("bandwidth_gbs", "read");
  if (!read) throw std::invalid_argument("host profile: probe result lacks bandwidth_gbs.read (GB/s)");

  profile h;
  h.slug = "host";
  h.kind = profile_kind::host;
  h.vendor = "host";
  h.name = "host CPU";
  if (probe.contains("fingerprint_fields") && probe["fingerprint_fields"].is_object()) {
    const auto& ff = probe["fingerprint_fields"];
    for (const char* key : {"cpu_model", "cpu", "model"}) {
      if (ff.contains(key) && ff[key].is_string()) {
        h.name = ff[key].get<std::string>();
        break;
      }
    }
  }
  std::string src = "infermark probe";
  if (probe.contains("fingerprint") && probe["fingerprint"].is_string()) {
    src += " (fingerprint " + probe["fingerprint"].get<std::string>() + ")";
  }
  if (probe.contains("measured_at") && probe["measured_at"].is_string()) {
    src += " at " + probe["measured_at"].get<std::string>();
  }
  auto add = [&](const std::string& key, double v, const char* unit, const char* what) {
    figure f;
    f.value = v;
    f.unit = unit;
    f.source = src;
    f.grade = confidence::measured;
    f.notes = what;
    f.origin = "probe";
    h.figures[key] = std::move(f);
  };
  // The probe reports GFLOP/s and GB/s; profiles use TFLOPS and TB/s.
  add("peak.fp32", *fp32 / 1000.0, "TFLOPS", "all-core FMA throughput");
  if (auto bf16 = number_at("peak_gflops", "bf16")) {
    add("peak.bf16", *bf16 / 1000.0, "TFLOPS", "bf16 dot products with fp32 accumulation");
  } else {
    h.unsupported.push_back("bf16");
  }
  if (auto int8 = number_at("peak_gflops", "int8")) {
    add("peak.int8", *int8 / 1000.0, "TOPS", "int8 dot products with int32 accumulation");
  } else {
    h.unsupported.push_back("int8");
  }
  h.unsupported.push_back("tf32");  // no TF32 unit on CPUs
  h.unsupported.push_back("fp4");
  std::sort(h.unsupported.begin(), h.unsupported.end());
  add("memory.bandwidth", *read / 1000.0, "TB/s", "DRAM read, all threads, working set >= 4x LLC");
  h.text["memory.type"] = "DRAM";
  const std::string not_probed = "not measured by infermark probe";
  h.unknown["peak.fp16"] = not_probed;
  h.unknown["peak.fp8"] = "no native fp8 unit measured by infermark probe";
  if (probe.contains("memory_bytes") && probe["memory_bytes"].is_number() && probe["memory_bytes"].get<double>() > 0)
    add("memory.capacity", probe["memory_bytes"].get<double>() / 1e9, "GB", "installed memory (MemTotal)");
  else
    h.unknown["memory.capacity"] = not_probed;
  h.unknown["power.tdp"] = "CPU power is not measured by infermark probe";
  h.unknown["scale_up.bandwidth"] = "single host: no scale-up link";
  h.unknown["scale_up.domain"] = "single host: no scale-up link";
  h.unknown["scale_out.bandwidth"] = not_probed;
  return h;
}

std::vector<system_total> system_totals(const profile& system, const profile& chip) {
  if (system.kind != profile_kind::system) {
    throw std::invalid_argument(fmt::format("system_totals: '{}' is a {}, not a system", system.slug, to_string(system.kind)));
  }
  if (chip.slug != system.chip) {
    throw std::invalid_argument(fmt::format("system_totals: '{}' is built from '{}', not '{}'", system.slug, system.chip, chip.slug));
  }
  struct scaling {
    std::string key;
    double factor;  // chip unit -> system unit
    std::string unit;
  };
  std::vector<scaling> keys;
  for (auto dt : peak_dtypes) {
    keys.push_back({"peak." + std::string(dt), 1e-3, dt == "int8" ? "POPS" : "PFLOPS"});
  }
  keys.push_back({"memory.capacity", 1e-3, "TB"});
  keys.push_back({"memory.bandwidth", 1.0, "TB/s"});
  keys.push_back({"scale_up.bandwidth", 1e-3, "TB/s"});
  std::vector<system_total> out;
  for (const auto& s : keys) {
    auto it = chip.figures.find(s.key);
    if (it == chip.figures.end()) continue;
    system_total t;
    t.key = s.key;
    t.computed = it->second.value * s.factor * system.count;
    t.unit = s.unit;
    if (auto pub = system.figures.find("totals." + s.key); pub != system.figures.end()) t.published = pub->second;
    out.push_back(std::move(t));
  }
  return out;
}

namespace {
std::filesystem::path& current_profiles_dir() {
  static std::filesystem::path dir = default_profiles_dir();
  return dir;
}
}  // namespace

std::filesystem::path default_profiles_dir() {
  if (const char* d = std::getenv("INFERMARK_PROFILES_DIR"); d != nullptr && *d != '\0') return d;
  return INFERMARK_PROFILES_DIR;
}
const std::filesystem::path& profiles_dir() { return current_profiles_dir(); }
void set_profiles_dir(std::filesystem::path dir) { current_profiles_dir() = std::move(dir); }

profile_db profile_db::load(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(dir)) {
    throw std::invalid_argument(fmt::format("profiles directory '{}' does not exist (--profiles-dir or INFERMARK_PROFILES_DIR: "
                                            "a directory holding chips/, systems/, calibration/ and models/)",
                                            dir.string()));
  }
  profile_db db;
  for (const auto& [sub, kind] : {std::pair{"chips", profile_kind::chip}, std::pair{"systems", profile_kind::system}}) {
    const fs::path d = dir / sub;
    for (const auto& f : toml_read::files(d)) {
      const std::string stem = f.stem().string();
      const bool slug_ok = !stem.empty() && std::all_of(stem.begin(), stem.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
      });
      if (!slug_ok) throw profile_error(f.string(), 1, "", fmt::format("file stem '{}' is not a slug ([a-z0-9-]+)", stem));
      if (stem == "host") throw profile_error(f.string(), 1, "", "'host' is reserved for the probed host profile");
      db.add(load_profile(f, kind));
    }
  }
  if (std::none_of(db.profiles_.begin(), db.profiles_.end(), [](const auto& e) { return e.second.kind == profile_kind::chip; })) {
    throw std::invalid_argument(fmt::format("profiles directory '{}' holds no chip profile (chips/*.toml); it should hold "
                                            "chips/, systems/, calibration/ and models/",
                                            dir.string()));
  }
  for (const auto& [slug, p] : db.profiles_) {
    if (p.kind != profile_kind::system) continue;
    const profile* c = db.find(p.chip);
    if (!c || c->kind != profile_kind::chip) {
      std::vector<std::string> chips;
      for (const auto& [s, q] : db.profiles_) {
        if (q.kind == profile_kind::chip) chips.push_back(s);
      }
      throw profile_error(p.file.string(), 1, "chip", fmt::format("'{}' is not a chip profile (valid: {})", p.chip, join(chips)));
    }
  }
  return db;
}

void profile_db::add(profile p) {
  const std::string slug = p.slug;
  if (profiles_.count(slug)) throw std::invalid_argument(fmt::format("duplicate profile slug '{}'", slug));
  profiles_.emplace(slug, std::move(p));
}

std::vector<std::string> profile_db::slugs() const {
  std::vector<std::string> out;
  for (const auto& [s, p] : profiles_) out.push_back(s);
  return out;
}

const profile* profile_db::find(std::string_view slug) const {
  auto it = profiles_.find(slug);
  return it == profiles_.end() ? nullptr : &it->second;
}

const profile& profile_db::get(std::string_view slug) const {
  if (const profile* p = find(slug)) return *p;
  throw std::invalid_argument(fmt::format("unknown profile '{}' (valid: {})", slug, join(slugs())));
}

const profile& profile_db::chip_of(const profile& p) const {
  if (p.kind != profile_kind::system) return p;
  return get(p.chip);
}

nlohmann::json profile_db::show(std::string_view slug) const {
  const profile& p = get(slug);
  nlohmann::json j = p.to_json();
  if (p.kind == profile_kind::system) {
    const profile& c = chip_of(p);
    j["chip_profile"] = c.to_json();
    nlohmann::json totals = nlohmann::json::array();
    for (const auto& t : system_totals(p, c)) {
      nlohmann::json tj = {{"key", t.key}, {"computed", t.computed}, {"unit", t.unit},
                           {"basis", fmt::format("{} x {} ({})", c.slug, p.count, c.figures.at(t.key).source)}};
      if (t.published) tj["published"] = value_json(*t.published);
      totals.push_back(std::move(tj));
    }
    j["totals"] = std::move(totals);
  }
  return j;
}

}  // namespace infermark
