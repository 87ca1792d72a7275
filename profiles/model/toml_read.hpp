// Shared by the data-file loaders (profile.cpp, calibration.cpp, models.cpp): parsing a TOML file into a
// profile_error on bad syntax, and the line of a node for messages. Internal to profiles/model.
#pragma once
#include <filesystem>
#include <string>

#include <toml++/toml.h>

#include "profiles/model/profile.hpp"

namespace infermark::toml_read {

// Line of `n` (1 when unknown or null).
inline int line_of(const toml::node* n) {
  const int line = n ? static_cast<int>(n->source().begin.line) : 1;
  return line > 0 ? line : 1;
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
