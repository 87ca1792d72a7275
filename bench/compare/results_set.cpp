#include "bench/compare/results_set.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

#include "bench/results.hpp"

namespace infermark {

const char* to_string(metric_tier t) { return t == metric_tier::callgrind ? "callgrind" : "time"; }

const case_samples* results_set::find(const std::string& name) const {
  for (const auto& c : cases)
    if (c.name == name) return &c;
  return nullptr;
}

std::string results_set::fact(const char* pointer) const {
  if (!infermark) return "unknown";
  const auto p = nlohmann::json::json_pointer(std::string("/infermark") + pointer);
  if (!context.contains(p)) return "unknown";
  const auto& v = context.at(p);
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "unknown";
  return v.dump();
}

std::string results_set::pinning() const {
  if (!infermark || !context["infermark"].contains("pinning")) return "unknown";
  const auto& p = context["infermark"]["pinning"];
  const std::string req = p.value("requested", std::string("unknown"));
  if (req == "none") return "none";
  const bool applied = p.value("applied", false);
  return applied ? fmt::format("{} (applied)", req) : fmt::format("{} (requested, not applied)", req);
}

std::string results_set::repetitions() const {
  int lo = 0, hi = 0;
  bool any = false;
  for (const auto& c : cases) {
    const int n = c.values.empty() ? c.declared_repetitions : static_cast<int>(c.values.size());
    if (n <= 0) continue;
    lo = any ? std::min(lo, n) : n;
    hi = any ? std::max(hi, n) : n;
    any = true;
  }
  if (!any) return "unknown";
  return lo == hi ? std::to_string(lo) : fmt::format("{}..{}", lo, hi);
}

std::string results_set::suite() const { return fact("/suite"); }

namespace {

double unit_to_seconds(const std::string& unit, const std::string& label, const std::string& name) {
  if (const auto s = time_unit_seconds(unit)) return *s;
  throw std::runtime_error(fmt::format("{}: entry '{}' has time_unit '{}'; valid choices: ns, us, ms, s", label,
                                       name, unit));
}

}  // namespace

results_set read_results(const nlohmann::json& doc, const std::string& label) {
  if (!doc.is_object() || !doc.contains("benchmarks") || !doc["benchmarks"].is_array())
    throw std::runtime_error(fmt::format("{}: not a results file (no \"benchmarks\" array; expected Google "
                                         "Benchmark JSON or an infermark results file)", label));
  results_set rs;
  rs.label = label;
  rs.context = doc.value("context", nlohmann::json::object());
  rs.infermark = rs.context.is_object() && rs.context.contains("infermark") && rs.context["infermark"].is_object();
  if (rs.infermark) {
    const auto& im = rs.context["infermark"];
    if (im.contains("fingerprint") && im["fingerprint"].is_string() && !im["fingerprint"].get<std::string>().empty())
      rs.fingerprint = im["fingerprint"].get<std::string>();
    if (im.value("tier", std::string("time")) == "callgrind") rs.tier = metric_tier::callgrind;
  }

  int skipped_errors = 0, skipped_correctness = 0;
  for (const auto& e : doc["benchmarks"]) {
    if (!e.is_object() || !e.contains("name") || !e["name"].is_string())
      throw std::runtime_error(fmt::format("{}: a \"benchmarks\" entry has no \"name\"", label));
    const std::string name = e["name"].get<std::string>();
    const std::string key = e.contains("run_name") && e["run_name"].is_string() ? e["run_name"].get<std::string>() : name;
    const std::string run_type = e.value("run_type", std::string("iteration"));
    if (e.value("error_occurred", false)) {
      ++skipped_errors;
      continue;
    }
    if (run_type == "correctness") {
      ++skipped_correctness;
      continue;
    }
    auto it = std::find_if(rs.cases.begin(), rs.cases.end(), [&](const case_samples& c) { return c.name == key; });
    if (it == rs.cases.end()) {
      rs.cases.push_back({key, {}, 0, false, ""});
      it = rs.cases.end() - 1;
    }
    if (e.contains("repetitions") && e["repetitions"].is_number_integer())
      it->declared_repetitions = std::max(it->declared_repetitions, e["repetitions"].get<int>());
    if (it->repro.empty() && e.contains("repro") && e["repro"].is_string()) it->repro = e["repro"].get<std::string>();
    if (run_type == "aggregate") continue;
    if (run_type != "iteration")
      throw std::runtime_error(fmt::format("{}: entry '{}' has run_type '{}'; valid choices: iteration, aggregate, "
                                           "correctness", label, name, run_type));
    if (rs.tier == metric_tier::callgrind) {
      if (!e.contains("instructions") || !e["instructions"].is_number())
        throw std::runtime_error(fmt::format("{}: callgrind entry '{}' has no \"instructions\" count", label, name));
      it->values.push_back(e["instructions"].get<double>());
    } else {
      if (!e.contains("real_time") || !e["real_time"].is_number())
        throw std::runtime_error(fmt::format("{}: entry '{}' has no numeric \"real_time\"", label, name));
      const double t = e["real_time"].get<double>() * unit_to_seconds(e.value("time_unit", std::string("ns")), label, name);
      if (!(t > 0))
        throw std::runtime_error(fmt::format("{}: entry '{}' has a non-positive time {}", label, name, t));
      it->values.push_back(t);
    }
  }
  for (auto& c : rs.cases) c.aggregates_only = c.values.empty();
  if (skipped_errors)
    rs.notes.push_back(fmt::format("{}: {} entr{} with error_occurred skipped", label, skipped_errors,
                                   skipped_errors == 1 ? "y" : "ies"));
  if (skipped_correctness)
    rs.notes.push_back(fmt::format("{}: {} correctness-mode entr{} (untimed) skipped", label, skipped_correctness,
                                   skipped_correctness == 1 ? "y" : "ies"));
  return rs;
}

results_set read_results_file(const std::filesystem::path& path) {
  return read_results(read_json_file(path), path.string());
}

}  // namespace infermark
