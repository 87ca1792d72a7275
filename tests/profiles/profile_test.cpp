// Shipped profiles load and are fully sourced; loader errors name file, line and key; systems resolve
// to their chip and their totals equal chip x count; the host profile is built from a probe result.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <regex>

#include "profiles/model/profile.hpp"
#include "tests/profiles/temp_files.hpp"

namespace fs = std::filesystem;
using namespace infermark;

namespace {

const fs::path kDir = INFERMARK_PROFILES_DIR;

const profile_db& db() {
  static const profile_db d = profile_db::load(kDir);
  return d;
}

// A minimal valid chip file; tests replace or append lines to break it.
const char* kGoodChip = R"(kind = "chip"
vendor = "Test"
name = "T1"
year = 2024
process_node = "7 nm"
form_factor = "card"

[peak]
unsupported = ["fp8", "fp4"]

[peak.bf16]
value = 100
unit = "TFLOPS"
source = "test sheet"
confidence = "vendor"

[memory]
type = "HBM"

[memory.capacity]
value = 64
unit = "GB"
source = "test sheet"
confidence = "vendor"

[memory.bandwidth]
value = 2.0
unit = "TB/s"
source = "test sheet"
confidence = "vendor"

[[unknown]]
field = "peak.fp32"
reason = "r"
[[unknown]]
field = "peak.tf32"
reason = "r"
[[unknown]]
field = "peak.fp16"
reason = "r"
[[unknown]]
field = "peak.int8"
reason = "r"
[[unknown]]
field = "power.tdp"
reason = "not published"
[[unknown]]
field = "scale_up.bandwidth"
reason = "r"
[[unknown]]
field = "scale_up.domain"
reason = "r"
[[unknown]]
field = "scale_up.technology"
reason = "r"
[[unknown]]
field = "scale_out.bandwidth"
reason = "r"
[[unknown]]
field = "scale_out.technology"
reason = "r"
)";

// Each test's directory holds chips/ and systems/.
struct temp_dir : test::temp_dir {
  temp_dir() : test::temp_dir({"chips", "systems"}) {}
};
using test::replace;

// Loads `text` as chips/t1.toml and returns the profile_error; fails the test when none is thrown.
profile_error load_error(const std::string& text) {
  temp_dir d;
  const fs::path f = d.write("chips/t1.toml", text);
  try {
    load_profile(f, profile_kind::chip);
  } catch (const profile_error& e) {
    EXPECT_EQ(e.file(), f.string());
    EXPECT_NE(std::string(e.what()).find(f.string()), std::string::npos);
    return e;
  }
  ADD_FAILURE() << "no profile_error for:\n" << text;
  return profile_error("", 0, "", "");
}

}  // namespace

TEST(Profiles, EveryListedSlugLoads) {
  const std::vector<std::string> expected = {
      "ascend-910b", "ascend-910c", "b200", "b30a", "biren-br100", "cambricon-mlu370-x8", "cambricon-mlu590",
      "cloudmatrix-384", "gb200", "gb200-nvl72", "h100-pcie", "h100-sxm", "h20", "h200", "h800", "hygon-k100-ai",
      "iluvatar-bi-v100", "kunlunxin-p800", "kunlunxin-r200", "metax-c500", "mthreads-s4000", "sunrise-s2"};
  EXPECT_EQ(db().slugs(), expected);
  EXPECT_EQ(db().get("gb200-nvl72").kind, profile_kind::system);
  EXPECT_EQ(db().get("h100-sxm").kind, profile_kind::chip);
}

TEST(Profiles, EveryFigureHasSourceConfidenceAndExpectedUnit) {
  int figures = 0;
  for (const auto& slug : db().slugs()) {
    const profile& p = db().get(slug);
    for (const auto& [key, f] : p.figures) {
      ++figures;
      EXPECT_FALSE(f.source.empty()) << slug << " " << key;
      EXPECT_GT(f.value, 0) << slug << " " << key;
      EXPECT_FALSE(f.unit.empty()) << slug << " " << key;
      for (const auto& a : f.alternatives) {
        EXPECT_FALSE(a.source.empty()) << slug << " " << key;
        EXPECT_EQ(a.unit, f.unit) << slug << " " << key;
      }
      // `measured` is reserved for the probe; shipped files cite published sources.
      EXPECT_NE(f.grade, confidence::measured) << slug << " " << key;
    }
    for (const auto& [key, reason] : p.unknown) EXPECT_FALSE(reason.empty()) << slug << " " << key;
  }
  EXPECT_GT(figures, 150);
  EXPECT_EQ(db().get("h100-sxm").at("memory.bandwidth").unit, "TB/s");
  EXPECT_EQ(db().get("h100-sxm").at("scale_up.bandwidth").unit, "GB/s");
  EXPECT_EQ(db().get("h100-sxm").at("peak.int8").unit, "TOPS");
}

