// `infermark baseline update RESULTS.json | show`: the per-machine baselines under
// <results-dir>/baselines/<fingerprint>/<suite>.json that `infermark compare --baseline` uses.
#include <fmt/format.h>

#include <iostream>

#include "bench/command.hpp"
#include "bench/compare/baseline.hpp"
#include "bench/probe/probe.hpp"
#include "bench/results.hpp"

namespace infermark {

command baseline_command() {
  return {"baseline", "store a results file as this machine's baseline (update FILE) or list the baselines (show)",
          [](CLI::App& sub, const global_options& g) -> std::function<int()> {
            auto action = std::make_shared<std::string>();
            auto files = std::make_shared<std::vector<std::string>>();
            sub.add_option("action", *action, "update | show")->required();
            sub.add_option("file", *files, "update: the results file to store");
            return [action, files, &g] {
              if (*action == "update") {
                if (files->size() != 1)
                  throw std::invalid_argument(fmt::format("baseline update takes exactly one results file, got {}", files->size()));
                const auto doc = read_json_file((*files)[0]);
                const auto u = update_baseline(doc, (*files)[0], g.results_dir);
                for (const auto& w : u.warnings) std::cerr << "warning: " << w << "\n";
                std::cout << fmt::format("{} baseline: {}\n", u.replaced ? "replaced" : "stored", u.path.string());
                return 0;
              }
              if (*action == "show") {
                if (!files->empty())
                  throw std::invalid_argument(fmt::format("baseline show takes no file (got '{}')", (*files)[0]));
                const std::string mine = machine_fingerprint();
                const auto all = list_baselines(g.results_dir);
                std::cout << fmt::format("this machine: fingerprint {}\nbaselines under {}:\n", mine,
                                         (std::filesystem::path(g.results_dir) / "baselines").string());
                if (all.empty()) std::cout << "  (none; record one with 'infermark baseline update RESULTS.json')\n";
                for (const auto& b : all)
                  std::cout << fmt::format("  {} {:<16} {:<8} {:<9} {:>3} cases, repetitions {:<5} {} rev {}  {}\n",
                                           b.fingerprint == mine ? "*" : " ", b.fingerprint, b.suite, b.tier, b.cases,
                                           b.repetitions, b.date, b.git_revision, b.path.string());
                return 0;
              }
              throw std::invalid_argument(fmt::format("unknown baseline action '{}'; valid choices: update, show", *action));
            };
          }};
}

}  // namespace infermark
