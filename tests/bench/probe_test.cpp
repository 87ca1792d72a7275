// Host roofline probe: JSON round trip, measured figures, ISA cap, cache file behaviour, fingerprint.
#include <gtest/gtest.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include "backends/backend.hpp"
#include "bench/probe/machine.hpp"
#include "backends/memory.hpp"
#include "bench/probe/probe.hpp"
#include "bench/probe/probe_kernels.hpp"
#include "kernels/common/isa.hpp"

namespace infermark {
namespace {

namespace fs = std::filesystem;

// Small timing budget (about 25 timed regions of 2 ms per figure): the figures are real but short-timed;
// the suite measures once and shares it.
probe_options tiny() {
  probe_options o;
  o.seconds_per_test = 0.05;
  return o;
}

const probe_result& measured() {
  static const probe_result r = measure_probe(tiny());
  return r;
}

fs::path fresh_dir(const std::string& name) {
  const fs::path d = fs::path(::testing::TempDir()) / ("infermark_probe_" + name + "_" + std::to_string(getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

probe_result synthetic() {
  probe_result r;
  r.fingerprint = "0123456789abcdef";
  r.fingerprint_fields = {{"cpu_model", "test cpu"}, {"cores", 4}};
  r.isa = {"fma", "avx2"};
  r.isa_level = "avx2";
  r.isa_used = {{"fp32", "avx2 vfmadd231ps"}, {"bf16", "none"}};
  r.threads = 4;
  r.pinning = {{"requested", "core"}, {"applied", true}, {"cpus", {0, 1, 2, 3}}, {"message", ""}};
  r.peak_gflops_1core = {100.5, std::nullopt, 400.25};
  r.peak_gflops = {390.0, std::nullopt, 1500.0};
  r.read_gbs = 25.5;
  r.triad_gbs = 20.25;
  r.dram_working_set_bytes = 1ull << 27;
  r.dram_huge_page_share = 0.75;
  r.memory_bytes = 24ull << 30;
  r.caches = {{1, 65536, 900.0, 16384, 32768}, {2, 2097152, 400.0, 524288, 1048576}};
  r.measured_at = "2025-01-02T03:04:05.678Z";
  return r;
}

TEST(ProbeJson, RoundTripIsExact) {
  const probe_result r = synthetic();
  const nlohmann::json j = r.to_json();
  EXPECT_TRUE(j["peak_gflops"]["bf16"].is_null());
  EXPECT_EQ(j["peak_gflops"]["fp32"].get<double>(), 390.0);
  EXPECT_EQ(j["bandwidth_gbs"]["read"].get<double>(), 25.5);
  EXPECT_EQ(j["bandwidth_gbs"]["triad"].get<double>(), 20.25);
  EXPECT_EQ(j["caches"][1]["level"].get<int>(), 2);
  const probe_result back = probe_result::from_json(j);
  EXPECT_EQ(back.to_json(), j);
  EXPECT_FALSE(back.peak_gflops.bf16.has_value());
  EXPECT_EQ(*back.peak_gflops_1core.int8, 400.25);
  EXPECT_EQ(back.caches[0].working_set_per_thread_bytes, 16384u);
  EXPECT_EQ(back.dram_huge_page_share, 0.75);
  EXPECT_EQ(back.memory_bytes, 24ull << 30);
  // Unknown huge-page share (no smaps) is null, and a file without the field reads as unknown.
  probe_result unknown = r;
  unknown.dram_huge_page_share = -1;
  EXPECT_TRUE(unknown.to_json()["dram_huge_page_share"].is_null());
  nlohmann::json old = j;
  old.erase("dram_huge_page_share");
  EXPECT_EQ(probe_result::from_json(old).dram_huge_page_share, -1);
  // Through text, as the cache file stores it.
  EXPECT_EQ(probe_result::from_json(nlohmann::json::parse(j.dump(2))).to_json(), j);
}

TEST(ProbeJson, RejectsBadInput) {
  const nlohmann::json good = synthetic().to_json();
  EXPECT_THROW(probe_result::from_json(nlohmann::json::array()), std::runtime_error);
  for (const char* key : {"fingerprint", "threads", "peak_gflops", "bandwidth_gbs", "caches", "isa_level"}) {
    nlohmann::json j = good;
    j.erase(key);
    EXPECT_THROW(probe_result::from_json(j), std::runtime_error) << key;
  }
  nlohmann::json j = good;
  j["peak_gflops"]["fp32"] = -1.0;
  EXPECT_THROW(probe_result::from_json(j), std::runtime_error);
  j = good;
  j["peak_gflops"]["fp32"] = nullptr;  // fp32 always exists
  EXPECT_THROW(probe_result::from_json(j), std::runtime_error);
  j = good;
  j["bandwidth_gbs"]["read"] = "fast";
  EXPECT_THROW(probe_result::from_json(j), std::runtime_error);
  j = good;
  j["threads"] = 0;
  EXPECT_THROW(probe_result::from_json(j), std::runtime_error);
  j = good;
  j["isa_level"] = "sse9";
  EXPECT_THROW(probe_result::from_json(j), std::runtime_error);
  j = good;
  j["dram_huge_page_share"] = 1.5;
  EXPECT_THROW(probe_result::from_json(j), std::runtime_error);
  j = good;
  j["caches"][0]["read_gbs"] = 0.0;
  EXPECT_THROW(probe_result::from_json(j), std::runtime_error);
}

TEST(ProbePeakFor, ScalesAndCaps) {
  const probe_result r = synthetic();
  EXPECT_DOUBLE_EQ(*r.peak_for("fp32", 1), 100.5);
  EXPECT_DOUBLE_EQ(*r.peak_for("fp32", 2), 201.0);
  EXPECT_DOUBLE_EQ(*r.peak_for("fp32", 4), 390.0);   // capped by the all-core figure
  EXPECT_DOUBLE_EQ(*r.peak_for("fp32", 64), 390.0);
  EXPECT_FALSE(r.peak_for("bf16", 2).has_value());
  EXPECT_DOUBLE_EQ(*r.peak_for("int8", 3), 1200.75);
  EXPECT_DOUBLE_EQ(*r.peak_for("fp8", 2), 201.0);     // no bf16: fp8 runs at the fp32 peak
  probe_result b = r;
  b.peak_gflops_1core.bf16 = 300.0;
  b.peak_gflops.bf16 = 1000.0;
  EXPECT_DOUBLE_EQ(*b.peak_for("fp8", 2), 600.0);     // with bf16, the faster of the two
  EXPECT_THROW(r.peak_for("fp16", 1), std::invalid_argument);
  EXPECT_THROW(r.peak_for("fp32", 0), std::invalid_argument);
}

TEST(ProbeMeasure, FiguresArePositiveAndConsistent) {
  const probe_result& r = measured();
  EXPECT_EQ(r.threads, max_threads());
  EXPECT_EQ(r.fingerprint, machine_fingerprint());
  EXPECT_EQ(r.isa_level, std::string(to_string(effective_isa())));
  ASSERT_TRUE(r.peak_gflops.fp32 && r.peak_gflops_1core.fp32);
  EXPECT_GT(*r.peak_gflops_1core.fp32, 0.1);
  const cpu_features f = effective_features();
  const bool avx2 = f.avx2 && f.fma;
  EXPECT_EQ(r.peak_gflops.bf16.has_value(), f.avx512_bf16 || avx2);
  EXPECT_EQ(r.peak_gflops_1core.bf16.has_value(), f.avx512_bf16 || avx2);
  EXPECT_EQ(r.peak_gflops.int8.has_value(), f.avx512_vnni || avx2);
  EXPECT_EQ(r.peak_gflops_1core.int8.has_value(), f.avx512_vnni || avx2);
  // The tile unit is the ceiling where it is usable, else the vector dot products, else the AVX2 loops
  // of the widened types.
  if (r.peak_gflops.bf16) {
    EXPECT_NE(r.isa_used["bf16"].get<std::string>().find(f.amx_bf16 ? "tdpbf16ps" : f.avx512_bf16 ? "vdpbf16ps" : "vfmadd231ps"),
              std::string::npos);
  } else {
    EXPECT_NE(r.isa_used["bf16"].get<std::string>().find("none: needs avx2+fma"), std::string::npos);
  }
  if (r.peak_gflops.int8) {
    EXPECT_NE(r.isa_used["int8"].get<std::string>().find(f.amx_int8 ? "tdpbssd" : f.avx512_vnni ? "vpdpbusd" : "vpmaddwd"),
              std::string::npos);
  } else {
    EXPECT_NE(r.isa_used["int8"].get<std::string>().find("none: needs avx2+fma"), std::string::npos);
  }
  if (effective_isa() >= isa_level::avx512) {
    EXPECT_NE(r.isa_used["fp32"].get<std::string>().find("avx512"), std::string::npos);
  }
  EXPECT_DOUBLE_EQ(*r.peak_for("fp32", r.threads),
                   std::min(*r.peak_gflops.fp32, r.threads * *r.peak_gflops_1core.fp32));
  EXPECT_DOUBLE_EQ(*r.peak_for("fp32", 1), std::min(*r.peak_gflops.fp32, *r.peak_gflops_1core.fp32));

  EXPECT_GT(r.read_gbs, 0.1);
  EXPECT_GT(r.triad_gbs, 0.1);
  const machine_summary& m = probe_machine();
  EXPECT_GE(r.dram_working_set_bytes, 4 * m.llc_total_bytes());
  // The DRAM arrays are advised onto transparent huge pages (4 KiB pages cost ~30% of the bandwidth here).
  if (const std::string thp = transparent_huge_pages_mode(); thp == "madvise" || thp == "always") {
    EXPECT_GT(r.dram_huge_page_share, 0.5) << thp;
  }
  EXPECT_LE(r.dram_huge_page_share, 1.0);
  ASSERT_EQ(r.caches.size(), m.caches.size());
  for (std::size_t i = 0; i < r.caches.size(); ++i) {
    EXPECT_EQ(r.caches[i].level, m.caches[i].level);
    EXPECT_GT(r.caches[i].read_gbs, 0.1);
    EXPECT_LT(r.caches[i].working_set_per_thread_bytes, m.caches[i].size_bytes);
    EXPECT_EQ(r.caches[i].size_bytes, r.caches[i].working_set_per_thread_bytes * r.threads);
    if (i > 0) {
      EXPECT_GT(r.caches[i].working_set_per_thread_bytes, m.caches[i - 1].size_bytes);
    }
  }
  EXPECT_EQ(r.measured_at.size(), 24u);  // 2025-01-02T03:04:05.678Z
  // What was measured survives the file format.
  EXPECT_EQ(probe_result::from_json(r.to_json()).to_json(), r.to_json());
}

// Relations between measured figures that hold on any machine the probe runs on; empty when all hold.
std::string ratio_problems(const probe_result& r) {
  std::string why;
  auto fail = [&](const std::string& what, double a, double b) {
    why += what + " (" + std::to_string(a) + " vs " + std::to_string(b) + "); ";
  };
  const std::pair<const char*, std::pair<std::optional<double>, std::optional<double>>> figures[] = {
      {"fp32", {r.peak_gflops_1core.fp32, r.peak_gflops.fp32}},
      {"bf16", {r.peak_gflops_1core.bf16, r.peak_gflops.bf16}},
      {"int8", {r.peak_gflops_1core.int8, r.peak_gflops.int8}}};
  for (const auto& [name, v] : figures) {
    if (!v.first) continue;
    // All cores reach at least one core's figure, and no more than linear scaling of it.
    if (*v.second < 0.9 * *v.first) fail(std::string(name) + " all-core < 0.9 x 1-core", *v.second, *v.first);
    if (*v.second > 1.25 * r.threads * *v.first) fail(std::string(name) + " all-core > 1.25 x linear", *v.second, *v.first);
  }
  // vdpbf16ps has the FMA's vector width and two products per lane, and on AVX2 the bf16 figure is the
  // fp32 FMA loop itself: never below the fp32 peak.
  if (r.peak_gflops_1core.bf16 && *r.peak_gflops_1core.bf16 < 0.9 * *r.peak_gflops_1core.fp32)
    fail("bf16 1-core < 0.9 x fp32 1-core", *r.peak_gflops_1core.bf16, *r.peak_gflops_1core.fp32);
#ifndef INFERMARK_SANITIZED
  // L1-resident reads are many times faster than DRAM reads on any machine this runs on.
  if (!r.caches.empty() && r.caches.front().read_gbs < 2 * r.read_gbs)
    fail("L1 read < 2 x DRAM read", r.caches.front().read_gbs, r.read_gbs);
#endif
  return why;
}

// Other processes share this machine's cores (ctest -j, builds), so a disturbed measurement is retried,
// at most twice, with a longer budget; only an oversubscribed machine (more runnable work than PUs
// over the last minute, where the workers cannot run undisturbed whatever the probe does) skips it.
TEST(ProbeMeasure, MeasuredFiguresRelateAsTheHardwareDoes) {
  std::string why;
  for (int attempt = 0; attempt < 3; ++attempt) {
    probe_options o = tiny();
    o.seconds_per_test = 0.1;
    why = ratio_problems(attempt == 0 ? measured() : measure_probe(o));
    if (why.empty()) break;
  }
  if (!why.empty()) {
    double load1 = 0;
    std::ifstream("/proc/loadavg") >> load1;
    if (load1 > max_threads())
      GTEST_SKIP() << "machine oversubscribed (load " << load1 << " on " << max_threads() << " PUs): " << why;
  }
  EXPECT_TRUE(why.empty()) << "in 3 attempts: " << why;
}

TEST(ProbeMeasure, RatioChecksCanFail) {
  probe_result r = synthetic();
  r.peak_gflops_1core = {100.0, 200.0, 400.0};
  r.peak_gflops = {200.0, 400.0, 800.0};
  r.threads = 2;
  r.caches = {{1, 65536, 900.0, 16384, 32768}};
  EXPECT_EQ(ratio_problems(r), "");
  r.peak_gflops.fp32 = 80.0;  // all cores below one core
  EXPECT_NE(ratio_problems(r).find("fp32 all-core < 0.9"), std::string::npos);
  r.peak_gflops.fp32 = 300.0;  // superlinear: a counting error
  EXPECT_NE(ratio_problems(r).find("fp32 all-core > 1.25"), std::string::npos);
  r.peak_gflops.fp32 = 200.0;
  r.peak_gflops_1core.bf16 = 50.0;
  EXPECT_NE(ratio_problems(r).find("bf16 1-core"), std::string::npos);
}

// AVX2 has no bf16 or int8 dot product, but the AVX2 GEMM computes both on widened values: the ceilings
// are the loops of those instructions.
TEST(ProbeMeasure, CappedToAvx2MeasuresWidenedBf16AndInt8) {
  if (detected_isa() < isa_level::avx2) GTEST_SKIP() << "CPU has no AVX2";
  const std::string uncapped = machine_fingerprint();
  scoped_isa_cap cap(isa_level::avx2);
  const probe_result r = measure_probe(tiny());
  EXPECT_EQ(r.isa_level, "avx2");
  ASSERT_TRUE(r.peak_gflops.bf16 && r.peak_gflops_1core.bf16 && r.peak_gflops.int8 && r.peak_gflops_1core.int8);
  EXPECT_GT(*r.peak_gflops_1core.bf16, 0.1);
  EXPECT_GT(*r.peak_gflops_1core.int8, 0.1);
  EXPECT_TRUE(r.peak_for("bf16", 1).has_value());
  EXPECT_NE(r.isa_used["fp32"].get<std::string>().find("avx2"), std::string::npos);
  EXPECT_NE(r.isa_used["bf16"].get<std::string>().find("avx2 vfmadd231ps ymm on bf16 widened to fp32"), std::string::npos);
  EXPECT_NE(r.isa_used["int8"].get<std::string>().find("avx2 vpmaddwd + vpaddd ymm"), std::string::npos);
  EXPECT_GT(*r.peak_gflops.fp32, 0.1);
  // The cap is part of the fingerprint: a capped probe never reuses an uncapped cache file.
  EXPECT_EQ(r.fingerprint, machine_fingerprint());
  if (detected_isa() > isa_level::avx2) {
    EXPECT_NE(r.fingerprint, uncapped);
  }
}

TEST(ProbeMeasure, ReadBesideACaseGivesBestAndSustained) {
  // The runner pairs each repetition of a memory-bound case with this read: the fastest region and all
  // regions together, from one measurement. The fastest can never be slower than the average.
  const auto be = make_backend({backend_kind::serial, 1, pin_policy::none});
  const dram_read_beside r = measure_dram_read_beside(*be, 0.02);
  EXPECT_GT(r.sustained_gbs, 0.1);
  EXPECT_GE(r.best_gbs, r.sustained_gbs);
  EXPECT_LT(r.best_gbs, 1e4);  // 10 TB/s: no single core reads DRAM that fast
  EXPECT_THROW(measure_dram_read_beside(*be, 0.0), std::invalid_argument);
  EXPECT_THROW(measure_dram_read_beside(*be, std::nan("")), std::invalid_argument);
}

TEST(ProbeMeasure, RestoresCallerAffinityAndRejectsBadOptions) {
  cpu_set_t before, after;
  ASSERT_EQ(pthread_getaffinity_np(pthread_self(), sizeof(before), &before), 0);
  probe_options o = tiny();
  o.threads = 1;
  const probe_result r = measure_probe(o);
  EXPECT_EQ(r.threads, 1);
  EXPECT_DOUBLE_EQ(*r.peak_gflops.fp32, *r.peak_gflops_1core.fp32);
  ASSERT_EQ(pthread_getaffinity_np(pthread_self(), sizeof(after), &after), 0);
  EXPECT_TRUE(CPU_EQUAL(&before, &after));

  o.threads = max_threads() + 1;
  EXPECT_THROW(measure_probe(o), std::invalid_argument);
  o.threads = -1;
  EXPECT_THROW(measure_probe(o), std::invalid_argument);
  o = tiny();
  o.seconds_per_test = 0;
  EXPECT_THROW(measure_probe(o), std::invalid_argument);
  o.seconds_per_test = std::nan("");
  EXPECT_THROW(measure_probe(o), std::invalid_argument);
}

// The cache logic with a counting measure function (no timing needed: the synthetic result carries
// this machine's fingerprint, as a real measurement would).
struct counting_measure {
  int calls = 0;
  probe_result operator()(const probe_options& o) {
    ++calls;
    probe_result r = synthetic();
    r.fingerprint_fields = fingerprint_fields();
    r.fingerprint = machine_fingerprint();
    r.threads = o.threads == 0 ? max_threads() : o.threads;
    r.measured_at = "2025-01-01T00:00:00." + std::to_string(100 + calls) + "Z";
    return r;
  }
};

TEST(ProbeCache, HitRefreshAndCorruptFile) {
  const fs::path dir = fresh_dir("cache") / "results";  // created by the first write
  counting_measure m;
  auto measure = [&](const probe_options& o) { return m(o); };
  const probe_result first = load_or_measure_probe(dir, false, tiny(), measure);
  EXPECT_EQ(m.calls, 1);
  const fs::path file = probe_cache_path(dir, machine_fingerprint());
  ASSERT_TRUE(fs::exists(file));
  EXPECT_EQ(file.filename().string(), "probe-" + machine_fingerprint() + ".json");

  const probe_result second = load_or_measure_probe(dir, false, tiny(), measure);
  EXPECT_EQ(m.calls, 1);  // served from the file
  EXPECT_EQ(second.to_json(), first.to_json());

  const probe_result third = load_or_measure_probe(dir, true, tiny(), measure);
  EXPECT_EQ(m.calls, 2);  // --refresh measures again
  EXPECT_NE(third.measured_at, first.measured_at);
  EXPECT_EQ(read_probe_file(file).to_json(), third.to_json());

  { std::ofstream(file, std::ios::trunc) << "{\"fingerprint\": \"" << machine_fingerprint() << "\", \"threads\": "; }
  EXPECT_THROW(read_probe_file(file), std::runtime_error);
  const probe_result fourth = load_or_measure_probe(dir, false, tiny(), measure);
  EXPECT_EQ(m.calls, 3);  // a corrupt file is measured again, not trusted
  EXPECT_EQ(read_probe_file(file).to_json(), fourth.to_json());

  // Valid JSON for another machine under this machine's name is not trusted either.
  probe_result foreign = fourth;
  foreign.fingerprint = "ffffffffffffffff";
  write_probe_file(file, foreign);
  load_or_measure_probe(dir, false, tiny(), measure);
  EXPECT_EQ(m.calls, 4);

  // A different thread count is a different measurement.
  if (max_threads() >= 2) {
    probe_options one = tiny();
    one.threads = 1;
    EXPECT_EQ(load_or_measure_probe(dir, false, one, measure).threads, 1);
    EXPECT_EQ(m.calls, 5);
  }
  // Atomic writes leave no temporary files behind.
  for (const auto& e : fs::directory_iterator(dir)) EXPECT_EQ(e.path(), file);
}

TEST(ProbeCache, RealMeasurementThroughTheDefaultPath) {
  const fs::path dir = fresh_dir("default");
  const probe_result r = load_or_measure_probe(dir, false, tiny());
  EXPECT_GT(*r.peak_gflops.fp32, 0.1);
  EXPECT_EQ(load_or_measure_probe(dir, false, tiny()).to_json(), r.to_json());
}

TEST(ProbeCache, UnwritableDirectoryThrows) {
  const fs::path dir = fresh_dir("unwritable");
  const fs::path not_a_dir = dir / "file";
  std::ofstream(not_a_dir) << "x";
  EXPECT_THROW(write_probe_file(not_a_dir / "probe-x.json", synthetic()), std::runtime_error);
}

TEST(ProbeFingerprint, StableAndSensitiveToEachField) {
  const std::string fp = machine_fingerprint();
  EXPECT_EQ(fp.size(), 16u);
  EXPECT_EQ(fp.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(machine_fingerprint(), fp);
  const nlohmann::json f = fingerprint_fields();
  EXPECT_EQ(fingerprint_hash(f), fp);
  for (const char* key : {"cpu_model", "arch", "cores", "pus", "numa_nodes", "isa_detected", "isa_level", "caches",
                          "compiler", "probe_version"})
    ASSERT_TRUE(f.contains(key)) << key;
  EXPECT_EQ(f["cpu_model"], probe_machine().cpu_model);
  EXPECT_EQ(f["pus"], probe_machine().pus);

  auto changed = [&](auto&& edit) {
    nlohmann::json g = f;
    edit(g);
    return fingerprint_hash(g);
  };
  EXPECT_NE(changed([](auto& g) { g["cpu_model"] = g["cpu_model"].template get<std::string>() + "x"; }), fp);
  EXPECT_NE(changed([](auto& g) { g["cores"] = g["cores"].template get<int>() + 1; }), fp);
  EXPECT_NE(changed([](auto& g) { g["compiler"] = "gcc 99"; }), fp);
  EXPECT_NE(changed([](auto& g) { g["isa_detected"].push_back("amx"); }), fp);
  EXPECT_NE(changed([](auto& g) { g["probe_version"] = probe_version + 1; }), fp);
  if (!f["caches"].empty()) {
    EXPECT_NE(changed([](auto& g) { g["caches"][0]["size_bytes"] = 1; }), fp);
  }
  // FNV-1a 64 of the compact dump: a known value pins the algorithm across builds.
  EXPECT_EQ(fingerprint_hash(nlohmann::json::object()), "08f44b07b5901a25");  // FNV-1a 64 of "{}"
}

TEST(ProbeMachine, SysfsParsers) {
  EXPECT_EQ(parse_sysfs_size("32K"), 32768u);
  EXPECT_EQ(parse_sysfs_size("32768K"), 32ull << 20);
  EXPECT_EQ(parse_sysfs_size("2M"), 2ull << 20);
  EXPECT_THROW(parse_sysfs_size("big"), std::invalid_argument);
  EXPECT_THROW(parse_sysfs_size("12Q"), std::invalid_argument);
  EXPECT_EQ(count_cpu_list("0"), 1);
  EXPECT_EQ(count_cpu_list("0-1"), 2);
  EXPECT_EQ(count_cpu_list("0-3,8-11"), 8);
  EXPECT_THROW(count_cpu_list(""), std::invalid_argument);
  EXPECT_THROW(count_cpu_list("3-1"), std::invalid_argument);
  EXPECT_THROW(count_cpu_list("0-x"), std::invalid_argument);
}

TEST(ProbeMachine, ReadsAFakeSysfsTree) {
  const fs::path root = fresh_dir("sysfs");
  auto index = [&](int i, const char* level, const char* type, const char* size, const char* shared) {
    const fs::path d = root / "cpu0" / "cache" / ("index" + std::to_string(i));
    fs::create_directories(d);
    std::ofstream(d / "level") << level << "\n";
    std::ofstream(d / "type") << type << "\n";
    std::ofstream(d / "size") << size << "\n";
    std::ofstream(d / "shared_cpu_list") << shared << "\n";
    std::ofstream(d / "coherency_line_size") << "64\n";
  };
  index(3, "3", "Unified", "32768K", "0-7");
  index(0, "1", "Data", "48K", "0,4");
  index(1, "1", "Instruction", "32K", "0,4");
  index(2, "2", "Unified", "2048K", "0,4");
  const auto caches = read_sysfs_caches(root.string(), 8);
  ASSERT_EQ(caches.size(), 3u);  // the instruction cache is left out
  EXPECT_EQ(caches[0].level, 1);
  EXPECT_EQ(caches[0].type, "data");
  EXPECT_EQ(caches[0].size_bytes, 48u << 10);
  EXPECT_EQ(caches[0].pus_sharing, 2);
  EXPECT_EQ(caches[0].instances, 4);
  EXPECT_EQ(caches[2].level, 3);
  EXPECT_EQ(caches[2].instances, 1);
  EXPECT_EQ(caches[2].line_bytes, 64);
}

TEST(ProbeMachine, KnowsThisMachine) {
  const machine_summary& m = probe_machine();
  EXPECT_GE(m.pus, max_threads());
  EXPECT_GE(m.cores, 1);
  EXPECT_LE(m.cores, m.pus);
  EXPECT_GE(m.numa_nodes, 1);
  EXPECT_FALSE(m.cpu_model.empty());
#if defined(__x86_64__) && defined(__linux__)
  ASSERT_FALSE(m.caches.empty());  // every x86-64 Linux exposes its caches (hwloc or sysfs)
  EXPECT_GT(m.llc_total_bytes(), 0u);
  for (std::size_t i = 1; i < m.caches.size(); ++i) EXPECT_GT(m.caches[i].level, m.caches[i - 1].level);
#endif
}

// The loops themselves, per variant the CPU can run: exact sums, exact triad, finite peak results.
TEST(ProbeKernels, EveryRunnableVariantComputes) {
  namespace pk = probe_kernels;
  constexpr std::size_t n = 7 * pk::stream_block;
  alignas(64) static double a[n], b[n], c[n];
  for (std::size_t i = 0; i < n; ++i) {
    b[i] = static_cast<double>(i);
    c[i] = 0.5;
  }
  for (isa_level level : runnable_isas()) {
    scoped_isa_cap cap(level);
    const cpu_features f = effective_features();
    const auto rk = pk::select_read(f);
    // Sizes with and without a tail after the 4 interleaved streams, and one that is all tail.
    for (std::size_t m : {pk::stream_block, 4 * pk::stream_block, n})
      EXPECT_EQ(rk.run(b, m), static_cast<double>(m * (m - 1) / 2)) << rk.path << " n=" << m;
    const auto tk = pk::select_triad(f);
    tk.run(a, b, c, 4.0, n);
    for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(a[i], static_cast<double>(i) + 2.0) << tk.path;
    const auto fk = pk::select_fp32(f);
    EXPECT_TRUE(std::isfinite(fk.run(100000, 0.999f))) << fk.path;
    EXPECT_GT(fk.ops_per_iter, 0);
    if (auto k = pk::select_bf16(f)) {
      EXPECT_TRUE(std::isfinite(k->run(100000, 0.999f))) << k->path;
    }
    if (auto k = pk::select_int8(f)) {
      // The +v/-v pattern adds zero per instruction to accumulators that start at zero.
      EXPECT_EQ(k->run(100000, 0.999f), 0.0) << k->path;
    }
    if (level == isa_level::generic) {
      EXPECT_NE(std::string(fk.path).find("generic"), std::string::npos);
    }
  }
}

// Which bf16 / int8 loop each ISA level gets, and the operations each iteration is counted as.
TEST(ProbeKernels, Bf16AndInt8SelectionPerIsaLevel) {
  namespace pk = probe_kernels;
  for (isa_level level : runnable_isas()) {
    scoped_isa_cap cap(level);
    const cpu_features f = effective_features();
    const auto bf16 = pk::select_bf16(f), int8 = pk::select_int8(f);
    if (level == isa_level::generic) {
      EXPECT_FALSE(bf16.has_value());
      EXPECT_FALSE(int8.has_value());
    }
#if defined(__x86_64__) || defined(_M_X64)
    if (level != isa_level::avx2 || !(f.avx2 && f.fma)) continue;
    ASSERT_TRUE(bf16 && int8);
    // bf16 widened to fp32: the fp32 FMA loop, 12 ymm x 8 lanes x 2 FLOPs.
    EXPECT_EQ(bf16->run, pk::select_fp32(f).run);
    EXPECT_EQ(bf16->ops_per_iter, pk::select_fp32(f).ops_per_iter);
    EXPECT_EQ(bf16->ops_per_iter, 12 * 8 * 2.0);
    // int8 widened to int16: per vpmaddwd ymm 16 products, each a multiply and an add (32 ops), 8 per iteration.
    EXPECT_EQ(int8->run, &pk::int8_madd_avx2);
    EXPECT_EQ(int8->ops_per_iter, 8 * 16 * 2.0);
    EXPECT_EQ(pk::int8_madd_avx2(0, 0.999f), 0.0);
    EXPECT_EQ(pk::int8_madd_avx2(12345, 0.5f), 0.0);
#endif
  }
}

}  // namespace
}  // namespace infermark
