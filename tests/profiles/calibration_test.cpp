// Calibration data loads and is kernel-level and sourced; fitted factors have provenance and ranges;
// leave-one-out errors are reported; loader errors name file, line and key.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>

#include "profiles/model/calibration.hpp"

namespace fs = std::filesystem;
using namespace infermark;

namespace {
const fs::path kDir = INFERMARK_PROFILES_DIR;
const profile_db& db() {
  static const profile_db d = profile_db::load(kDir);
  return d;
}
const std::vector<calibration_point>& points() {
  static const auto p = load_calibration(kDir / "calibration");
  return p;
}
const std::vector<op_overhead>& overheads() {
  static const auto o = load_overheads(kDir / "calibration");
  return o;
}
const calibration_point& point(const std::string& id) {
  for (const auto& p : points()) {
    if (p.id == id) return p;
  }
  throw std::invalid_argument("no point " + id);
}
}  // namespace

TEST(Calibration, ShippedPointsLoadAndResolve) {
  EXPECT_GE(points().size(), 50u);
  check_targets(points(), db());
  for (const auto& p : points()) {
    EXPECT_FALSE(p.source.empty()) << p.id;
    EXPECT_FALSE(p.shape.empty()) << p.id;
    const double f = achieved_fraction(p, db().chip_of(db().get(p.target)));
    EXPECT_GT(f, 0.05) << p.id;
    EXPECT_LT(f, 1.2) << p.id;  // DeepEP's RDMA figures slightly exceed 50 GB/s (accounting differences)
  }
}

TEST(Calibration, FractionsMatchPublishedPercentages) {
  // DeepGEMM: 1358 TFLOPS FP8 on H800 = 68.6% of 1979 (README).
  EXPECT_NEAR(achieved_fraction(point("deepgemm-h800-4096x7168x16384"), db().get("h800")), 0.686, 0.001);
  // FlashMLA: 3000 GB/s = 89.6% of 3.35 TB/s.
  EXPECT_NEAR(achieved_fraction(point("flashmla-h800-memory"), db().get("h800")), 0.896, 0.001);
  // AMLA: 614 TFLOPS = 86.8% of the 910C BF16 peak as the paper says.
  EXPECT_NEAR(achieved_fraction(point("amla-910c-mla-compute"), db().get("ascend-910c")), 0.868, 0.002);
  EXPECT_NEAR(achieved_fraction(point("cm384-mla-compute"), db().get("ascend-910c")), 0.654, 1e-12);
}

// A timed GEMM point's fraction net of the NVIDIA per-op overhead (3.7 us): flops / (peak x (T - t0)).
double net_compute(double m, double n, double k, double tflops, double peak_tflops) {
  const double flops = 2 * m * n * k, t = flops / (tflops * 1e12);
  return flops / (peak_tflops * 1e12 * (t - 3.7e-6));
}

TEST(Calibration, FactorsCarryProvenance) {
  const efficiency_model m(db(), points(), overheads());
  const auto own = m.factor("h800", kernel_class::gemm, "fp8", bound_kind::compute);
  EXPECT_EQ(own.provenance, provenance_kind::fitted);
  // 4096x32768x512 moves more bytes than its FLOPs take at peak: it is fitted as a memory point.
  EXPECT_EQ(own.n_points, 2);
  const double a = net_compute(4096, 7168, 16384, 1358, 1979), b = net_compute(4096, 4096, 7168, 1304, 1979);
  EXPECT_NEAR(own.eta, (a + b) / 2, 1e-9);
  EXPECT_EQ(own.describe(), "fitted on 2 points");
  const auto mem = m.factor("h800", kernel_class::gemm, "fp8", bound_kind::memory);
  EXPECT_EQ(mem.n_points, 3);
  EXPECT_NE(std::find(mem.point_ids.begin(), mem.point_ids.end(), "deepgemm-h800-4096x32768x512"), mem.point_ids.end());

  // H200 has no grouped-GEMM data: borrowed from the NVIDIA family (H800).
  const auto fam = m.factor("h200", kernel_class::grouped_gemm, "fp8", bound_kind::compute);
  EXPECT_EQ(fam.provenance, provenance_kind::borrowed);
  EXPECT_NE(fam.describe().find("NVIDIA family"), std::string::npos) << fam.describe();
  EXPECT_NE(fam.describe().find("h800"), std::string::npos) << fam.describe();

  // MetaX has no data at all: cross-vendor default.
  const auto cross = m.factor("metax-c500", kernel_class::gemm, "bf16", bound_kind::compute);
  EXPECT_EQ(cross.provenance, provenance_kind::borrowed);
  EXPECT_NE(cross.describe().find("cross-vendor"), std::string::npos) << cross.describe();
  EXPECT_LE(cross.p10, cross.eta);
  EXPECT_GE(cross.p90, cross.eta);

  // No attention-decode data anywhere: assumed, with its basis.
  const auto assumed = m.factor("h100-sxm", kernel_class::attention_decode, "bf16", bound_kind::memory);
  EXPECT_EQ(assumed.provenance, provenance_kind::assumed);
  EXPECT_DOUBLE_EQ(assumed.eta, 0.6);
  EXPECT_NE(assumed.describe().find("msmodeling"), std::string::npos);

  // Systems resolve to their chip.
  EXPECT_EQ(m.factor("cloudmatrix-384", kernel_class::mla_decode, "bf16", bound_kind::compute).provenance, provenance_kind::fitted);
}

