#include "bench/compare/baseline.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <tuple>
#include <stdexcept>

#include "bench/compare/stats.hpp"
#include "bench/results.hpp"

namespace infermark {

std::string suite_key(const std::string& suite_label) {
  std::string key = suite_label;
  if (key == "--case") key = "cases";
  else if (key.find('/') != std::string::npos || key.find('.') != std::string::npos)
    key = std::filesystem::path(key).stem().string();
  if (key.empty() || key == "unknown") key = "unknown-suite";
  for (char& ch : key)
    if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_' || ch == '.')) ch = '_';
  return key;
}

std::filesystem::path baseline_path(const std::filesystem::path& results_dir, const std::string& fingerprint,
                                    const std::string& key, metric_tier tier) {
  const bool plain = !fingerprint.empty() && std::all_of(fingerprint.begin(), fingerprint.end(), [](char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_';
  });
  if (!plain)
    throw std::invalid_argument(fmt::format("fingerprint '{}' is not a plain token ([A-Za-z0-9_-]+)", fingerprint));
  return results_dir / "baselines" / fingerprint /
         (key + (tier == metric_tier::callgrind ? ".callgrind.json" : ".json"));
}

baseline_update update_baseline(const nlohmann::json& doc, const std::string& label,
                                const std::filesystem::path& results_dir) {
  const results_set rs = read_results(doc, label);
  if (!rs.infermark || !rs.fingerprint)
    throw std::invalid_argument(fmt::format("'{}' has no machine fingerprint (context.infermark.fingerprint): only "
                                            "infermark results files can become baselines", label));
  if (rs.fact("/interrupted") == "true")
    throw std::invalid_argument(fmt::format("'{}' is from an interrupted run; record a complete run as the baseline",
                                            label));
  const auto timed = std::count_if(rs.cases.begin(), rs.cases.end(), [](const case_samples& c) { return !c.values.empty(); });
  if (timed == 0)
    throw std::invalid_argument(fmt::format("'{}' has no timed repetitions (mode {}); record it with "
                                            "'infermark run --mode perf --repetitions 10'", label, rs.fact("/mode")));
  baseline_update u;
  u.path = baseline_path(results_dir, *rs.fingerprint, suite_key(rs.suite()), rs.tier);
  if (rs.tier == metric_tier::time) {
    const int need = stats::min_repetitions_for(0.05);
    for (const auto& c : rs.cases)
      if (!c.values.empty() && static_cast<int>(c.values.size()) < need) {
        u.warnings.push_back(fmt::format("{} has {} repetition(s): compare needs at least {} per side to give a "
                                         "verdict (record with --repetitions 10)", c.name, c.values.size(), need));
        break;
      }
  }
  const auto failed = rs.fact("/summary/failed");
  if (failed != "unknown" && failed != "0")
    u.warnings.push_back(fmt::format("'{}' records {} failed verification(s); those cases are missing", label, failed));
  std::error_code ec;
  u.replaced = std::filesystem::exists(u.path, ec);
  std::filesystem::create_directories(u.path.parent_path(), ec);
  if (ec)
    throw std::invalid_argument(fmt::format("cannot create '{}': {}", u.path.parent_path().string(), ec.message()));
  write_json_atomically(u.path, doc);
  return u;
}

std::vector<baseline_info> list_baselines(const std::filesystem::path& results_dir) {
  std::vector<baseline_info> out;
  const auto root = results_dir / "baselines";
  std::error_code ec;
  if (!std::filesystem::is_directory(root, ec)) return out;
  for (const auto& fp : std::filesystem::directory_iterator(root, ec)) {
    if (!fp.is_directory()) continue;
    for (const auto& f : std::filesystem::directory_iterator(fp.path(), ec)) {
      if (!f.is_regular_file() || f.path().extension() != ".json") continue;
      baseline_info b;
      b.path = f.path();
      b.fingerprint = fp.path().filename().string();
      try {
        const auto rs = read_results_file(f.path());
        b.suite = rs.suite();
        b.tier = to_string(rs.tier);
        b.date = rs.context.value("date", std::string("unknown"));
        b.git_revision = rs.fact("/build/git_revision");
        b.repetitions = rs.repetitions();
        b.cases = static_cast<int>(rs.cases.size());
      } catch (const std::exception& e) {
        b.git_revision = fmt::format("unreadable: {}", e.what());
      }
      out.push_back(std::move(b));
    }
  }
  std::sort(out.begin(), out.end(), [](const baseline_info& a, const baseline_info& b) {
    return std::tie(a.fingerprint, a.path) < std::tie(b.fingerprint, b.path);
  });
  return out;
}

}  // namespace infermark
