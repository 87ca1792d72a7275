#include <gtest/gtest.h>

#include <filesystem>
#include <sstream>

#include "bench/op.hpp"
#include "bench/results.hpp"
#include "bench/runner.hpp"

namespace infermark {
namespace {

run_options small_run(const std::string& desc, const std::string& impl) {
  run_options opt;
  opt.cases = {{desc, impl}};
  opt.suite_label = "test";
  opt.be = {backend_kind::serial, 1, pin_policy::none};
  opt.min_time_s = 0.01;
  opt.progress = false;
  return opt;
}

TEST(Runner, VerifiesTimesAndWritesGoogleBenchmarkJson) {
  auto opt = small_run("gemm:m17n33k45:fp32", "");
  opt.repetitions = 3;
  opt.out = std::filesystem::path(::testing::TempDir()) / "runner_test.json";
  std::ostringstream out, err;
  const auto r = run_cases(opt, out, err);
  EXPECT_EQ(r.exit_code, 0) << out.str();
  EXPECT_EQ(r.verified, 1);
  const auto j = read_json_file(opt.out);
  ASSERT_TRUE(j.contains("context"));
  ASSERT_TRUE(j["context"].contains("infermark"));
  EXPECT_EQ(j["context"]["infermark"]["backend"], "serial");
  EXPECT_EQ(j["context"]["infermark"]["threads"], 1);
  const auto& b = j["benchmarks"];
  int iterations = 0, aggregates = 0;
  for (const auto& e : b) {
    EXPECT_EQ(e["descriptor"], "gemm:m17n33k45:fp32");
    EXPECT_TRUE(e["verified"].get<bool>());
    EXPECT_DOUBLE_EQ(e["flops_per_iteration"].get<double>(), 2.0 * 17 * 33 * 45);
    EXPECT_DOUBLE_EQ(e["bytes_per_iteration"].get<double>(), 4.0 * (17 * 45 + 33 * 45 + 17 * 33));
    EXPECT_GT(e["real_time"].get<double>(), 0);
    EXPECT_NE(e["repro"].get<std::string>().find("--case gemm:m17n33k45:fp32"), std::string::npos);
    if (e["run_type"] == "iteration") ++iterations;
    if (e["run_type"] == "aggregate") ++aggregates;
  }
  EXPECT_EQ(iterations, 3);
  EXPECT_GE(aggregates, 3);  // mean, median, stddev (and cv)
}

TEST(Runner, CorrectnessModeReportsVerdictWithoutTiming) {
  auto opt = small_run("gemm:m3n5k7:fp32", "ref:any");
  opt.mode = run_mode::correctness;
  std::ostringstream out, err;
  const auto r = run_cases(opt, out, err);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.timed, 0);
  ASSERT_EQ(r.results["benchmarks"].size(), 1u);
  EXPECT_EQ(r.results["benchmarks"][0]["run_type"], "correctness");
}

TEST(Runner, UnknownImplementationIsRejectedUpFrontWithChoices) {
  auto opt = small_run("gemm:m3n5k7:fp32", "nosuch:impl");
  std::ostringstream out, err;
  try {
    run_cases(opt, out, err);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("no implementation named 'nosuch:impl'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("ref:any"), std::string::npos);
  }
}

TEST(Runner, CaseLargerThanMemoryIsRefusedBeforeAllocating) {
  auto opt = small_run("gemm:m1000000n1000000k1000000:fp32", "");
  std::ostringstream out, err;
  const auto r = run_cases(opt, out, err);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.refused, 1);
  EXPECT_NE(out.str().find("GiB of memory but only"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("repro: infermark run --case gemm:m1000000n1000000k1000000:fp32"), std::string::npos);
}

TEST(Runner, PeerWithoutAnImplementationForTheFormatRefusesTheCaseAndTheRunGoesOn) {
  // oneDNN 2.7 has no bf16 matmul on a CPU without AVX-512 (it threw from its primitive descriptor and
  // ended the whole run). Either it runs and verifies here, or it refuses this case (exit 2, the reason
  // named) and the case after it still runs.
  auto opt = small_run("gemm:m8n32k64:bf16", "onednn:matmul");
  opt.cases.push_back({"gemm:m3n5k7:fp32", ""});
  std::ostringstream out, err;
  run_outcome r;
  try {
    r = run_cases(opt, out, err);
  } catch (const std::invalid_argument& e) {
    GTEST_SKIP() << "built without the oneDNN peer: " << e.what();
  }
  EXPECT_EQ(r.verified + r.refused, 2) << out.str();
  EXPECT_EQ(r.failed, 0) << out.str();
  if (r.refused == 1) {
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(out.str().find("onednn:matmul cannot run bf16 on this CPU"), std::string::npos) << out.str();
  } else {
    EXPECT_EQ(r.exit_code, 0);
  }
}

TEST(Runner, BadOptionsFailBeforeRunningAndLeaveNoFile) {
  auto opt = small_run("gemm:m3n5k7:fp32", "");
  std::ostringstream out, err;
  opt.filter = "([";
  EXPECT_THROW(run_cases(opt, out, err), std::invalid_argument);
  opt.filter = "nomatch";
  EXPECT_THROW(run_cases(opt, out, err), std::invalid_argument);
  opt.filter.clear();
  opt.out = "/nonexistent-dir/r.json";
  EXPECT_THROW(run_cases(opt, out, err), std::invalid_argument);
  EXPECT_FALSE(std::filesystem::exists(opt.out));
}

TEST(Results, AtomicWriteReplacesWholeFile) {
  const auto p = std::filesystem::path(::testing::TempDir()) / "atomic.json";
  write_json_atomically(p, {{"a", 1}});
  write_json_atomically(p, {{"b", 2}});
  const auto j = read_json_file(p);
  EXPECT_FALSE(j.contains("a"));
  EXPECT_EQ(j["b"], 2);
  for (const auto& e : std::filesystem::directory_iterator(p.parent_path()))
    EXPECT_EQ(e.path().filename().string().find(".atomic.json.tmp"), std::string::npos);
}

}  // namespace
}  // namespace infermark