TEST(Profiles, ChipsAccountForEveryPeakDtype) {
  for (const auto& slug : db().slugs()) {
    const profile& p = db().get(slug);
    if (p.kind != profile_kind::chip) continue;
    for (auto dt : peak_dtypes) {
      const std::string key = "peak." + std::string(dt);
      const bool unsupported = std::count(p.unsupported.begin(), p.unsupported.end(), std::string(dt)) > 0;
      EXPECT_EQ(int(p.has(key)) + int(unsupported) + int(p.unknown.count(key)), 1) << slug << " " << key;
    }
  }
}

TEST(Profiles, ReferenceFiguresAreDense) {
  const profile& h = db().get("h100-sxm");
  EXPECT_DOUBLE_EQ(*h.peak("bf16"), 989.4);   // 1,979 with sparsity, halved
  EXPECT_DOUBLE_EQ(*h.peak("fp8"), 1979);
  EXPECT_FALSE(h.peak("fp4").has_value());    // Hopper has no FP4 unit
  EXPECT_DOUBLE_EQ(h.at("memory.bandwidth").value, 3.35);
  EXPECT_FALSE(db().get("ascend-910c").peak("fp8").has_value());  // no FP8 unit on Ascend
  EXPECT_DOUBLE_EQ(*db().get("ascend-910c").peak("int8"), 1504);
  EXPECT_THROW(h.peak("fp64"), std::invalid_argument);
}

TEST(Profiles, UnknownFiguresAreNotEstimableWithTheirReason) {
  const profile& s = db().get("sunrise-s2");
  EXPECT_TRUE(s.figures.empty());
  try {
    s.peak("bf16");
    FAIL() << "expected not_estimable";
  } catch (const not_estimable& e) {
    EXPECT_EQ(e.field(), "peak.bf16");
    EXPECT_NE(std::string(e.what()).find("not estimable: sunrise-s2: peak.bf16"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("No public specification"), std::string::npos) << e.what();
  }
  EXPECT_THROW(db().get("kunlunxin-p800").at("memory.bandwidth"), not_estimable);
  EXPECT_THROW(db().get("ascend-910c").at("power.tdp"), not_estimable);
  EXPECT_TRUE(db().get("b30a").speculative);
  for (const auto& [k, f] : db().get("b30a").figures) EXPECT_EQ(f.grade, confidence::rumor) << k;
}

TEST(Profiles, UnknownSlugListsValidOnes) {
  try {
    db().get("h300");
    FAIL() << "expected invalid_argument";
  } catch (const std::invalid_argument& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("'h300'"), std::string::npos) << m;
    EXPECT_NE(m.find("h100-sxm"), std::string::npos) << m;
    EXPECT_NE(m.find("cloudmatrix-384"), std::string::npos) << m;
  }
}

TEST(Profiles, SystemsResolveToTheirChip) {
  EXPECT_EQ(db().chip_of(db().get("gb200-nvl72")).slug, "gb200");
  EXPECT_EQ(db().chip_of(db().get("cloudmatrix-384")).slug, "ascend-910c");
  EXPECT_EQ(db().chip_of(db().get("h100-sxm")).slug, "h100-sxm");
  EXPECT_EQ(db().get("gb200-nvl72").count, 72);
  EXPECT_EQ(db().get("cloudmatrix-384").count, 384);
  // The system's scale-up domain is the whole system.
  for (const char* s : {"gb200-nvl72", "cloudmatrix-384"}) {
    const profile& sys = db().get(s);
    EXPECT_DOUBLE_EQ(sys.at("scale_up.domain").value, sys.count) << s;
    EXPECT_DOUBLE_EQ(db().chip_of(sys).at("scale_up.domain").value, sys.count) << s;
  }
}

