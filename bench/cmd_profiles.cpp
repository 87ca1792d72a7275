// `infermark profiles list | show NAME`: the hardware profiles, every figure with its source and grade.
#include <fmt/format.h>

#include <iostream>

#include "bench/command.hpp"
#include "bench/probe/probe.hpp"
#include "profiles/model/profile.hpp"

namespace infermark {
namespace {

std::string figure_text(const profile& p, const std::string& key) {
  if (p.has(key)) return fmt::format("{:g}", p.figures.at(key).value);
  if (std::find(p.unsupported.begin(), p.unsupported.end(), key.substr(key.find('.') + 1)) != p.unsupported.end() &&
      key.rfind("peak.", 0) == 0)
    return "-";
  return "?";
}

void print_list(const profile_db& db, std::ostream& out) {
  out << fmt::format("{:<20} {:<6} {:<15} {:>5} {:>8} {:>8} {:>8} {:>7} {:>7} {:>7}  {}\n", "slug", "kind", "vendor", "year",
                     "bf16", "fp8", "int8", "TB/s", "GB", "TDP W", "unknown figures");
  for (const auto& s : db.slugs()) {
    const profile& p = db.get(s);
    const profile& c = db.chip_of(p);
    std::string power = p.kind == profile_kind::system ? (p.has("power.all_in") ? fmt::format("{:g}kW", p.at("power.all_in").value) : "?")
                                                       : figure_text(c, "power.tdp");
    std::string label = p.kind == profile_kind::system ? fmt::format("{} x {}", p.count, p.chip) : "";
    out << fmt::format("{:<20} {:<6} {:<15} {:>5} {:>8} {:>8} {:>8} {:>7} {:>7} {:>7}  {}{}\n", s, to_string(p.kind), p.vendor,
                       p.year ? std::to_string(*p.year) : "?", figure_text(c, "peak.bf16"), figure_text(c, "peak.fp8"),
                       figure_text(c, "peak.int8"), figure_text(c, "memory.bandwidth"), figure_text(c, "memory.capacity"), power,
                       c.unknown.size(), label.empty() ? "" : " (" + label + ")");
  }
  out << "peaks dense TFLOPS (int8 TOPS); '-' no such unit, '?' unknown (see 'infermark profiles show NAME'); "
         "'host' is built from 'infermark probe'\n";
}

void print_show(const nlohmann::json& j, std::ostream& out, const std::string& indent = "") {
  out << fmt::format("{}{} ({}): {} {}{}\n", indent, j["slug"].get<std::string>(), j["kind"].get<std::string>(),
                     j["vendor"].get<std::string>(), j["name"].get<std::string>(),
                     j["year"].is_null() ? "" : fmt::format(", {}", j["year"].get<int>()));
  if (j.value("speculative", false)) out << indent << "SPECULATIVE: every figure is a rumour or an estimate\n";
  if (j.contains("notes")) out << indent << "notes: " << j["notes"].get<std::string>() << "\n";
  for (const auto& [k, v] : j["text"].items()) out << fmt::format("{}  {:<22} {}\n", indent, k, v.get<std::string>());
  if (j.contains("chip")) out << fmt::format("{}  {:<22} {} x {}\n", indent, "chips", j["count"].get<int>(), j["chip"].get<std::string>());
  for (const auto& [k, f] : j["figures"].items()) {
    out << fmt::format("{}  {:<22} {:g} {}  [{}] {}\n", indent, k, f["value"].get<double>(), f["unit"].get<std::string>(),
                       f["confidence"].get<std::string>(), f["source"].get<std::string>());
    if (f.contains("notes")) out << fmt::format("{}  {:<22}   note: {}\n", indent, "", f["notes"].get<std::string>());
    for (const auto& a : f.value("alternatives", nlohmann::json::array()))
      out << fmt::format("{}  {:<22}   alternative: {:g} {} [{}] {}\n", indent, "", a["value"].get<double>(), a["unit"].get<std::string>(),
                         a["confidence"].get<std::string>(), a["source"].get<std::string>());
  }
  for (const auto& [k, why] : j["unknown"].items()) out << fmt::format("{}  {:<22} unknown: {}\n", indent, k, why.get<std::string>());
  if (!j["unsupported"].empty()) {
    std::string u;
    for (const auto& x : j["unsupported"]) u += (u.empty() ? "" : ", ") + x.get<std::string>();
    out << fmt::format("{}  {:<22} {}\n", indent, "no unit for", u);
  }
  if (j.contains("totals")) {
    out << indent << "  totals (chip x count, published beside):\n";
    for (const auto& t : j["totals"])
      out << fmt::format("{}    {:<20} {:>10.1f} {:<6} {}\n", indent, t["key"].get<std::string>(), t["computed"].get<double>(),
                         t["unit"].get<std::string>(),
                         t.contains("published") ? fmt::format("published {:g} [{}] {}", t["published"]["value"].get<double>(),
                                                               t["published"]["confidence"].get<std::string>(),
                                                               t["published"]["source"].get<std::string>())
                                                 : "");
  }
  if (j.contains("chip_profile")) {
    out << indent << "  chip profile:\n";
    print_show(j["chip_profile"], out, indent + "    ");
  }
}

}  // namespace

command profiles_command() {
  return {"profiles", "list the hardware profiles, or show one with every figure's source and confidence",
          [](CLI::App& sub, const global_options& g) -> std::function<int()> {
            auto name = std::make_shared<std::string>();
            auto format = std::make_shared<std::string>("table");
            CLI::App* list = sub.add_subcommand("list", "every profile with its headline figures");
            CLI::App* show = sub.add_subcommand("show", "one profile: every figure with unit, source, confidence, alternatives");
            show->add_option("name", *name, "profile slug (see 'infermark profiles list')")->required();
            show->add_option("--format", *format, "table | json")->capture_default_str();
            sub.require_subcommand(1);
            return [name, format, list, &g] {
              profile_db db = profile_db::load(profiles_dir());
              if (list->parsed()) {
                print_list(db, std::cout);
                return 0;
              }
              if (*format != "table" && *format != "json")
                throw std::invalid_argument(fmt::format("unknown format '{}'; valid choices: table, json", *format));
              if (*name == "host") db.add(make_host_profile(load_or_measure_probe(g.results_dir, false).to_json()));
              if (!db.find(*name)) {
                std::string valid;
                for (const auto& s : db.slugs()) valid += s + ", ";
                throw std::invalid_argument(fmt::format("unknown profile '{}'; valid choices: {}host", *name, valid));
              }
              const nlohmann::json j = db.show(*name);
              if (*format == "json") std::cout << j.dump(2) << "\n";
              else print_show(j, std::cout);
              return 0;
            };
          }};
}

}  // namespace infermark
