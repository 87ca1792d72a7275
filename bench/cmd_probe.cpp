// `infermark probe`: measure (or show the cached) host roofline.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <iostream>

#include "bench/command.hpp"
#include "bench/probe/plausibility.hpp"
#include "bench/probe/probe.hpp"

namespace infermark {

command probe_command() {
  return {"probe", "measure (or show the cached) host roofline: peak FLOP/s per dtype, memory bandwidth",
          [](CLI::App& sub, const global_options& g) -> std::function<int()> {
            auto format = std::make_shared<std::string>("table");
            auto refresh = std::make_shared<bool>(false);
            auto check = std::make_shared<bool>(false);
            sub.add_option("--format", *format, "table | json")->capture_default_str();
            sub.add_flag("--refresh", *refresh, "measure again instead of using the cache");
            sub.add_flag("--check", *check,
                         "plausibility: compare the fp32 peak with OpenBLAS/oneDNN sgemm and the DRAM read bandwidth "
                         "with a STREAM triad (exit 1 when the probe falls below them)");
            return [format, refresh, check, &g] {
              if (*format != "table" && *format != "json")
                throw std::invalid_argument(fmt::format("unknown format '{}'; valid choices: table, json", *format));
              const auto p = load_or_measure_probe(g.results_dir, *refresh);
              if (!*check) {
                if (*format == "json") std::cout << p.to_json().dump(2) << "\n";
                else std::cout << p.to_table();
                return 0;
              }
              const auto pl = check_probe_plausibility(p);
              if (*format == "json") {
                std::cout << nlohmann::json{{"probe", p.to_json()}, {"plausibility", pl.report}}.dump(2) << "\n";
              } else {
                std::cout << p.to_table();
                std::cout << "\nplausibility:\n";
                for (const auto& c : pl.report.value("checks", nlohmann::json::array())) {
                  if (!c.value("checked", false)) {
                    std::cout << fmt::format("  {:<44} not checked: {}\n", c.value("name", "?"), c.value("reason", std::string("-")));
                    continue;
                  }
                  const double tol = c.value("tolerance", 0.0);
                  std::cout << fmt::format("  {:<44} probe {:>8.1f}  {} {:>8.1f}  ratio {:>5.2f}{}  {}\n", c.value("name", "?"),
                                           c.value("probe_value", 0.0), c.value("reference", std::string("?")),
                                           c.value("reference_value", 0.0), c.value("ratio", 0.0),
                                           tol > 0 ? fmt::format(" (pass >= {:.2f})", 1 - tol) : std::string(),
                                           c.value("ok", false) ? "ok" : "IMPLAUSIBLE");
                }
                const auto& st = pl.report["stream_triad"];
                std::cout << fmt::format("  DRAM: probe read loop and STREAM triad alternated, best of each compared; the\n"
                                         "  stored probe figure is {:.1f} GB/s. Rounds (GB/s, read / triad):",
                                         pl.report.value("probe_read_stored_gbs", 0.0));
                for (const auto& r : st.value("rounds", nlohmann::json::array()))
                  std::cout << fmt::format(" {:.1f}/{:.1f}", r.value("probe_read_gbs", 0.0), r.value("stream_triad_gbs", 0.0));
                std::cout << "\n  sgemm peers:";
                for (const auto& peer : pl.report["sgemm"].value("peers", nlohmann::json::array()))
                  std::cout << fmt::format(" {} {:.1f} GFLOP/s;", peer.value("library", std::string("?")), peer.value("gflops", 0.0));
                std::cout << " (--format json has every detail)\n";
              }
              return pl.ok ? 0 : 1;
            };
          }};
}

}  // namespace infermark
