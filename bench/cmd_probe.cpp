// `infermark probe`: measure (or show the cached) host roofline.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <iostream>

#include "bench/command.hpp"
#include "bench/probe/plausibility.hpp"
#include "bench/probe/probe.hpp"

namespace infermark {
namespace {

void print_probe_table(const probe_result& p, std::ostream& out) {
  auto peak = [](const std::optional<double>& v) { return v ? fmt::format("{:10.1f}", *v) : fmt::format("{:>10}", "n/a"); };
  auto path = [&](const char* k) { return p.isa_used.contains(k) ? p.isa_used[k].get<std::string>() : std::string("-"); };
  out << fmt::format("host roofline (fingerprint {}, measured {})\n", p.fingerprint, p.measured_at);
  out << fmt::format("ISA: {}\n", fmt::join(p.isa, " "));
  out << fmt::format("{:<22} {:>10} {:>10}   {}\n", "peak", "1 core", fmt::format("{} thr", p.threads), "instruction path");
  out << fmt::format("{:<22} {} {}   {}\n", "fp32 FMA GFLOP/s", peak(p.peak_gflops_1core.fp32), peak(p.peak_gflops.fp32), path("fp32"));
  out << fmt::format("{:<22} {} {}   {}\n", "bf16 dot GFLOP/s", peak(p.peak_gflops_1core.bf16), peak(p.peak_gflops.bf16), path("bf16"));
  out << fmt::format("{:<22} {} {}   {}\n", "int8 dot GOP/s", peak(p.peak_gflops_1core.int8), peak(p.peak_gflops.int8), path("int8"));
  out << fmt::format("DRAM GB/s: read {:.1f}, triad {:.1f} (working set {:.0f} MiB)\n", p.read_gbs, p.triad_gbs,
                     p.dram_working_set_bytes / 1048576.0);
  for (const auto& c : p.caches)
    out << fmt::format("L{} read GB/s: {:.1f} (working set {:.0f} KiB)\n", c.level, c.read_gbs, c.size_bytes / 1024.0);
}

}  // namespace

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
                else print_probe_table(p, std::cout);
                return 0;
              }
              const auto pl = check_probe_plausibility(p);
              if (*format == "json") {
                std::cout << nlohmann::json{{"probe", p.to_json()}, {"plausibility", pl.report}}.dump(2) << "\n";
              } else {
                print_probe_table(p, std::cout);
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
