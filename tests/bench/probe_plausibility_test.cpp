// Plausibility of the probe against OpenBLAS / oneDNN sgemm and a STREAM triad (small, fast settings).
#include <gtest/gtest.h>

#include "backends/backend.hpp"
#include "bench/probe/plausibility.hpp"
#include "bench/probe/probe.hpp"

namespace infermark {
namespace {

const probe_result& probe() {
  static const probe_result r = [] {
    probe_options o;
    o.seconds_per_test = 0.02;
    return measure_probe(o);
  }();
  return r;
}

// A hand-made probe result for the tests that do not need real ceilings.
probe_result made_up(double fp32_gflops, double read_gbs) {
  probe_result r;
  r.fingerprint = machine_fingerprint();
  r.threads = max_threads();
  r.peak_gflops_1core.fp32 = fp32_gflops / r.threads;
  r.peak_gflops.fp32 = fp32_gflops;
  r.read_gbs = read_gbs;
  r.triad_gbs = read_gbs;
  return r;
}

plausibility_options small() {
  plausibility_options o;
  o.gemm_n = 256;
  o.gemm_reps = 2;
  o.stream_passes = 3;
  o.dram_rounds = 2;
  o.read_seconds = 0.05;
  return o;
}

TEST(ProbePlausibility, ReportsPeersStreamAndChecks) {
  const plausibility_result res = check_probe_plausibility(probe(), small());
  const auto& rep = res.report;
  EXPECT_EQ(rep["threads"].get<int>(), probe().threads);
  EXPECT_EQ(rep["probe_fingerprint"], probe().fingerprint);
  EXPECT_GT(rep["stream_triad"]["gbs"].get<double>(), 0.1);
  EXPECT_EQ(rep["stream_triad"]["threads"].get<int>(), probe().threads);

  std::size_t expected_peers = 0;
#ifdef INFERMARK_HAVE_OPENBLAS
  ++expected_peers;
#endif
#ifdef INFERMARK_HAVE_ONEDNN
  ++expected_peers;
#endif
  const auto& peers = rep["sgemm"]["peers"];
  ASSERT_EQ(peers.size(), expected_peers);
  double best = 0;
  for (const auto& p : peers) {
    EXPECT_TRUE(p["verified"].get<bool>());
    EXPECT_GT(p["gflops"].get<double>(), 0.01);
    EXPECT_EQ(p["threads"].get<int>(), probe().threads);
    best = std::max(best, p["gflops"].get<double>());
    if (p["library"] == "openblas cblas_sgemm") {
      EXPECT_FALSE(p["corename"].get<std::string>().empty());  // which OpenBLAS kernel set ran
      EXPECT_TRUE(p.contains("OPENBLAS_CORETYPE"));
    }
  }

  const auto& checks = rep["checks"];
  ASSERT_EQ(checks.size(), 2u);
  const auto& flops = checks[0];
  if (expected_peers > 0) {
    EXPECT_TRUE(flops["checked"].get<bool>());
    EXPECT_EQ(flops["reference_value"].get<double>(), best);
    EXPECT_EQ(flops["probe_value"].get<double>(), *probe().peak_gflops.fp32);
    // A 256^3 sgemm is far from any library's peak: the probe's ceiling must clear it.
    EXPECT_TRUE(flops["ok"].get<bool>()) << flops.dump();
  } else {
    EXPECT_FALSE(flops["checked"].get<bool>());
  }
  const auto& bw = checks[1];
  EXPECT_TRUE(bw["checked"].get<bool>());
  // The probe's read loop is re-measured alternately with STREAM; the best of each side is compared.
  const auto& rounds = rep["stream_triad"]["rounds"];
  ASSERT_EQ(rounds.size(), 2u);
  double best_read = 0, best_triad = 0;
  for (const auto& r : rounds) {
    EXPECT_GT(r["probe_read_gbs"].get<double>(), 0.1);
    best_read = std::max(best_read, r["probe_read_gbs"].get<double>());
    best_triad = std::max(best_triad, r["stream_triad_gbs"].get<double>());
  }
  EXPECT_EQ(rep["probe_read_alongside_gbs"].get<double>(), best_read);
  EXPECT_EQ(rep["stream_triad"]["gbs"].get<double>(), best_triad);
  EXPECT_EQ(rep["probe_read_stored_gbs"].get<double>(), probe().read_gbs);
  EXPECT_EQ(bw["probe_value"].get<double>(), best_read);
  EXPECT_EQ(bw["tolerance"].get<double>(), 0.05);
  EXPECT_EQ(bw["ok"].get<bool>(), best_read >= 0.95 * best_triad);
  // The verdict is the conjunction of the checks.
  EXPECT_EQ(res.ok, flops["ok"].get<bool>() && bw["ok"].get<bool>());
  EXPECT_EQ(rep["ok"].get<bool>(), res.ok);
}

TEST(ProbePlausibility, FailsWhenTheProbeIsBelowThePeers) {
  // A probe claiming a ceiling below what the libraries and STREAM reach must fail the check.
  plausibility_options o = small();
  int calls = 0;
  o.read_loop = [&](const backend& be, double) {  // a read loop that under-measures
    ++calls;
    EXPECT_EQ(be.threads(), probe().threads);
    return 1e-6;
  };
  const plausibility_result res = check_probe_plausibility(made_up(1e-6, 1e-6), o);
  EXPECT_EQ(calls, 2);
  EXPECT_FALSE(res.ok);
  EXPECT_FALSE(res.report["checks"][1]["ok"].get<bool>());
#if defined(INFERMARK_HAVE_OPENBLAS) || defined(INFERMARK_HAVE_ONEDNN)
  EXPECT_FALSE(res.report["checks"][0]["ok"].get<bool>());
#endif
}

TEST(ProbePlausibility, RejectsBadOptions) {
  const probe_result good = made_up(100, 10);
  plausibility_options o = small();
  o.gemm_n = 8;
  EXPECT_THROW(check_probe_plausibility(good, o), std::invalid_argument);
  o = small();
  o.gemm_reps = 0;
  EXPECT_THROW(check_probe_plausibility(good, o), std::invalid_argument);
  o = small();
  o.stream_passes = 1;
  EXPECT_THROW(check_probe_plausibility(good, o), std::invalid_argument);
  o = small();
  o.dram_rounds = 0;
  EXPECT_THROW(check_probe_plausibility(good, o), std::invalid_argument);
  o = small();
  o.dram_tolerance = 1;
  EXPECT_THROW(check_probe_plausibility(good, o), std::invalid_argument);
  o = small();
  o.read_seconds = 0;
  EXPECT_THROW(check_probe_plausibility(good, o), std::invalid_argument);
  o = small();
  o.read_loop = nullptr;
  EXPECT_THROW(check_probe_plausibility(good, o), std::invalid_argument);
  probe_result p = good;
  p.threads = max_threads() + 1;
  EXPECT_THROW(check_probe_plausibility(p, small()), std::invalid_argument);
}

}  // namespace
}  // namespace infermark
