// `infermark list kernels|suites`.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <iostream>

#include "bench/command.hpp"
#include "bench/op.hpp"
#include "bench/suites.hpp"
#include "profiles/model/profile.hpp"
#include "profiles/model/workload.hpp"

namespace infermark {

command list_command() {
  return {"list", "list kernels (ops and descriptor fields), suites, workloads or profiles",
          [](CLI::App& sub, const global_options&) -> std::function<int()> {
            auto what = std::make_shared<std::string>();
            sub.add_option("what", *what, "kernels | suites | workloads | profiles")->required();
            return [what] {
              if (*what == "kernels") {
                for (const auto& op : ops()) {
                  std::cout << fmt::format("{}: {}\n  descriptor: {}:", op.spec.op, op.spec.help, op.spec.op);
                  for (const auto& f : op.spec.fields)
                    std::cout << fmt::format("{}<{}>{}", f.name, f.help, f.required ? "" : fmt::format("(default {})", f.def));
                  std::vector<std::string> dts;
                  for (auto dt : op.spec.dtypes) dts.emplace_back(to_string(dt));
                  std::cout << fmt::format(":{}", fmt::join(dts, "|"));
                  for (const auto& o : op.spec.options)
                    std::cout << fmt::format("[:{}={}]", o.name, o.choices.empty() ? std::string("<integer>") : fmt::format("{}", fmt::join(o.choices, "|")));
                  std::cout << "\n";
                }
                return 0;
              }
              if (*what == "suites") {
                for (const auto& s : suite_names()) std::cout << fmt::format("{:<8} {}\n", s.name, s.help);
                return 0;
              }
              if (*what == "workloads") {
                for (const auto& m : known_models()) std::cout << fmt::format("{:<18} {}\n", m.slug, m.name);
                return 0;
              }
              if (*what == "profiles") {
                const profile_db db = profile_db::load(profiles_dir());
                for (const auto& slug : db.slugs()) {
                  const profile& p = db.get(slug);
                  std::cout << fmt::format("{:<20} {} {}\n", slug, p.vendor, p.name);
                }
                std::cout << fmt::format("{:<20} {}\n", "host", "this machine, from 'infermark probe'");
                return 0;
              }
              throw std::invalid_argument(
                  fmt::format("cannot list '{}'; valid choices: kernels, suites, workloads, profiles", *what));
            };
          }};
}

}  // namespace infermark
