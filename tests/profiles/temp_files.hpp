// Test helpers for the data-file loaders: a per-test temporary directory of written files, and a
// checked text replacement (fails the test when `from` is absent, so a mutation cannot silently no-op).
#pragma once
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string>

namespace infermark::test {

struct temp_dir {
  std::filesystem::path path;
  // Creates the directory (emptied) and the given subdirectories.
  explicit temp_dir(std::initializer_list<const char*> subdirs = {}) {
    const auto* ut = ::testing::UnitTest::GetInstance();
    path = std::filesystem::temp_directory_path() /
           ("infermark_test_" + std::to_string(ut->random_seed()) + "_" + ut->current_test_info()->test_suite_name() + "_" +
            ut->current_test_info()->name());
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
    for (const char* s : subdirs) std::filesystem::create_directories(path / s);
  }
  ~temp_dir() { std::filesystem::remove_all(path); }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  std::filesystem::path write(const std::string& rel, const std::string& text) const {
    const std::filesystem::path p = path / rel;
    std::ofstream(p) << text;
    return p;
  }
};

inline std::string replace(std::string s, const std::string& from, const std::string& to) {
  const auto pos = s.find(from);
  EXPECT_NE(pos, std::string::npos) << from;
  if (pos != std::string::npos) s.replace(pos, from.size(), to);
  return s;
}

}  // namespace infermark::test