TEST(Profiles, SystemTotalsEqualChipTimesCount) {
  for (const char* s : {"gb200-nvl72", "cloudmatrix-384"}) {
    const profile& sys = db().get(s);
    const profile& chip = db().chip_of(sys);
    int published = 0;
    for (const auto& t : system_totals(sys, chip)) {
      const figure& cf = chip.at(t.key);
      const double scale = t.key == "memory.bandwidth" ? 1.0 : 1e-3;
      EXPECT_NEAR(t.computed, cf.value * sys.count * scale, 1e-9 * t.computed) << s << " " << t.key;
      if (!t.published) continue;
      ++published;
      // A published total must equal count x one of the chip's recorded values (chosen or alternative),
      // within 2% rounding: otherwise the profiles disagree with the system's own figure.
      const double per_chip = t.published->value / scale / sys.count;
      double best = std::fabs(per_chip / cf.value - 1);
      for (const auto& a : cf.alternatives) best = std::min(best, std::fabs(per_chip / a.value - 1));
      EXPECT_LT(best, 0.02) << s << " " << t.key << " published " << t.published->value << " per chip " << per_chip;
    }
    EXPECT_GE(published, 3) << s;
  }
  const auto nvl = system_totals(db().get("gb200-nvl72"), db().get("gb200"));
  auto bf16 = std::find_if(nvl.begin(), nvl.end(), [](const system_total& t) { return t.key == "peak.bf16"; });
  ASSERT_NE(bf16, nvl.end());
  EXPECT_DOUBLE_EQ(bf16->computed, 180.0);
  EXPECT_EQ(bf16->unit, "PFLOPS");
  EXPECT_THROW(system_totals(db().get("gb200-nvl72"), db().get("b200")), std::invalid_argument);
}

// SemiAnalysis (2025-04-16): CloudMatrix 384 vs GB200 NVL72 = 1.7x system BF16, 2.1x HBM bandwidth,
// 3.9x all-in power, 2.3x worse FLOPs per watt. Reproduced from the profile figures: SemiAnalysis'
// per-chip BF16 basis (780, recorded as an alternative) x count, HBM bandwidth x count, all-in power.
TEST(Profiles, SemiAnalysisSystemRatios) {
  const profile& cm = db().get("cloudmatrix-384");
  const profile& nvl = db().get("gb200-nvl72");
  const profile& ascend = db().chip_of(cm);
  const profile& gb = db().chip_of(nvl);
  const figure& bf16 = ascend.at("peak.bf16");
  auto semi = std::find_if(bf16.alternatives.begin(), bf16.alternatives.end(),
                           [](const sourced_value& a) { return a.source.find("SemiAnalysis") != std::string::npos; });
  ASSERT_NE(semi, bf16.alternatives.end());
  const double cm_pf = semi->value * cm.count / 1000;
  const double nvl_pf = gb.at("peak.bf16").value * nvl.count / 1000;
  const double flops_ratio = cm_pf / nvl_pf;
  EXPECT_NEAR(flops_ratio, 1.7, 0.05);
  const double bw_ratio = ascend.at("memory.bandwidth").value * cm.count / (gb.at("memory.bandwidth").value * nvl.count);
  EXPECT_NEAR(bw_ratio, 2.1, 0.05);
  const double power_ratio = cm.at("power.all_in").value / nvl.at("power.all_in").value;
  EXPECT_NEAR(power_ratio, 3.9, 0.05);
  const double flops_per_watt_worse = power_ratio / flops_ratio;
  EXPECT_NEAR(flops_per_watt_worse, 2.3, 0.05);
  // With Huawei's own (msmodeling) per-chip figure the compute gap is smaller: 1.51x.
  EXPECT_NEAR(bf16.value * cm.count / 1000 / nvl_pf, 1.51, 0.01);
}

TEST(Profiles, ShowJsonCarriesSourcesAndTotals) {
  const auto j = db().show("cloudmatrix-384");
  EXPECT_EQ(j.at("chip"), "ascend-910c");
  EXPECT_EQ(j.at("chip_profile").at("slug"), "ascend-910c");
  EXPECT_EQ(j.at("figures").at("power.all_in").at("confidence"), "third-party");
  EXPECT_NE(j.at("figures").at("power.all_in").at("source").get<std::string>().find("SemiAnalysis"), std::string::npos);
  EXPECT_FALSE(j.at("totals").empty());
  const auto h = db().show("h100-sxm");
  EXPECT_EQ(h.at("figures").at("peak.bf16").at("value"), 989.4);
  EXPECT_EQ(h.at("figures").at("scale_up.domain").at("alternatives").size(), 1u);
  EXPECT_EQ(db().show("ascend-910c").at("unknown").at("power.tdp").get<std::string>().substr(0, 11), "Undisclosed");
}

