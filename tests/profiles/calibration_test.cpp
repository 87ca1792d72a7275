// Calibration data loads and is kernel-level and sourced; fitted factors have provenance and ranges;
// leave-one-out errors are reported; loader errors name file, line and key.
#include <gtest/gtest.h>

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

TEST(Calibration, FactorsCarryProvenance) {
  const efficiency_model m(db(), points());
  const auto own = m.factor("h800", kernel_class::gemm, "fp8", bound_kind::compute);
  EXPECT_EQ(own.provenance, provenance_kind::fitted);
  EXPECT_EQ(own.n_points, 3);
  EXPECT_NEAR(own.eta, 1304.0 / 1979, 1e-9);  // median of 1358, 1304, 590
  EXPECT_LE(own.p10, 590.0 / 1979 + 1e-12);
  EXPECT_GE(own.p90, 1358.0 / 1979 - 1e-12);
  EXPECT_EQ(own.describe(), "fitted on 3 points");

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
  const efficiency_model a(db(), points());
  const efficiency_model b(db(), load_calibration(kDir / "calibration"));
  EXPECT_EQ(a.fitted_json(), b.fitted_json());
  EXPECT_FALSE(a.fitted_json().empty());
}

TEST(Calibration, LeaveOneOutReported) {
  const efficiency_model m(db(), points());
  const auto loo = m.leave_one_out();
  ASSERT_EQ(loo.size(), points().size());
  for (const auto& r : loo) {
    EXPECT_GT(r.measured, 0) << r.id;
    EXPECT_GT(r.predicted, 0) << r.id;
    EXPECT_FALSE(r.provenance.empty()) << r.id;
  }
  // The H800 FP8 GEMM point at K=16384 refits on the other two H800 points (median of 1304 and 590).
  auto it = std::find_if(loo.begin(), loo.end(), [](const loo_result& r) { return r.id == "deepgemm-h800-4096x7168x16384"; });
  ASSERT_NE(it, loo.end());
  EXPECT_NEAR(it->predicted, (1304.0 + 590.0) / 2 / 1979, 1e-9);
  const double med = median_abs(loo);
  std::printf("calibration: %zu points, median leave-one-out |error| = %.1f%%\n", loo.size(), 100 * med);
  EXPECT_GT(med, 0.0);
  EXPECT_LT(med, 0.5);
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
