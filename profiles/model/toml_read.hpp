// Shared by the data-file loaders (profile.cpp, calibration.cpp, models.cpp): the *.toml files of a
// directory, parsing one into a profile_error on bad syntax, and the line of a node for messages.
// Internal to profiles/model.
#pragma once
#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include <toml++/toml.h>

#include "profiles/model/profile.hpp"

namespace infermark::toml_read {

// Line of `n` (1 when unknown or null).
inline int line_of(const toml::node* n) {
  const int line = n ? static_cast<int>(n->source().begin.line) : 1;
  return line > 0 ? line : 1;
}

// The regular *.toml files of `dir` by path (none when dir is not a directory).
inline std::vector<std::filesystem::path> files(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> out;
  if (!std::filesystem::is_directory(dir)) return out;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.is_regular_file() && e.path().extension() == ".toml") out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

// The parsed file; a syntax error is a profile_error at its line with an empty key.
inline toml::table parse(const std::filesystem::path& file) {
  try {
    return toml::parse_file(file.string());
  } catch (const toml::parse_error& e) {
    throw profile_error(file.string(), static_cast<int>(e.source().begin.line), "", std::string(e.description()));
  }
}

}  // namespace infermark::toml_read
