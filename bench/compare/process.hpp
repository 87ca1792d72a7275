// Running child processes for the A/B and callgrind modes: argv vectors (no shell, so no quoting
// problems), extra environment variables, stdout+stderr into a log file.
#pragma once
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace infermark {

struct process_spec {
  std::vector<std::string> argv;                          // argv[0] is looked up in PATH when it has no '/'
  std::vector<std::pair<std::string, std::string>> env;   // set (overriding) in the child
  std::filesystem::path cwd;                              // empty = inherit
  std::filesystem::path log;                              // stdout and stderr appended here; empty = inherit
};

// Runs the process to completion and returns its exit status (128 + signal when killed). Throws
// std::runtime_error when it cannot be started (the message names the program).
int run_process(const process_spec& spec);

// Runs and captures stdout (stderr inherited); returns {exit status, stdout}.
std::pair<int, std::string> capture_process(const std::vector<std::string>& argv, const std::filesystem::path& cwd = {});

// The last `lines` lines of a text file ("" when unreadable), for error messages.
std::string tail_of(const std::filesystem::path& file, int lines);

// Quotes an argv for display as a shell command line.
std::string shell_join(const std::vector<std::string>& argv);

// The path of the running executable (/proc/self/exe).
std::filesystem::path self_executable();

}  // namespace infermark