TEST(ProfileLoader, GoodFileLoads) {
  temp_dir d;
  const profile p = load_profile(d.write("chips/t1.toml", kGoodChip));
  EXPECT_EQ(p.slug, "t1");
  EXPECT_DOUBLE_EQ(*p.peak("bf16"), 100);
  EXPECT_EQ(p.unknown.at("power.tdp"), "not published");
}

TEST(ProfileLoader, UnknownKeyReported) {
  const auto e = load_error(replace(kGoodChip, "[memory]\ntype = \"HBM\"", "[memory]\ntype = \"HBM\"\nspeed = 3"));
  EXPECT_EQ(e.key(), "memory.speed");
  EXPECT_EQ(e.line(), 19);  // the offending key
  EXPECT_NE(std::string(e.what()).find("valid here"), std::string::npos) << e.what();
  const auto top = load_error(std::string(kGoodChip) + "\n[cooling]\nkind = \"air\"\n");
  EXPECT_EQ(top.key(), "cooling");
  const auto in_fig = load_error(replace(kGoodChip, "unit = \"GB\"", "unit = \"GB\"\nerror_bar = 2"));
  EXPECT_EQ(in_fig.key(), "memory.capacity.error_bar");
}

TEST(ProfileLoader, MissingRequiredFieldReported) {
  // Drop memory.bandwidth entirely: neither given nor listed unknown.
  const std::string text = replace(kGoodChip, "[memory.bandwidth]\nvalue = 2.0\nunit = \"TB/s\"\nsource = \"test sheet\"\nconfidence = \"vendor\"\n", "");
  const auto e = load_error(text);
  EXPECT_EQ(e.key(), "memory.bandwidth");
  EXPECT_EQ(e.line(), 17);  // the [memory] table
  EXPECT_NE(std::string(e.what()).find("missing required field"), std::string::npos) << e.what();
  const auto peak = load_error(replace(kGoodChip, "[[unknown]]\nfield = \"peak.int8\"\nreason = \"r\"\n", ""));
  EXPECT_EQ(peak.key(), "peak.int8");
}

TEST(ProfileLoader, WrongUnitReported) {
  const auto e = load_error(replace(kGoodChip, "value = 2.0\nunit = \"TB/s\"", "value = 2000\nunit = \"GB/s\""));
  EXPECT_EQ(e.key(), "memory.bandwidth.unit");
  EXPECT_EQ(e.line(), 28);
  EXPECT_NE(std::string(e.what()).find("'TB/s'"), std::string::npos) << e.what();
}

TEST(ProfileLoader, NonPositiveValueReported) {
  for (const char* bad : {"value = 0\nunit = \"GB\"", "value = -64\nunit = \"GB\""}) {
    const auto e = load_error(replace(kGoodChip, "value = 64\nunit = \"GB\"", bad));
    EXPECT_EQ(e.key(), "memory.capacity.value");
    EXPECT_EQ(e.line(), 21);
  }
}

TEST(ProfileLoader, FigureWithoutSourceOrConfidenceReported) {
  const auto nosrc = load_error(replace(kGoodChip, "value = 64\nunit = \"GB\"\nsource = \"test sheet\"\n", "value = 64\nunit = \"GB\"\n"));
  EXPECT_EQ(nosrc.key(), "memory.capacity.source");
  EXPECT_EQ(nosrc.line(), 20);  // the [memory.capacity] table
  const auto noconf = load_error(replace(kGoodChip, "unit = \"GB\"\nsource = \"test sheet\"\nconfidence = \"vendor\"\n", "unit = \"GB\"\nsource = \"test sheet\"\n"));
  EXPECT_EQ(noconf.key(), "memory.capacity.confidence");
  const auto badconf = load_error(replace(kGoodChip, "unit = \"GB\"\nsource = \"test sheet\"\nconfidence = \"vendor\"", "unit = \"GB\"\nsource = \"test sheet\"\nconfidence = \"official\""));
  EXPECT_EQ(badconf.key(), "memory.capacity.confidence");
  EXPECT_NE(std::string(badconf.what()).find("third-party"), std::string::npos) << badconf.what();
}