TEST(Calibration, RefitReproducesFactors) {
  const efficiency_model a(db(), points(), overheads());
  const efficiency_model b(db(), load_calibration(kDir / "calibration"), load_overheads(kDir / "calibration"));
  EXPECT_EQ(a.fitted_json(), b.fitted_json());
  EXPECT_FALSE(a.fitted_json().empty());
}

TEST(Calibration, LeaveOneOutReported) {
  const efficiency_model m(db(), points(), overheads());
  const auto loo = m.leave_one_out();
  ASSERT_EQ(loo.size(), points().size());
  for (const auto& r : loo) {
    EXPECT_GT(r.measured, 0) << r.id;
    EXPECT_GT(r.predicted, 0) << r.id;
    EXPECT_FALSE(r.provenance.empty()) << r.id;
  }
  // The H800 FP8 GEMM point at K=16384 is a time: predicted as flops / (peak x eta_c) + 3.7 us with eta_c
  // refitted on the other compute-bound H800 point (4096x4096x7168, net of its overhead); compute binds.
  auto it = std::find_if(loo.begin(), loo.end(), [](const loo_result& r) { return r.id == "deepgemm-h800-4096x7168x16384"; });
  ASSERT_NE(it, loo.end());
  const double flops = 2.0 * 4096 * 7168 * 16384, eta_c = net_compute(4096, 4096, 7168, 1304, 1979);
  EXPECT_NEAR(it->predicted, flops / 1979e12 / (flops / (1979e12 * eta_c) + 3.7e-6), 1e-9);
  EXPECT_EQ(it->fit_bound, "compute");
  EXPECT_LT(std::fabs(it->rel_error), 0.05);
  const double med = median_abs(loo);
  std::printf("calibration: %zu points, median leave-one-out |error| = %.1f%%\n", loo.size(), 100 * med);
  EXPECT_GT(med, 0.0);
  EXPECT_LT(med, 0.5);
}

TEST(Calibration, WorkModelAndRegimeFromShape) {
  const auto& k512 = point("deepgemm-h800-4096x32768x512");
  EXPECT_DOUBLE_EQ(k512.flops, 2.0 * 4096 * 32768 * 512);
  EXPECT_DOUBLE_EQ(k512.bytes, 4096.0 * 512 + 32768.0 * 512 + 4096.0 * 32768 * 2);  // FP8 A, B; BF16 C
  // DeepGEMM's own figure for that row: 1232 GB/s at 590 TFLOPS, i.e. the same bytes.
  EXPECT_NEAR(k512.bytes / (k512.flops / 590e12), 1232e9, 0.01 * 1232e9);
  const auto& masked = point("deepgemm-h800-grouped-masked-low");  // 4 groups x 256 rows, N 7168, K 2048
  EXPECT_NEAR(masked.bytes / (masked.flops / 815e12), 2047e9, 0.01 * 2047e9);
  EXPECT_EQ(point("azure-h100-hbm-copy").flops, 0.0);
  EXPECT_EQ(point("cm384-dispatch-ep8").mode, "low-latency");
  EXPECT_EQ(point("deepep-ascend-a3-dispatch-ep8").mode, "normal");
  const efficiency_model m(db(), points(), overheads());
  const auto loo = m.leave_one_out();
  auto k = std::find_if(loo.begin(), loo.end(), [](const loo_result& r) { return r.id == "deepgemm-h800-4096x32768x512"; });
  ASSERT_NE(k, loo.end());
  EXPECT_EQ(k->fit_bound, "memory");
  // Decode collectives use the low-latency points, prefill the normal ones.
  const auto ll = m.factor("ascend-910c", kernel_class::all_to_all, "int8", bound_kind::scale_up, 8.0, "low-latency");
  const auto nm = m.factor("ascend-910c", kernel_class::all_to_all, "int8", bound_kind::scale_up, 8.0, "normal");
  EXPECT_NE(ll.describe().find("low-latency kernels"), std::string::npos) << ll.describe();
  // Two low-latency sizes (EP8, EP256): the ln(ep) line passes through the EP8 point.
  EXPECT_NEAR(ll.eta, achieved_fraction(point("cm384-dispatch-ep8"), db().get("ascend-910c")), 1e-9);
  EXPECT_NEAR(nm.eta, achieved_fraction(point("deepep-ascend-a3-dispatch-ep8"), db().get("ascend-910c")), 0.05);
}

