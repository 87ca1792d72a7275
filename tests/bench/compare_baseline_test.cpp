// Baselines under <results>/baselines/<fingerprint>/<suite>.json and the A/B merge of interleaved runs.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "bench/compare/ab.hpp"
#include "bench/compare/baseline.hpp"
#include "bench/results.hpp"

namespace infermark {
namespace {

class temp_dir {
 public:
  temp_dir() {
    path_ = std::filesystem::temp_directory_path() / ("infermark-baseline-test-" + std::to_string(::getpid()));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~temp_dir() { std::filesystem::remove_all(path_); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

nlohmann::json results(const std::string& fp, const std::string& suite, int reps, bool interrupted = false) {
  nlohmann::json d;
  d["context"] = {{"date", "2025-01-01T00:00:00+00:00"}};
  d["context"]["infermark"] = {{"fingerprint", fp}, {"suite", suite}, {"mode", "perf"}, {"interrupted", interrupted},
                               {"build", {{"git_revision", "abc123"}}}, {"summary", {{"failed", 0}}}};
  d["benchmarks"] = nlohmann::json::array();
  for (int i = 0; i < reps; ++i)
    d["benchmarks"].push_back({{"name", "g/x/serial/1"}, {"run_name", "g/x/serial/1"}, {"run_type", "iteration"},
                               {"repetitions", reps}, {"repetition_index", i}, {"real_time", 1.0 + i * 0.01},
                               {"time_unit", "ms"}});
  return d;
}

TEST(CompareBaseline, SuiteKeys) {
  EXPECT_EQ(suite_key("ci"), "ci");
  EXPECT_EQ(suite_key("--case"), "cases");
  EXPECT_EQ(suite_key("/home/me/my suite.txt"), "my_suite");
  EXPECT_EQ(suite_key("unknown"), "unknown-suite");
  EXPECT_EQ(baseline_path("/r", "0123abcd", "ci", metric_tier::time), std::filesystem::path("/r/baselines/0123abcd/ci.json"));
  EXPECT_EQ(baseline_path("/r", "0123abcd", "ci", metric_tier::callgrind),
            std::filesystem::path("/r/baselines/0123abcd/ci.callgrind.json"));
  EXPECT_THROW(baseline_path("/r", "../etc", "ci", metric_tier::time), std::invalid_argument);
}

TEST(CompareBaseline, UpdateWritesAndReplacesAndShowLists) {
  temp_dir t;
  const auto u = update_baseline(results("f00d", "ci", 10), "r.json", t.path());
  EXPECT_EQ(u.path, t.path() / "baselines" / "f00d" / "ci.json");
  EXPECT_FALSE(u.replaced);
  EXPECT_TRUE(u.warnings.empty());
  EXPECT_EQ(read_json_file(u.path)["benchmarks"].size(), 10u);
  const auto u2 = update_baseline(results("f00d", "ci", 2), "r2.json", t.path());
  EXPECT_TRUE(u2.replaced);
  ASSERT_FALSE(u2.warnings.empty());  // 2 repetitions can never give a verdict
  EXPECT_NE(u2.warnings[0].find("2 repetition(s)"), std::string::npos) << u2.warnings[0];
  EXPECT_EQ(read_json_file(u.path)["benchmarks"].size(), 2u);
  // No temporary files left beside it.
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(u.path.parent_path())) files += e.is_regular_file();
  EXPECT_EQ(files, 1);

  update_baseline(results("beef", "quick", 5), "r3.json", t.path());
  const auto all = list_baselines(t.path());
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].fingerprint, "beef");
  EXPECT_EQ(all[0].suite, "quick");
  EXPECT_EQ(all[0].repetitions, "5");
  EXPECT_EQ(all[1].fingerprint, "f00d");
  EXPECT_EQ(all[1].cases, 1);
  EXPECT_EQ(all[1].git_revision, "abc123");
}

TEST(CompareBaseline, UnfitFilesAreRefused) {
  temp_dir t;
  nlohmann::json plain = results("x", "ci", 5);
  plain["context"].erase("infermark");
  EXPECT_THROW(update_baseline(plain, "plain.json", t.path()), std::invalid_argument);
  EXPECT_THROW(update_baseline(results("f00d", "ci", 5, true), "int.json", t.path()), std::invalid_argument);
  nlohmann::json untimed = results("f00d", "ci", 0);
  untimed["benchmarks"].push_back({{"name", "g"}, {"run_type", "correctness"}});
  EXPECT_THROW(update_baseline(untimed, "c.json", t.path()), std::invalid_argument);
  EXPECT_FALSE(std::filesystem::exists(t.path() / "baselines"));
}

TEST(CompareBaseline, AbMergeKeepsEveryRepetition) {
  std::vector<nlohmann::json> runs = {results("f", "ci", 3), results("f", "ci", 4)};
  runs[1]["benchmarks"].push_back({{"name", "g/x/serial/1_median"}, {"run_name", "g/x/serial/1"},
                                   {"run_type", "aggregate"}, {"real_time", 1.0}, {"time_unit", "ms"}});
  const auto m = merge_runs(runs, {{"rounds", 2}});
  ASSERT_EQ(m["benchmarks"].size(), 7u);  // aggregates dropped
  for (int i = 0; i < 7; ++i) {
    EXPECT_EQ(m["benchmarks"][i]["repetition_index"], i);
    EXPECT_EQ(m["benchmarks"][i]["repetitions"], 7);
  }
  EXPECT_EQ(m["context"]["infermark"]["ab"]["rounds"], 2);
  EXPECT_EQ(read_results(m, "m").cases[0].values.size(), 7u);
  EXPECT_THROW(merge_runs({}, {}), std::invalid_argument);
}

TEST(CompareBaseline, UnknownRevisionIsAClearError) {
  try {
    resolve_revision(INFERMARK_TEST_SOURCE_DIR, "no-such-branch-xyz");
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'no-such-branch-xyz' does not exist"), std::string::npos) << e.what();
  }
  EXPECT_THROW(resolve_revision(INFERMARK_TEST_SOURCE_DIR, "--help"), std::invalid_argument);
  if (std::filesystem::exists(std::filesystem::path(INFERMARK_TEST_SOURCE_DIR) / ".git")) {
    EXPECT_EQ(resolve_revision(INFERMARK_TEST_SOURCE_DIR, "HEAD").size(), 40u);
  }
}

}  // namespace
}  // namespace infermark
