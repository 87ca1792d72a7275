#include "bench/cli.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <iostream>

#include "bench/command.hpp"
#include "bench/results.hpp"
#include "kernels/common/isa.hpp"
#include "profiles/model/profile.hpp"

namespace infermark {

int cli_main(int argc, char** argv) {
  // Every subcommand, one line each.
  const std::vector<command> commands = {run_command(), probe_command(), list_command(), compare_command(), baseline_command(), report_command(),
                                         estimate_command(),
                                         calibrate_command(),
                                         profiles_command()};

  CLI::App app{"infermark: microbenchmarks of AI inference kernels, verified, placed on the host roofline "
               "and scaled to accelerator estimates"};
  const auto info = build_info();
  app.set_version_flag("--version", fmt::format("infermark {} ({})", info["version"].get<std::string>(),
                                                info["git_revision"].get<std::string>()));
  app.require_subcommand(1);
  global_options g;
  g.results_dir = default_results_dir().string();
  for (int i = 0; i < argc; ++i) g.command_line += (i ? " " : "") + std::string(argv[i]);
  app.add_option("--results-dir", g.results_dir, "where probe caches and results files live")->capture_default_str();
  std::string profiles = default_profiles_dir().string();
  app.add_option("--profiles-dir", profiles, "the profile data: chips/, systems/, calibration/, models/ (also INFERMARK_PROFILES_DIR)")
      ->capture_default_str();
  app.add_option("--max-isa", g.max_isa, "cap kernel dispatch: amx | avx512 | avx2 | neon | generic (also INFERMARK_MAX_ISA)");

  std::vector<std::string> names;
  std::vector<std::pair<CLI::App*, std::function<int()>>> actions;
  for (const auto& c : commands) {
    CLI::App* sub = app.add_subcommand(c.name, c.help);
    actions.emplace_back(sub, c.setup(*sub, g));
    names.push_back(c.name);
  }

  // CLI11 reports a mistyped subcommand as "A subcommand is required"; name it and the choices instead.
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("-", 0) == 0) {  // a global option; one that takes a value (not as --opt=value) skips it too
      const CLI::Option* o = app.get_option_no_throw(a);
      if (o != nullptr && o->get_items_expected_min() > 0) ++i;
      continue;
    }
    if (std::find(names.begin(), names.end(), a) == names.end()) {
      std::cerr << fmt::format("infermark: error: unknown subcommand '{}'; valid choices: {}\n", a, fmt::join(names, ", "));
      return 2;
    }
    break;
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "infermark: error: " << e.what() << "\nRun 'infermark --help' (or 'infermark <command> --help') for usage.\n";
    return 2;
  }

  try {
    if (!g.max_isa.empty()) set_max_isa(g.max_isa);
    set_profiles_dir(profiles);
    for (auto& [sub, action] : actions)
      if (sub->parsed()) return action();
  } catch (const std::exception& e) {
    std::cerr << "infermark: error: " << e.what() << "\n";
    return 2;
  }
  return 2;
}

}  // namespace infermark
