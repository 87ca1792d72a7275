// Subcommands of the `infermark` program. Each lives in bench/cmd_<name>.cpp and is listed once in
// bench/cli.cpp. setup() declares the subcommand's options on `sub` (CLI11) and returns the action to run
// after parsing. An action returns the exit code; it throws std::invalid_argument (or any
// std::exception) for bad input, which the CLI prints and turns into exit code 2.
#pragma once
#include <functional>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <iosfwd>

namespace infermark {

struct global_options {
  std::string results_dir;   // --results-dir (default: default_results_dir())
  std::string max_isa;       // --max-isa, applied before any action runs
  std::string command_line;  // the whole command line, for results files
};

// The main job's estimate tables (DeepSeek-V3 decode and prefill, Qwen3-30B-A3B decode, all profiles),
// printed to `out`, with host fractions from `results_file`; returns them as `estimate --format json`
// objects (bench/cmd_estimate.cpp).
nlohmann::json default_estimate_tables(const global_options& g, const std::filesystem::path& results_file,
                                       std::ostream& out);

struct command {
  std::string name;
  std::string help;
  std::function<std::function<int()>(CLI::App& sub, const global_options& g)> setup;
};

command run_command();
command probe_command();
command list_command();
command compare_command();
command baseline_command();
command report_command();
command estimate_command();
command calibrate_command();
command profiles_command();

}  // namespace infermark
