// The estimator: reference = 1.00, monotone in bandwidth and peak (perturbed profiles), system totals =
// chip x count, not-estimable targets name the field, dtype policy, portable mode, energy cost, JSON shape.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>

#include "profiles/model/estimate.hpp"

namespace infermark {
namespace {

const std::filesystem::path kDir = INFERMARK_PROFILES_DIR;

// A profile database built file by file, with `edit` applied to every loaded profile (perturbations).
profile_db make_db(const std::function<void(profile&)>& edit = {}) {
  profile_db db;
  for (const char* sub : {"chips", "systems"})
    for (const auto& e : std::filesystem::directory_iterator(kDir / sub)) {
      if (e.path().extension() != ".toml") continue;
      profile p = load_profile(e.path());
      if (edit) edit(p);
      db.add(std::move(p));
    }
  return db;
}

struct fixture {
  profile_db db;
  efficiency_model model;
  explicit fixture(const std::function<void(profile&)>& edit = {})
      : db(make_db(edit)), model(db, load_calibration(kDir / "calibration"), load_overheads(kDir / "calibration")) {}
};

estimate_options opts(const char* model, phase ph, std::int64_t batch, std::int64_t ctx) {
  estimate_options o;
  o.request = {model, ph, batch, ctx, {}};
  return o;
}

const target_estimate& row(const estimate_report& r, const std::string& slug) {
  for (const auto& e : r.estimates)
    if (e.profile == slug) return e;
  throw std::logic_error("no row " + slug);
}

TEST(Estimate, ReferenceRowIsOne) {
  const fixture f;
  const auto r = estimate(f.db, f.model, {"h100-sxm", "h200", "ascend-910c"}, opts("deepseek-v3", phase::decode, 128, 4096));
  const auto& ref = row(r, "h100-sxm");
  ASSERT_FALSE(ref.error);
  EXPECT_DOUBLE_EQ(ref.relative_per_chip, 1.0);
  ASSERT_TRUE(ref.relative_per_watt);
  EXPECT_DOUBLE_EQ(*ref.relative_per_watt, 1.0);
  EXPECT_EQ(ref.dtype, "fp8");
  // H200: same FP8 peak, more bandwidth -> faster on a memory-bound decode step.
  EXPECT_GT(row(r, "h200").relative_per_chip, 1.0);
  // Any other reference makes its own row 1.00.
  auto o = opts("deepseek-v3", phase::decode, 128, 4096);
  o.reference = "ascend-910c";
  const auto r2 = estimate(f.db, f.model, {"h100-sxm", "ascend-910c"}, o);
  EXPECT_DOUBLE_EQ(row(r2, "ascend-910c").relative_per_chip, 1.0);
  EXPECT_NEAR(row(r2, "h100-sxm").relative_per_chip * row(r, "ascend-910c").relative_per_chip, 1.0, 1e-12);
}

TEST(Estimate, TimesAreConsistent) {
  const fixture f;
  const auto e = estimate_target(f.db, f.model, f.db.get("h100-sxm"), opts("deepseek-v3", phase::decode, 128, 4096));
  ASSERT_FALSE(e.error);
  EXPECT_LT(e.p10_s, e.step_s);
  EXPECT_GT(e.p90_s, e.step_s);
  EXPECT_NEAR(e.tokens_per_s, 128 / e.step_s, 1e-9 * e.tokens_per_s);
  double sum = 0;
  for (const auto& g : e.groups) sum += g.t50 * static_cast<double>(g.count);
  EXPECT_NEAR(sum, e.step_s, 1e-12 * sum);
  EXPECT_EQ(e.bound, "memory");  // batch 128 decode of a 671B MoE on one chip streams the experts
  EXPECT_FALSE(e.provenance.empty());
  ASSERT_TRUE(e.tokens_per_joule);
  EXPECT_NEAR(*e.tokens_per_joule, e.tokens_per_s / 700.0, 1e-12);  // H100 SXM TDP 700 W
  // Large prefill is compute-bound.
  const auto p = estimate_target(f.db, f.model, f.db.get("h100-sxm"), opts("llama-2-70b", phase::prefill, 8, 4096));
  EXPECT_EQ(p.bound, "compute");
}

TEST(Estimate, MonotoneInBandwidthAndPeak) {
  auto scale = [](const char* key, double k) {
    return [key, k](profile& p) {
      if (p.slug == "h20" && p.has(key)) p.figures[key].value *= k;
    };
  };
  const fixture base, fast_mem(scale("memory.bandwidth", 1.5)), fast_fp8(scale("peak.fp8", 1.5)), slow_mem(scale("memory.bandwidth", 0.5));
  for (auto ph : {phase::decode, phase::prefill}) {
    const auto o = opts("deepseek-v3", ph, 64, 2048);
    const double b = estimate_target(base.db, base.model, base.db.get("h20"), o).tokens_per_s;
    const double m = estimate_target(fast_mem.db, fast_mem.model, fast_mem.db.get("h20"), o).tokens_per_s;
    const double c = estimate_target(fast_fp8.db, fast_fp8.model, fast_fp8.db.get("h20"), o).tokens_per_s;
    const double s = estimate_target(slow_mem.db, slow_mem.model, slow_mem.db.get("h20"), o).tokens_per_s;
    EXPECT_GE(m, b) << to_string(ph);
    EXPECT_GE(c, b) << to_string(ph);
    EXPECT_LE(s, b) << to_string(ph);
    if (ph == phase::decode) {
      EXPECT_GT(m, 1.2 * b);  // memory-bound: most of the 1.5x shows
      EXPECT_LT(s, 0.6 * b);
    } else {
      EXPECT_GT(c, 1.1 * b);  // compute-bound prefill on H20; the bf16 attention core does not speed up
    }
  }
}

TEST(Estimate, SystemTotalsAreChipTimesCount) {
  const fixture f;
  auto o = opts("deepseek-v3", phase::decode, 128, 4096);
  o.request.par = {1, 32, 32};  // fits on both chips (a system that does not fit is an error, see MemoryFit)
  const auto r = estimate(f.db, f.model, {"gb200", "gb200-nvl72", "ascend-910c", "cloudmatrix-384"}, o);
  const auto& chip = row(r, "gb200");
  const auto& sys = row(r, "gb200-nvl72");
  ASSERT_FALSE(sys.error);
  EXPECT_DOUBLE_EQ(sys.tokens_per_s, chip.tokens_per_s);  // same chip, same factors
  const auto view = system_view(r);
  ASSERT_EQ(view.size(), 2u);
  for (const auto& s : view) {
    const profile& p = f.db.get(s.profile);
    EXPECT_EQ(s.chips, p.count);
    EXPECT_DOUBLE_EQ(s.tokens_per_s, row(r, s.profile).tokens_per_s * p.count);
    ASSERT_TRUE(s.power_kw);
    EXPECT_DOUBLE_EQ(*s.power_kw, p.at("power.all_in").value);
    EXPECT_NEAR(*s.tokens_per_joule, s.tokens_per_s / (*s.power_kw * 1000), 1e-12);
    // Per chip, a system's tokens per joule uses the all-in power shared over its chips.
    EXPECT_NEAR(*row(r, s.profile).tokens_per_joule, *s.tokens_per_joule, 1e-12);
  }
  EXPECT_EQ(r.to_json()["systems"].size(), 2u);
}

TEST(Estimate, NotEstimableNamesTheField) {
  const fixture f;
  const auto o = opts("deepseek-v3", phase::decode, 8, 1024);
  for (const char* slug : {"sunrise-s2", "kunlunxin-p800", "kunlunxin-r200"}) {
    const auto e = estimate_target(f.db, f.model, f.db.get(slug), o);
    ASSERT_TRUE(e.error) << slug;
    EXPECT_EQ(e.error->find(slug), std::string::npos) << "the row names the profile already: " << *e.error;
    EXPECT_NE(e.error->find(" is unknown ("), std::string::npos) << *e.error;
  }
  EXPECT_EQ(*estimate_target(f.db, f.model, f.db.get("sunrise-s2"), o).error,
            "not estimable: memory.bandwidth is unknown (No public specification found.)");
  EXPECT_EQ(*estimate_target(f.db, f.model, f.db.get("b30a"), o).error,
            "not estimable: memory.bandwidth is unknown (Not reported.)");
  EXPECT_NE(estimate_target(f.db, f.model, f.db.get("kunlunxin-r200"), o).error->find("peak.bf16"), std::string::npos);
  // A forced format the chip has no unit for.
  auto forced = o;
  forced.dtype = "fp8";
  const auto a = estimate_target(f.db, f.model, f.db.get("ascend-910c"), forced);
  ASSERT_TRUE(a.error);
  EXPECT_NE(a.error->find("peak.fp8"), std::string::npos) << *a.error;
  // A reference that is not estimable is an input error naming the field.
  auto bad_ref = o;
  bad_ref.reference = "sunrise-s2";
  EXPECT_THROW(estimate(f.db, f.model, {"h100-sxm"}, bad_ref), std::invalid_argument);
  EXPECT_THROW(estimate(f.db, f.model, {"h100-sxm", "tpu-v5"}, o), std::invalid_argument);
}

TEST(Estimate, MemoryFit) {
  const fixture f;
  // Small: Qwen3-30B-A3B in FP8 with 16 x 1024 tokens of KV fits one H100.
  const auto small = estimate_target(f.db, f.model, f.db.get("h100-sxm"), opts("qwen3-30b-a3b", phase::decode, 16, 1024));
  ASSERT_FALSE(small.error);
  EXPECT_FALSE(small.warning);
  EXPECT_LT(small.memory_gb, 80);
  EXPECT_EQ(small.to_json()["fits"], true);
  // Huge: DeepSeek-V3 (~671 B parameters in FP8 + 128 x 4096 tokens of MLA cache) on one H100.
  const auto o = opts("deepseek-v3", phase::decode, 128, 4096);
  const auto huge = estimate_target(f.db, f.model, f.db.get("h100-sxm"), o);
  ASSERT_FALSE(huge.error);
  ASSERT_TRUE(huge.warning);
  EXPECT_EQ(*huge.warning, fmt::format("does not fit: needs {:.0f} GB per chip, has 80 GB (smallest that fits: --ep 16); "
                                       "figures assume the weights were resident", huge.memory_gb));
  EXPECT_NEAR(huge.memory_gb, 710, 5);
  EXPECT_EQ(huge.to_json()["fits"], false);
  EXPECT_EQ(huge.to_json()["warning"], *huge.warning);
  // The suggestion fits and the one below it does not.
  auto r16 = o.request, r8 = o.request;
  r16.par = {1, 16, 16};
  r8.par = {1, 8, 8};
  const auto dt = choose_dtypes(f.db.get("h100-sxm"), std::nullopt);
  EXPECT_LE(memory_per_chip_gb(r16, dt), 80);
  EXPECT_GT(memory_per_chip_gb(r8, dt), 80);
  // A system at an explicit config that does not fit: an error, no numbers.
  const auto cm = estimate_target(f.db, f.model, f.db.get("cloudmatrix-384"), o);
  ASSERT_TRUE(cm.error);
  EXPECT_EQ(cm.error->rfind("does not fit: needs 710 GB per chip at tp 1 ep 1 attn-dp 1, has 128 GB (smallest that fits: --ep 8)", 0),
            0u) << *cm.error;
  // No config given: the smallest EP that fits, said so.
  auto fit = o;
  fit.fit_systems = true;
  const auto cm8 = estimate_target(f.db, f.model, f.db.get("cloudmatrix-384"), fit);
  ASSERT_FALSE(cm8.error) << *cm8.error;
  EXPECT_EQ(cm8.parallel, "tp 1 ep 8 attn-dp 8");
  EXPECT_LE(cm8.memory_gb, 128);
  EXPECT_NE(cm8.parallel_note.find("estimated at --ep 8, the smallest expert-parallel degree that fits"), std::string::npos)
      << cm8.parallel_note;
  // Prefill with batch 4: attention data-parallel only up to 4, the rest tensor-parallel.
  auto pre = opts("deepseek-v3", phase::prefill, 4, 4096);
  const auto c = smallest_fitting_config(pre.request, choose_dtypes(f.db.get("ascend-910c"), std::nullopt), 128, 384);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->ep, 8);
  EXPECT_EQ(c->attn_dp, 4);
  EXPECT_EQ(c->tp, 2);
  EXPECT_EQ(parallel_flags(*c), "--tp 2 --ep 8 --attn-dp 4");
}

TEST(Estimate, OverheadProvenance) {
  const fixture f;
  const auto o = opts("qwen3-30b-a3b", phase::decode, 16, 1024);
  const auto nv = estimate_target(f.db, f.model, f.db.get("h100-sxm"), o);
  const auto hw = estimate_target(f.db, f.model, f.db.get("ascend-910c"), o);
  auto has = [](const target_estimate& e, const std::string& s) {
    return std::any_of(e.provenance.begin(), e.provenance.end(), [&](const std::string& p) { return p.rfind(s, 0) == 0; });
  };
  EXPECT_TRUE(has(nv, "per-op overhead: 3.7 us (NVIDIA: github.com/alibaba/InferSim"));
  EXPECT_TRUE(has(hw, "per-op overhead: 3.7 us assumed for Huawei"));
}

TEST(Estimate, DtypePolicy) {
  const fixture f;
  EXPECT_EQ(choose_dtypes(f.db.get("h100-sxm"), std::nullopt).gemm_peak, "fp8");
  EXPECT_EQ(choose_dtypes(f.db.get("b200"), std::nullopt).gemm_peak, "fp8");
  EXPECT_EQ(choose_dtypes(f.db.get("ascend-910c"), std::nullopt).gemm_peak, "int8");
  EXPECT_EQ(choose_dtypes(f.db.get("metax-c500"), std::nullopt).gemm_peak, "bf16");
  EXPECT_EQ(choose_dtypes(f.db.get("h100-sxm"), std::string("bf16")).gemm_peak, "bf16");
  EXPECT_THROW(choose_dtypes(f.db.get("h100-sxm"), std::string("fp64")), std::invalid_argument);
  // Forcing bf16 on H100 slows the compute-bound prefill.
  auto o = opts("llama-2-70b", phase::prefill, 4, 4096);
  const double fp8 = estimate_target(f.db, f.model, f.db.get("h100-sxm"), o).tokens_per_s;
  o.dtype = "bf16";
  const auto b = estimate_target(f.db, f.model, f.db.get("h100-sxm"), o);
  EXPECT_EQ(b.dtype, "bf16");
  EXPECT_LT(b.tokens_per_s, 0.8 * fp8);
}

TEST(Estimate, PortableModeUsesHostFractions) {
  const fixture f;
  auto o = opts("llama-2-70b", phase::decode, 1, 128);
  o.mode = estimate_mode::portable;
  EXPECT_THROW(
      {
        try {
          estimate(f.db, f.model, {"h100-sxm"}, o);
        } catch (const std::invalid_argument& e) {
          EXPECT_NE(std::string(e.what()).find("infermark run"), std::string::npos);
          throw;
        }
      },
      std::invalid_argument);
  o.op_overhead_s = 0.0;  // the fixed per-op cost does not scale with the fraction: leave it out here
  o.host = aggregate_host_fractions({{"gemm:m1n2k3:fp32 a", kernel_class::gemm, 0.25}, {"gemm:m4n5k6:fp32 b", kernel_class::gemm, 0.75}});
  EXPECT_DOUBLE_EQ(o.host[kernel_class::gemm].fraction, 0.5);
  const auto half = estimate_target(f.db, f.model, f.db.get("h100-sxm"), o);
  o.host = aggregate_host_fractions({{"gemm:m1n2k3:fp32 a", kernel_class::gemm, 1.0}});
  const auto full = estimate_target(f.db, f.model, f.db.get("h100-sxm"), o);
  ASSERT_FALSE(half.error);
  // Batch-1 Llama decode is almost all GEMM: halving the host fraction nearly doubles the time.
  EXPECT_NEAR(half.step_s / full.step_s, 2.0, 0.1);
  bool said = false;
  for (const auto& p : half.provenance) said |= p.find("no host measurement of elementwise") != std::string::npos;
  EXPECT_TRUE(said);
  EXPECT_THROW(aggregate_host_fractions({{"x", kernel_class::gemm, 3.0}}), std::invalid_argument);
}

TEST(Estimate, HostProfileWithoutPower) {
  fixture f;
  f.db.add(make_host_profile({{"peak_gflops", {{"fp32", 200.0}, {"bf16", nullptr}, {"int8", nullptr}}}, {"bandwidth_gbs", {{"read", 20.0}}}}));
  const auto e = estimate_target(f.db, f.model, f.db.get("host"), opts("deepseek-v2-lite", phase::decode, 4, 256));
  ASSERT_FALSE(e.error) << *e.error;
  EXPECT_EQ(e.dtype, "fp32");  // no bf16 unit on this host
  EXPECT_FALSE(e.tokens_per_joule);
  EXPECT_NE(e.power_basis.find("power.tdp"), std::string::npos);
}

TEST(Estimate, EnergyCost) {
  // 10 tokens/J -> 1e5 J per Mtok = 0.02778 kWh; at 0.10/kWh = 0.002778; half subsidised = 0.001389.
  EXPECT_NEAR(energy_cost_per_mtok(10, 0.10, 0), 1e5 / 3.6e6 * 0.10, 1e-12);
  EXPECT_NEAR(energy_cost_per_mtok(10, 0.10, 0.5), 0.5 * 1e5 / 3.6e6 * 0.10, 1e-12);
  EXPECT_THROW(energy_cost_per_mtok(10, 0.10, 1.0), std::invalid_argument);
  EXPECT_THROW(energy_cost_per_mtok(10, 0, 0), std::invalid_argument);
}

TEST(Estimate, JsonShape) {
  const fixture f;
  const auto j = estimate(f.db, f.model, {"h100-sxm", "sunrise-s2"}, opts("qwen3-30b-a3b", phase::decode, 16, 1024)).to_json();
  ASSERT_TRUE(j.contains("workload"));
  EXPECT_EQ(j["workload"]["name"], "qwen3-30b-a3b");
  EXPECT_EQ(j["reference"], "h100-sxm");
  ASSERT_EQ(j["estimates"].size(), 2u);
  for (const char* k : {"profile", "dtype", "time_s", "tokens_per_s", "relative_per_chip", "tokens_per_joule", "relative_per_watt",
                        "bound", "p10", "p90", "provenance"})
    EXPECT_TRUE(j["estimates"][0].contains(k)) << k;
  EXPECT_TRUE(j["estimates"][1].contains("error"));
  EXPECT_EQ(j["estimates"][1]["profile"], "sunrise-s2");
}

}  // namespace
}  // namespace infermark