TEST(ProfileLoader, ContradictionsReported) {
  // Given and unknown at once.
  const auto both = load_error(std::string(kGoodChip) + "[[unknown]]\nfield = \"memory.capacity\"\nreason = \"r\"\n");
  EXPECT_EQ(both.key(), "unknown.field");
  EXPECT_NE(std::string(both.what()).find("memory.capacity"), std::string::npos);
  // Unsupported and given.
  const auto dup = load_error(replace(kGoodChip, "unsupported = [\"fp8\", \"fp4\"]", "unsupported = [\"fp8\", \"fp4\", \"bf16\"]"));
  EXPECT_EQ(dup.key(), "peak.bf16");
  // Unknown field name.
  const auto bogus = load_error(std::string(kGoodChip) + "[[unknown]]\nfield = \"memory.latency\"\nreason = \"r\"\n");
  EXPECT_EQ(bogus.key(), "unknown.field");
  // Syntax error carries its line.
  const auto syntax = load_error(replace(kGoodChip, "year = 2024", "year = = 2024"));
  EXPECT_EQ(syntax.line(), 4);
}

TEST(ProfileLoader, SystemWithUnknownChipRejected) {
  temp_dir d;
  d.write("chips/t1.toml", kGoodChip);
  d.write("systems/s1.toml", R"(kind = "system"
vendor = "Test"
name = "S1"
year = 2025
chip = "t9"
count = 4
[power.all_in]
value = 5
unit = "kW"
source = "s"
confidence = "rumor"
[scale_up.domain]
value = 4
unit = "devices"
source = "s"
confidence = "rumor"
)");
  try {
    profile_db::load(d.path);
    FAIL() << "expected profile_error";
  } catch (const profile_error& e) {
    EXPECT_EQ(e.key(), "chip");
    EXPECT_NE(std::string(e.what()).find("t1"), std::string::npos) << e.what();
  }
}

TEST(HostProfile, BuiltFromProbeJson) {
  const nlohmann::json probe = {{"fingerprint", "abc123"},
                                {"measured_at", "2025-01-01T00:00:00Z"},
                                {"peak_gflops", {{"fp32", 2000.0}, {"bf16", 4000.0}, {"int8", nullptr}}},
                                {"bandwidth_gbs", {{"read", 80.0}, {"triad", 60.0}}}};
  const profile h = make_host_profile(probe);
  EXPECT_EQ(h.slug, "host");
  EXPECT_DOUBLE_EQ(*h.peak("fp32"), 2.0);
  EXPECT_DOUBLE_EQ(*h.peak("bf16"), 4.0);
  EXPECT_FALSE(h.peak("int8").has_value());
  EXPECT_DOUBLE_EQ(h.at("memory.bandwidth").value, 0.08);
  EXPECT_EQ(h.at("memory.bandwidth").grade, confidence::measured);
  EXPECT_NE(h.at("peak.fp32").source.find("abc123"), std::string::npos);
  EXPECT_THROW(h.at("power.tdp"), not_estimable);
  EXPECT_THROW(h.at("memory.capacity"), not_estimable);  // an older probe file without memory_bytes
  nlohmann::json with_memory = probe;
  with_memory["memory_bytes"] = 24e9;
  EXPECT_DOUBLE_EQ(make_host_profile(with_memory).at("memory.capacity").value, 24.0);  // GB
  EXPECT_EQ(make_host_profile(with_memory).at("memory.capacity").unit, "GB");
  EXPECT_THROW(make_host_profile({{"peak_gflops", {{"fp32", 0.0}}}, {"bandwidth_gbs", {{"read", 1.0}}}}), std::invalid_argument);
  EXPECT_THROW(make_host_profile({{"peak_gflops", {{"fp32", 1.0}}}}), std::invalid_argument);
  profile_db d = profile_db::load(kDir);
  d.add(h);
  EXPECT_EQ(d.get("host").kind, profile_kind::host);
  EXPECT_THROW(d.add(make_host_profile(probe)), std::invalid_argument);
}
