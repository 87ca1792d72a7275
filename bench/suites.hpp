// Suites: named, embedded lists of cases, or a user file of descriptors.
#pragma once
#include <string>
#include <vector>

namespace infermark {

struct suite_entry {
  std::string descriptor;  // canonical descriptor string
  std::string impl;        // "" = first implementation that accepts; a name; or "all" = every one that does
};

struct suite_info {
  std::string name;
  std::string help;
};

// Embedded suites: quick (the default), full, ci.
std::vector<suite_info> suite_names();
// The named suite, or the file at that path when `name` names an existing file. File format: one
// descriptor per line, optionally followed by "@<impl>" or "@all"; '#' starts a comment. Every
// descriptor is parsed here, so a bad one fails before anything runs. Throws std::invalid_argument
// naming the suite (and the valid choices) or the file, line and bad descriptor.
std::vector<suite_entry> load_suite(const std::string& name);

}  // namespace infermark
