// `infermark compare` on synthetic results with known shifts: a 10% regression is detected, an unchanged
// pair is not flagged, a noisy pair is inconclusive, different machines are refused unless allowed, plain
// Google Benchmark JSON is read, cases present on one side only are listed, and the exports have the
// shapes Bencher and github-action-benchmark read.
#include <gtest/gtest.h>

#include <cmath>

#include "bench/compare/compare.hpp"
#include "bench/compare/stats.hpp"

namespace infermark {
namespace {

// n repetitions around `median` seconds with log-normal spread `cv`: exp(cv * z_i) at the normal quantiles
// z_i of (i + phase) / n, rotated so the order is not sorted. Deterministic, so the tests are exact.
std::vector<double> reps(int n, double median, double cv, double phase = 0.5, int rotate = 3) {
  std::vector<double> v;
  for (int i = 0; i < n; ++i) v.push_back(median * std::exp(cv * stats::normal_quantile((i + phase) / n)));
  std::rotate(v.begin(), v.begin() + rotate % n, v.end());
  return v;
}

nlohmann::json entry(const std::string& name, double seconds, int n, int index) {
  return {{"name", name},      {"run_name", name}, {"run_type", "iteration"}, {"repetitions", n},
          {"repetition_index", index}, {"iterations", 100}, {"real_time", seconds * 1e3}, {"cpu_time", seconds * 1e3},
          {"time_unit", "ms"}};
}

nlohmann::json infermark_doc(const std::string& fingerprint,
                             const std::vector<std::pair<std::string, std::vector<double>>>& cases,
                             const std::string& pin = "none") {
  nlohmann::json doc;
  doc["context"] = {{"date", "2025-01-01T00:00:00+00:00"}, {"host_name", "ci"}, {"num_cpus", 2}, {"load_avg", {0.5, 0.4, 0.3}}};
  doc["context"]["infermark"] = {{"fingerprint", fingerprint}, {"suite", "ci"}, {"mode", "perf"}, {"backend", "serial"},
                                 {"threads", 1}, {"pinning", {{"requested", pin}, {"applied", pin != "none"}}},
                                 {"isa", {{"effective", "avx2"}}},
                                 {"build", {{"git_revision", "abc"}, {"build_type", "Release"}, {"compiler", "GNU 12.2.0"},
                                            {"sanitizer", "none"}}},
                                 {"interrupted", false}};
  doc["benchmarks"] = nlohmann::json::array();
  for (const auto& [name, v] : cases) {
    for (std::size_t i = 0; i < v.size(); ++i) doc["benchmarks"].push_back(entry(name, v[i], static_cast<int>(v.size()), static_cast<int>(i)));
    doc["benchmarks"].push_back({{"name", name + "_median"}, {"run_name", name}, {"run_type", "aggregate"},
                                 {"aggregate_name", "median"}, {"real_time", stats::median(v) * 1e3}, {"time_unit", "ms"}});
  }
  return doc;
}

const std::string A = "gemm:m64n1408k2048:fp32/avx2:fp32/serial/1";
const std::string B = "gemm:m16n2048k1408:fp32/avx2:fp32/serial/1";

comparison run(const nlohmann::json& base, const nlohmann::json& next, compare_options opt = {}) {
  return compare_results(read_results(base, "base.json"), read_results(next, "new.json"), opt);
}

TEST(CompareVerdict, TenPercentRegressionIsDetected) {
  const auto base = infermark_doc("fp1", {{A, reps(10, 1e-3, 0.01)}, {B, reps(10, 2e-3, 0.01)}});
  const auto next = infermark_doc("fp1", {{A, reps(10, 1.1e-3, 0.01, 0.45, 7)}, {B, reps(10, 2e-3, 0.01, 0.55, 5)}});
  const auto c = run(base, next);
  ASSERT_EQ(c.cases.size(), 2u);
  EXPECT_EQ(c.cases[0].v, verdict::regressed) << c.cases[0].reason;
  EXPECT_NEAR(c.cases[0].ratio, 1.10, 0.01);
  EXPECT_GT(c.cases[0].ratio_lo, 1.05);
  EXPECT_LT(c.cases[0].ratio_lo, 1.10);
  EXPECT_GT(c.cases[0].ratio_hi, 1.10);
  EXPECT_TRUE(c.cases[0].p_exact);
  // Separated samples of 10: p = 2 / C(20, 10); Holm over 2 cases doubles the smaller one.
  EXPECT_NEAR(c.cases[0].p, 2.0 / 184756, 1e-12);
  EXPECT_NEAR(c.cases[0].p_adjusted, 4.0 / 184756, 1e-12);
  EXPECT_EQ(c.cases[1].v, verdict::unchanged) << c.cases[1].reason;
  EXPECT_EQ(c.exit_code(), 1);
  EXPECT_NE(render_table(c).find("REGRESSED"), std::string::npos);
}

TEST(CompareVerdict, UnchangedPairIsNotFlagged) {
  const auto base = infermark_doc("fp1", {{A, reps(10, 1e-3, 0.02)}, {B, reps(10, 2e-3, 0.02)}});
  const auto next = infermark_doc("fp1", {{A, reps(10, 1.005e-3, 0.02, 0.4, 1)}, {B, reps(10, 1.99e-3, 0.02, 0.6, 8)}});
  const auto c = run(base, next);
  for (const auto& cc : c.cases) {
    EXPECT_EQ(cc.v, verdict::unchanged) << cc.name << ": " << cc.reason;
    EXPECT_GT(cc.ratio_lo, 1 / 1.05);
    EXPECT_LT(cc.ratio_hi, 1.05);
  }
  EXPECT_EQ(c.exit_code(), 0);
}

TEST(CompareVerdict, ImprovementIsReportedAndDoesNotFail) {
  const auto base = infermark_doc("fp1", {{A, reps(10, 1e-3, 0.01)}});
  const auto next = infermark_doc("fp1", {{A, reps(10, 0.8e-3, 0.01, 0.3, 2)}});
  const auto c = run(base, next);
  EXPECT_EQ(c.cases[0].v, verdict::improved) << c.cases[0].reason;
  EXPECT_NEAR(c.cases[0].ratio, 0.8, 0.01);
  EXPECT_EQ(c.exit_code(), 0);
}

TEST(CompareVerdict, NoisyPairIsInconclusiveNotAFalseAlarm) {
  // A 10% shift under 20% noise: the CV preflight refuses to call it.
  const auto base = infermark_doc("fp1", {{A, reps(10, 1e-3, 0.2)}});
  const auto next = infermark_doc("fp1", {{A, reps(10, 1.1e-3, 0.2, 0.45, 7)}});
  const auto c = run(base, next);
  EXPECT_EQ(c.cases[0].v, verdict::inconclusive);
  EXPECT_NE(c.cases[0].reason.find("too noisy"), std::string::npos) << c.cases[0].reason;
  EXPECT_EQ(c.exit_code(), 3);
  // Raising the CV limit lets the test speak: the CI is then too wide to call it either way.
  compare_options loose;
  loose.max_cv = 0.5;
  const auto c2 = run(base, next, loose);
  EXPECT_EQ(c2.cases[0].v, verdict::inconclusive) << c2.cases[0].reason;
  EXPECT_NE(c2.cases[0].reason.find("straddles"), std::string::npos) << c2.cases[0].reason;
}

TEST(CompareVerdict, ShiftStraddlingTheThresholdIsInconclusive) {
  // +5% with 3% noise: clearly slower, but the CI reaches both sides of the 5% threshold.
  const auto base = infermark_doc("fp1", {{A, reps(10, 1e-3, 0.03)}});
  const auto next = infermark_doc("fp1", {{A, reps(10, 1.05e-3, 0.03, 0.45, 7)}});
  const auto c = run(base, next);
  EXPECT_EQ(c.cases[0].v, verdict::inconclusive);
  EXPECT_LT(c.cases[0].ratio_lo, 1.05);
  EXPECT_GT(c.cases[0].ratio_hi, 1.05);
  EXPECT_EQ(c.exit_code(), 3);
}

TEST(CompareVerdict, TooFewRepetitionsAreInconclusive) {
  const auto base = infermark_doc("fp1", {{A, reps(3, 1e-3, 0.01)}});
  const auto next = infermark_doc("fp1", {{A, reps(3, 1.5e-3, 0.01)}});
  const auto c = run(base, next);
  EXPECT_EQ(c.cases[0].v, verdict::inconclusive);
  EXPECT_NE(c.cases[0].reason.find("too few repetitions"), std::string::npos) << c.cases[0].reason;
  EXPECT_NEAR(c.cases[0].ratio, 1.5, 1e-9);  // the estimate is still shown
}

TEST(CompareVerdict, DifferentMachinesAreRefusedUnlessAllowed) {
  const auto base = infermark_doc("aaaa", {{A, reps(10, 1e-3, 0.01)}});
  const auto next = infermark_doc("bbbb", {{A, reps(10, 1e-3, 0.01)}});
  try {
    run(base, next);
    FAIL() << "expected a refusal";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("--allow-different-machines"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("aaaa"), std::string::npos) << e.what();
  }
  compare_options allow;
  allow.allow_different_machines = true;
  const auto c = run(base, next, allow);
  EXPECT_TRUE(c.different_machines);
  EXPECT_NE(render_table(c).find("DIFFERENT MACHINES"), std::string::npos);
  EXPECT_NE(render_markdown(c).find("Different machines"), std::string::npos);
}

TEST(CompareVerdict, NoiseControlDifferencesAreWarned) {
  const auto base = infermark_doc("fp1", {{A, reps(10, 1e-3, 0.01)}}, "none");
  const auto next = infermark_doc("fp1", {{A, reps(8, 1e-3, 0.01)}}, "core");
  const auto c = run(base, next);
  std::string all;
  for (const auto& w : c.warnings) all += w + "\n";
  EXPECT_NE(all.find("pinning differs"), std::string::npos) << all;
  EXPECT_NE(all.find("repetitions differs: 10 (base) vs 8 (new)"), std::string::npos) << all;
}

TEST(CompareVerdict, PlainGoogleBenchmarkJsonIsRead) {
  // What libbenchmark writes with --benchmark_repetitions=6 --benchmark_format=json (no infermark context).
  nlohmann::json base = {{"context", {{"date", "x"}, {"host_name", "h"}}}, {"benchmarks", nlohmann::json::array()}};
  nlohmann::json next = base;
  const auto b = reps(6, 500e-9, 0.01), n = reps(6, 600e-9, 0.01, 0.4, 2);
  for (int i = 0; i < 6; ++i) {
    base["benchmarks"].push_back({{"name", "BM_x/64"}, {"run_name", "BM_x/64"}, {"run_type", "iteration"},
                                  {"repetitions", 6}, {"real_time", b[i] * 1e9}, {"time_unit", "ns"}});
    next["benchmarks"].push_back({{"name", "BM_x/64"}, {"run_name", "BM_x/64"}, {"run_type", "iteration"},
                                  {"repetitions", 6}, {"real_time", n[i] * 1e6}, {"time_unit", "us"}});
  }
  const auto c = run(base, next);
  EXPECT_EQ(c.base_fingerprint, "unknown");
  bool said = false;
  for (const auto& w : c.warnings) said = said || w.find("plain Google Benchmark JSON") != std::string::npos;
  EXPECT_TRUE(said);
  EXPECT_EQ(c.cases[0].v, verdict::regressed) << c.cases[0].reason;
  EXPECT_NEAR(c.cases[0].ratio, 1.2, 0.01);
}

TEST(CompareVerdict, CasesOnOneSideAreListed) {
  const auto base = infermark_doc("fp1", {{A, reps(10, 1e-3, 0.01)}, {B, reps(10, 1e-3, 0.01)}});
  const auto next = infermark_doc("fp1", {{A, reps(10, 1e-3, 0.01)}, {"gemm:new/x/serial/1", reps(10, 1e-3, 0.01)}});
  const auto c = run(base, next);
  EXPECT_EQ(c.count(verdict::only_base), 1);
  EXPECT_EQ(c.count(verdict::only_new), 1);
  const auto table = render_table(c);
  EXPECT_NE(table.find("only in base"), std::string::npos);
  EXPECT_NE(table.find("gemm:new/x/serial/1"), std::string::npos);
  EXPECT_EQ(c.exit_code(), 0);
  EXPECT_THROW(run(base, infermark_doc("fp1", {{"other", reps(10, 1e-3, 0.01)}})), std::invalid_argument);
}

TEST(CompareVerdict, CallgrindCountsUseAPlainThreshold) {
  auto doc = [](double a, double b) {
    nlohmann::json d;
    d["context"]["infermark"] = {{"tier", "callgrind"}, {"fingerprint", "fp1"}, {"suite", "ci"}};
    d["benchmarks"] = {{{"name", A}, {"run_name", A}, {"run_type", "iteration"}, {"instructions", a}},
                       {{"name", B}, {"run_name", B}, {"run_type", "iteration"}, {"instructions", b}}};
    return d;
  };
  compare_options opt;
  opt.threshold = 0.02;
  const auto c = run(doc(1e6, 2e6), doc(1.025e6, 2.01e6), opt);
  EXPECT_EQ(c.tier, metric_tier::callgrind);
  EXPECT_EQ(c.cases[0].v, verdict::regressed);
  EXPECT_EQ(c.cases[1].v, verdict::unchanged);
  EXPECT_EQ(c.exit_code(), 1);
  // Timed results and counts are not comparable.
  EXPECT_THROW(run(doc(1, 1), infermark_doc("fp1", {{A, reps(10, 1e-3, 0.01)}})), std::invalid_argument);
}

TEST(CompareVerdict, ExportsHaveTheDocumentedShapes) {
  const auto base = infermark_doc("fp1", {{A, reps(10, 1e-3, 0.01)}});
  const auto next = infermark_doc("fp1", {{A, reps(10, 1.1e-3, 0.01, 0.45, 7)}});
  const auto c = run(base, next);
  const auto bmf = to_bmf(c);
  ASSERT_TRUE(bmf.contains(A));
  const auto& lat = bmf[A]["latency"];
  EXPECT_NEAR(lat["value"].get<double>(), 1.1e6, 1.1e6 * 0.01);  // nanoseconds
  EXPECT_LT(lat["lower_value"].get<double>(), lat["value"].get<double>());
  EXPECT_GT(lat["upper_value"].get<double>(), lat["value"].get<double>());
  const auto gab = to_github_benchmark(c);
  ASSERT_TRUE(gab.is_array());
  ASSERT_EQ(gab.size(), 1u);
  EXPECT_EQ(gab[0]["name"], A);
  EXPECT_EQ(gab[0]["unit"], "ns");
  EXPECT_TRUE(gab[0]["value"].is_number());
  EXPECT_TRUE(gab[0]["range"].is_string());
  EXPECT_NE(gab[0]["extra"].get<std::string>().find("regressed"), std::string::npos);
  const auto j = to_json(c);
  EXPECT_EQ(j["summary"]["regressed"], 1);
  EXPECT_EQ(j["summary"]["exit_code"], 1);
  EXPECT_EQ(j["cases"][0]["verdict"], "regressed");
  const auto md = render_markdown(c);
  EXPECT_NE(md.find("| case | base | new |"), std::string::npos);
  EXPECT_NE(md.find("**regressed**"), std::string::npos);
}

TEST(CompareVerdict, BadInputIsRejectedWithTheChoices) {
  EXPECT_DOUBLE_EQ(parse_fraction("5%", "--threshold"), 0.05);
  EXPECT_DOUBLE_EQ(parse_fraction("0.02", "--threshold"), 0.02);
  EXPECT_THROW(parse_fraction("5", "--threshold"), std::invalid_argument);
  EXPECT_THROW(parse_fraction("abc", "--threshold"), std::invalid_argument);
  EXPECT_THROW(parse_fraction("150%", "--threshold"), std::invalid_argument);
  EXPECT_THROW(parse_correction("bonferroni"), std::invalid_argument);
  EXPECT_THROW(read_results(nlohmann::json{{"x", 1}}, "bad.json"), std::runtime_error);
  EXPECT_THROW(read_results(nlohmann::json{{"benchmarks", {{{"name", "a"}, {"real_time", 1}, {"time_unit", "fortnights"}}}}}, "bad.json"),
               std::runtime_error);
}

}  // namespace
}  // namespace infermark
