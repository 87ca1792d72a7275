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
                  std::cout << fmt::format("  {:<44} probe {:>8.1f}  {} {:>8.1f}  ratio {:>5.2f}  {}\n", c.value("name", "?"),
                                           c.value("probe_value", 0.0), c.value("reference", std::string("?")),
                                           c.value("reference_value", 0.0), c.value("ratio", 0.0),
                                           c.value("ok", false) ? "ok" : "IMPLAUSIBLE");
                }
                std::cout << "  details: " << pl.report.dump() << "\n";
              }
              return pl.ok ? 0 : 1;
            };
          }};
}

}  // namespace infermark