TEST(Calibration, OverheadsAreSourcedPerVendor) {
  ASSERT_EQ(overheads().size(), 1u);
  const efficiency_model m(db(), points(), overheads());
  const auto nv = m.overhead("h20");
  EXPECT_TRUE(nv.sourced);
  EXPECT_DOUBLE_EQ(nv.seconds, 3.7e-6);
  EXPECT_EQ(nv.grade, "third-party");
  EXPECT_EQ(nv.describe().rfind("3.7 us (NVIDIA: github.com/alibaba/InferSim", 0), 0u) << nv.describe();
  const auto hw = m.overhead("cloudmatrix-384");
  EXPECT_FALSE(hw.sourced);
  EXPECT_DOUBLE_EQ(hw.seconds, 3.7e-6);
  EXPECT_EQ(hw.describe(), "3.7 us assumed for Huawei (no published figure; median of the other vendors' figures: NVIDIA)");
  // Without figures: none.
  const efficiency_model bare(db(), points());
  EXPECT_EQ(bare.overhead("h20").seconds, 0.0);
}

TEST(Calibration, LoaderErrorsNameFileLineKey) {
  const fs::path dir = fs::temp_directory_path() / "infermark_calibration_test";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string good = R"([[point]]
id = "x"
target = "h100-sxm"
kernel = "gemm"
dtype = "fp8"
bound = "compute"
value = 1000
unit = "TFLOPS"
shape = { m = 1 }
source = "s"
confidence = "paper"
)";
  auto expect_error = [&](const std::string& text, const std::string& key, int line) {
    std::ofstream(dir / "a.toml") << text;
    try {
      load_calibration(dir);
      ADD_FAILURE() << "no error for key " << key;
    } catch (const profile_error& e) {
      EXPECT_EQ(e.key(), key) << e.what();
      EXPECT_EQ(e.line(), line) << e.what();
      EXPECT_EQ(e.file(), (dir / "a.toml").string());
    }
  };
  std::ofstream(dir / "a.toml") << good;
  EXPECT_EQ(load_calibration(dir).size(), 1u);
  expect_error(good + "speed = 1\n", "point.speed", 12);
  expect_error(std::string(good).replace(good.find("unit = \"TFLOPS\""), 15, "unit = \"TB/s\"  "), "point.unit", 8);
  expect_error(std::string(good).replace(good.find("kernel = \"gemm\""), 15, "kernel = \"conv\""), "point.kernel", 4);
  expect_error(std::string(good).replace(good.find("value = 1000"), 12, "value = -1  "), "point.value", 7);
  expect_error(std::string(good).replace(good.find("source = \"s\"\n"), 13, ""), "point.source", 1);
  expect_error(good + good, "point.id", 13);
  fs::remove_all(dir);
}

TEST(Calibration, OverheadLoaderErrors) {
  const fs::path dir = fs::temp_directory_path() / "infermark_overhead_test";
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string good = "[[overhead]]\nvendor = \"X\"\nvalue = 2.5\nunit = \"us\"\nsource = \"s\"\nconfidence = \"paper\"\n";
  std::ofstream(dir / "o.toml") << good;
  ASSERT_EQ(load_overheads(dir).size(), 1u);
  EXPECT_DOUBLE_EQ(load_overheads(dir)[0].seconds, 2.5e-6);
  EXPECT_TRUE(load_calibration(dir).empty());  // [[overhead]] tables are not points
  auto expect_error = [&](const std::string& text, const std::string& key) {
    std::ofstream(dir / "o.toml") << text;
    try {
      load_overheads(dir);
      ADD_FAILURE() << "no error for key " << key;
    } catch (const profile_error& e) {
      EXPECT_EQ(e.key(), key) << e.what();
    }
  };
  std::string ms = good;
  ms.replace(ms.find("\"us\""), 4, "\"ms\"");
  expect_error(ms, "overhead.unit");
  expect_error(good + "speed = 1\n", "overhead.speed");
  expect_error(good + good, "overhead.vendor");
  fs::remove_all(dir);
}
