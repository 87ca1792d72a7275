// `infermark report` on hand-written results files: what is read (medians, rates, roofline fractions,
// estimate whiskers), what the HTML and Markdown contain, and how bad input is refused.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "bench/report/report.hpp"
#include "bench/report/text_file.hpp"

namespace infermark::report {
namespace {

using json = nlohmann::json;

json probe_json() {
  return {{"fingerprint", "00000000deadbeef"},
          {"fingerprint_fields", {{"cpu_model", "Test CPU <x86>"}}},
          {"isa", {"fma", "avx2"}},
          {"isa_level", "avx2"},
          {"isa_used", {{"fp32", "avx2 vfmadd231ps"}}},
          {"threads", 2},
          {"pinning", json::object()},
          {"peak_gflops", {{"fp32", 200.0}, {"bf16", nullptr}, {"int8", 400.0}}},
          {"peak_gflops_1core", {{"fp32", 100.0}, {"bf16", nullptr}, {"int8", 200.0}}},
          {"bandwidth_gbs", {{"read", 20.0}, {"triad", 25.0}}},
          {"dram_working_set_bytes", 134217728u},
          {"caches",
           {{{"level", 1}, {"size_bytes", 65536u}, {"working_set_per_thread_bytes", 16384u}, {"cache_size_bytes", 32768u}, {"read_gbs", 300.0}},
            {{"level", 2}, {"size_bytes", 1048576u}, {"working_set_per_thread_bytes", 524288u}, {"cache_size_bytes", 1048576u}, {"read_gbs", 150.0}}}},
          {"measured_at", "2026-01-01T00:00:00Z"}};
}

json entry(const std::string& desc, const std::string& impl, int threads, const std::string& type, double real_time,
           const std::string& unit) {
  const std::string name = desc + "/" + impl + "/openmp/" + std::to_string(threads);
  json e = {{"name", name},
            {"run_name", name},
            {"run_type", type},
            {"descriptor", desc},
            {"impl", impl},
            {"backend", "openmp"},
            {"backend_threads", threads},
            {"flops_per_iteration", 2e6},
            {"bytes_per_iteration", 1e6},
            {"intensity", 2.0},
            {"peak_dtype", "fp32"},
            {"verified", true},
            {"verification", "max rel err 1e-7"},
            {"repro", "infermark run --case " + desc},
            {"real_time", real_time},
            {"cpu_time", real_time},
            {"time_unit", unit}};
  if (type == "aggregate") {
    e["name"] = name + "_median";
    e["aggregate_name"] = "median";
  }
  return e;
}

json results_doc() {
  json b = json::array();
  // Case 1: three repetitions of 2, 3 and 10 ms (median 3 ms) plus Google Benchmark's aggregates.
  b.push_back(entry("gemm:m64n256k512:fp32", "gemm:avx2", 2, "iteration", 2.0, "ms"));
  b.push_back(entry("gemm:m64n256k512:fp32", "gemm:avx2", 2, "iteration", 3.0, "ms"));
  b.push_back(entry("gemm:m64n256k512:fp32", "gemm:avx2", 2, "iteration", 10.0, "ms"));
  b.push_back(entry("gemm:m64n256k512:fp32", "gemm:avx2", 2, "aggregate", 3.0, "ms"));
  // Case 2: one repetition of 500 us on one thread; its descriptor carries markup characters.
  b.push_back(entry("gemm:m1n2k3:fp32:note=<b>&", "gemm:ref", 1, "iteration", 500.0, "us"));
  // Case 3: correctness only.
  json c = entry("attn:decode:fp32", "attn:ref", 2, "correctness", 0, "ns");
  c.erase("real_time");
  b.push_back(c);
  json ctx = {{"date", "2026-01-01T00:00:00+00:00"},
              {"host_name", "testhost"},
              {"num_cpus", 2},
              {"mhz_per_cpu", 3000},
              {"infermark",
               {{"build", {{"version", "0.1.0"}, {"git_revision", "abc1234"}, {"compiler", "GNU 12.2.0"}, {"build_type", "Release"}}},
                {"command", "infermark run --case gemm:m64n256k512:fp32"},
                {"suite", "--case"},
                {"mode", "perf"},
                {"backend", "openmp"},
                {"threads", 2},
                {"pinning", {{"requested", "none"}, {"applied", false}, {"cpus", json::array()}, {"message", ""}}},
                {"isa", {{"detected", "avx2"}, {"effective", "avx2"}, {"features", {"fma", "avx2"}}}},
                {"topology", {{"cpu_model", "Test CPU <x86>"}, {"arch", "x86_64"}, {"packages", 1}, {"cores", 2}, {"pus", 2}}},
                {"fingerprint", "00000000deadbeef"},
                {"probe", probe_json()},
                {"summary", {{"verified", 3}, {"failed", 1}, {"refused", 0}, {"timed", 2}}},
                {"failures",
                 {{{"descriptor", "gemm:m7n7k7:bf16"}, {"impl", "gemm:x"}, {"kind", "verification"}, {"message", "max rel err 0.5"},
                   {"repro", "infermark run --case gemm:m7n7k7:bf16"}}}}}}};
  return {{"context", ctx}, {"benchmarks", b}};
}

json estimates_json() {
  return json::array({{{"workload", "deepseek-v3"},
                       {"reference", "h100-sxm"},
                       {"phase", "decode"},
                       {"batch", 128},
                       {"context", 4096},
                       {"estimates",
                        {{{"profile", "h100-sxm"}, {"dtype", "fp8"}, {"time_s", 0.02}, {"tokens_per_s", 1000.0}, {"relative_per_chip", 1.0},
                          {"tokens_per_joule", 1.4}, {"relative_per_watt", 1.0}, {"bound", "memory"}, {"p10", 800.0}, {"p90", 1200.0},
                          {"provenance", "fitted on 5 points"}},
                         {{"profile", "b200"}, {"dtype", "fp8"}, {"time_s", 0.01}, {"tokens_per_s", 2000.0}, {"relative_per_chip", 2.0},
                          {"tokens_per_joule", 2.1}, {"relative_per_watt", 1.5}, {"bound", "memory"}, {"p10", 1600.0}, {"p90", 2600.0},
                          {"provenance", {"borrowed from h100-sxm"}}},
                         {{"profile", "mystery-chip"}, {"error", "no HBM bandwidth figure in the profile"}}}}}});
}

TEST(Report, MemoryBoundCaseIsMeasuredAgainstTheBandwidthBesideIt) {
  json doc = results_doc();
  // Case 1 (1e6 bytes in a 3 ms median) was timed with 25 and 35 GB/s of DRAM read measured beside it.
  for (auto& e : doc["benchmarks"])
    if (e["descriptor"] == "gemm:m64n256k512:fp32")
      e["dram_read_gbs_alongside"] = {{"before", 25.0}, {"after", 35.0}, {"mean", 30.0}};
  const auto r = read_report(doc, "r.json");
  const auto& a = r.kernels[0];
  ASSERT_TRUE(a.dram_read_gbs_alongside);
  EXPECT_EQ(*a.dram_read_gbs_alongside, 30.0);
  EXPECT_NEAR(*a.roofline_fraction, (1e6 / 3e-3) / 30e9, 1e-12);
  EXPECT_FALSE(r.kernels[1].dram_read_gbs_alongside);  // the others keep the probe's roofline
  EXPECT_NEAR(*r.kernels[1].roofline_fraction, 4e9 / 40e9, 1e-12);
  EXPECT_NE(render_markdown(r).find("memory-bound: against the DRAM read bandwidth measured"), std::string::npos);
}

TEST(Report, PairedFractionOfTheRepetitionsIsUsedAsStored) {
  json doc = results_doc();
  // The runner pairs each repetition with its own reads and stores the median of the repetitions'
  // fractions on the median aggregate: that figure, not bytes/s over the median read, is the fraction.
  for (auto& e : doc["benchmarks"])
    if (e["descriptor"] == "gemm:m64n256k512:fp32") {
      e["dram_read_gbs_alongside"] = {{"before", 25.0}, {"after", 35.0}, {"mean", 30.0}};
      e["roofline_fraction_alongside"] = 0.8125;
    }
  const auto r = read_report(doc, "r.json");
  ASSERT_TRUE(r.kernels[0].roofline_fraction);
  EXPECT_EQ(*r.kernels[0].roofline_fraction, 0.8125);
  EXPECT_EQ(*r.kernels[0].dram_read_gbs_alongside, 30.0);
}

TEST(Report, FoldsEntriesIntoMediansRatesAndRooflineFractions) {
  const auto r = read_report(results_doc(), "r.json");
  ASSERT_EQ(r.kernels.size(), 3u);
  const auto& a = r.kernels[0];
  EXPECT_EQ(a.index, 1);
  EXPECT_EQ(a.descriptor, "gemm:m64n256k512:fp32");
  EXPECT_EQ(a.repetitions, 3);
  ASSERT_TRUE(a.median_s);
  EXPECT_NEAR(*a.median_s, 3e-3, 1e-15);
  ASSERT_TRUE(a.flops_per_s);
  EXPECT_NEAR(*a.flops_per_s, 2e6 / 3e-3, 1e-3);
  EXPECT_NEAR(*a.bytes_per_s, 1e6 / 3e-3, 1e-3);
  EXPECT_DOUBLE_EQ(*a.intensity, 2.0);
  // min(fp32 peak for 2 threads = min(2 x 100, 200) GFLOP/s, 2 FLOP/B x 20 GB/s) = 40 GFLOP/s.
  ASSERT_TRUE(a.roofline_fraction);
  EXPECT_NEAR(*a.roofline_fraction, (2e6 / 3e-3) / 40e9, 1e-12);
  const auto& b = r.kernels[1];
  EXPECT_EQ(b.threads, 1);
  EXPECT_NEAR(*b.median_s, 500e-6, 1e-15);
  EXPECT_NEAR(*b.flops_per_s, 4e9, 1e-3);
  EXPECT_NEAR(*b.roofline_fraction, 4e9 / 40e9, 1e-12);
  const auto& c = r.kernels[2];
  EXPECT_FALSE(c.timed);
  EXPECT_FALSE(c.median_s);
  ASSERT_EQ(r.failures.size(), 1u);
  EXPECT_EQ(r.failures[0].kind, "verification");
  EXPECT_FALSE(r.has_estimates);
  ASSERT_TRUE(r.probe);
  EXPECT_DOUBLE_EQ(r.probe->read_gbs, 20.0);
}

TEST(Report, UsesTheMedianAggregateWhenNoRepetitionsAreStored) {
  auto doc = results_doc();
  json only = json::array();
  for (const auto& e : doc["benchmarks"])
    if (e["run_type"] == "aggregate") only.push_back(e);
  only[0]["real_time"] = 4.0;
  only[0]["flops_per_s"] = 123.0;
  doc["benchmarks"] = only;
  doc["context"]["infermark"]["probe"] = nullptr;
  const auto r = read_report(doc, "r.json");
  ASSERT_EQ(r.kernels.size(), 1u);
  EXPECT_EQ(r.kernels[0].repetitions, 0);
  EXPECT_NEAR(*r.kernels[0].median_s, 4e-3, 1e-15);
  EXPECT_NEAR(*r.kernels[0].flops_per_s, 2e6 / 4e-3, 1e-6);  // from the work model, not the stored counter
  EXPECT_FALSE(r.kernels[0].roofline_fraction);              // no probe, no stored fraction
  EXPECT_EQ(roofline_chart(r), "");
}

TEST(Report, HtmlHasTheSectionsTablesAndChartsAndNoNetworkUrl) {
  auto doc = results_doc();
  doc["estimates"] = estimates_json();
  const auto r = read_report(doc, "r.json");
  const std::string html = render_html(r);
  for (const char* h : {"<h1>infermark report</h1>", "<h2>Host roofline</h2>", "<h2>Kernel results</h2>", "<h2>Estimates</h2>",
                        "<h2>Machine context</h2>"})
    EXPECT_NE(html.find(h), std::string::npos) << h;
  EXPECT_EQ(html.find("http"), std::string::npos);
  EXPECT_EQ(html.find("NaN"), std::string::npos);
  EXPECT_EQ(html.find("inf<"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
  EXPECT_EQ(html.find("@import"), std::string::npos);
  EXPECT_EQ(html.find("url("), html.find("url(#roof-clip)"));  // the only url() is the chart's own clip path

  // Charts: one roofline, two bar charts for the one estimate setting.
  std::size_t svgs = 0;
  for (auto p = html.find("<svg"); p != std::string::npos; p = html.find("<svg", p + 1)) ++svgs;
  EXPECT_EQ(svgs, 3u);

  // Kernel table: three rows with the figures computed above; the markup characters are escaped.
  const auto table = html.substr(html.find("<table class=\"kernels\">"));
  const auto body = table.substr(0, table.find("</table>"));
  std::size_t rows = 0;
  for (auto p = body.find("<tr><td"); p != std::string::npos; p = body.find("<tr><td", p + 1)) ++rows;
  EXPECT_EQ(rows, 3u);
  EXPECT_NE(body.find("gemm:m64n256k512:fp32"), std::string::npos);
  EXPECT_NE(body.find("3.000 ms"), std::string::npos);
  EXPECT_NE(body.find("0.67"), std::string::npos);     // 2e6 FLOP / 3 ms = 0.67 GFLOP/s
  EXPECT_NE(body.find("1.7%"), std::string::npos);     // of 40 GFLOP/s
  EXPECT_NE(body.find("500.00 \u00b5s"), std::string::npos);
  EXPECT_NE(body.find("10.0%"), std::string::npos);
  EXPECT_NE(body.find("note=&lt;b&gt;&amp;"), std::string::npos);
  EXPECT_EQ(html.find("note=<b>"), std::string::npos);
  EXPECT_NE(body.find("not timed"), std::string::npos);
  EXPECT_NE(html.find("max rel err 0.5"), std::string::npos);  // the failure

  // Estimates: the table rows, the whisker range, the target that is not estimable with its reason.
  EXPECT_NE(html.find("deepseek-v3 decode, batch 128, context 4096"), std::string::npos);
  EXPECT_NE(html.find("1.60\u20132.60"), std::string::npos);
  EXPECT_NE(html.find("<b>mystery-chip</b>: no HBM bandwidth figure in the profile"), std::string::npos);
  EXPECT_NE(html.find("borrowed from h100-sxm"), std::string::npos);

  // Machine context.
  for (const char* s : {"Test CPU &lt;x86&gt;", "abc1234", "00000000deadbeef", "DRAM read 20.0 GB/s", "GNU 12.2.0"})
    EXPECT_NE(html.find(s), std::string::npos) << s;
  // The run had a 1-thread kernel: a dashed fp32 ceiling for one thread (100 GFLOP/s) is drawn.
  EXPECT_NE(html.find("fp32 peak, 1 thread(s) 100.0"), std::string::npos);
}

TEST(Report, MarkdownHasTheTables) {
  auto doc = results_doc();
  doc["estimates"] = estimates_json();
  const std::string md = render_markdown(read_report(doc, "r.json"));
  EXPECT_NE(md.find("# infermark report"), std::string::npos);
  EXPECT_NE(md.find("| 1 | gemm:m64n256k512:fp32 | gemm:avx2 | openmp / 2 | 3.000 ms | 0.67 | 0.33 | 2.00 | 1.7% | yes: max rel err 1e-7 |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| fp32 peak | 200.0 | 100.0 | GFLOP/s |"), std::string::npos) << md;
  EXPECT_NE(md.find("| bf16 peak | unsupported |"), std::string::npos) << md;
  EXPECT_NE(md.find("| **h100-sxm** | fp8 | 20.000 ms | 1000 | 1.00 | 1.40 | 1.00 | memory | 0.80\u20131.20 |"), std::string::npos) << md;
  EXPECT_NE(md.find("- **mystery-chip**: no HBM bandwidth figure in the profile"), std::string::npos);
  EXPECT_EQ(md.find("NaN"), std::string::npos);
  EXPECT_EQ(md.find("<b>"), std::string::npos);  // escaped
}

TEST(Report, SaysSoWhenThereAreNoEstimatesOrNoProbe) {
  auto doc = results_doc();
  doc["context"]["infermark"]["probe"] = nullptr;
  const auto r = read_report(doc, "r.json");
  const auto html = render_html(r), md = render_markdown(r);
  EXPECT_NE(html.find("No estimates in this file"), std::string::npos);
  EXPECT_NE(md.find("No estimates in this file"), std::string::npos);
  EXPECT_NE(html.find("No roofline chart"), std::string::npos);
  EXPECT_EQ(html.find("<svg"), std::string::npos);
  doc["estimates"] = json::array();
  EXPECT_NE(render_html(read_report(doc, "r.json")).find("the \"estimates\" list is empty"), std::string::npos);
}

TEST(Report, ContextFieldsOfUnexpectedTypesStillRender) {
  auto doc = results_doc();
  doc["context"]["infermark"]["topology"]["caches"] = json::array({{{"level", "one"}, {"size_bytes", "big"}}});
  doc["context"]["infermark"]["pinning"]["applied"] = "yes";
  doc["context"]["infermark"]["build"] = 7;
  doc["context"]["load_avg"] = json::array({0.5, 1.5});
  const auto r = read_report(doc, "r.json");
  std::string html;
  ASSERT_NO_THROW(html = render_html(r));
  EXPECT_NE(html.find("Lone  unknown size"), std::string::npos);
  EXPECT_NE(html.find("not applied"), std::string::npos);
  EXPECT_NO_THROW(render_markdown(r));
}

TEST(Report, EstimateWhiskersFollowTheirBasis) {
  estimate_row e;
  e.profile = "x";
  e.relative_per_chip = 2.0;
  e.relative_per_watt = 1.5;
  e.tokens_per_s = 1000;
  e.time_s = 0.01;
  // Throughput percentiles.
  e.p10 = 800.0;
  e.p90 = 1300.0;
  derive_ranges(e);
  EXPECT_EQ(e.range_basis, "tokens_per_s");
  EXPECT_NEAR(*e.chip_lo, 1.6, 1e-12);
  EXPECT_NEAR(*e.chip_hi, 2.6, 1e-12);
  EXPECT_NEAR(*e.watt_lo, 1.2, 1e-12);
  EXPECT_NEAR(*e.watt_hi, 1.95, 1e-12);
  // Time percentiles: the longer time is the lower whisker.
  e.p10 = 0.008;
  e.p90 = 0.0125;
  derive_ranges(e);
  EXPECT_EQ(e.range_basis, "time_s");
  EXPECT_NEAR(*e.chip_lo, 1.6, 1e-12);
  EXPECT_NEAR(*e.chip_hi, 2.5, 1e-12);
  // Objects with the relative figures are used as they are.
  e.p10 = json{{"relative_per_chip", 1.7}, {"relative_per_watt", 1.1}};
  e.p90 = json{{"relative_per_chip", 2.4}, {"relative_per_watt", 1.9}};
  derive_ranges(e);
  EXPECT_DOUBLE_EQ(*e.chip_lo, 1.7);
  EXPECT_DOUBLE_EQ(*e.watt_hi, 1.9);
  // Objects with a throughput.
  e.chip_lo = e.chip_hi = e.watt_lo = e.watt_hi = std::nullopt;
  e.p10 = json{{"tokens_per_s", 900.0}};
  e.p90 = json{{"tokens_per_s", 1100.0}};
  derive_ranges(e);
  EXPECT_NEAR(*e.chip_lo, 1.8, 1e-12);
  EXPECT_NEAR(*e.chip_hi, 2.2, 1e-12);
  // Numbers that bracket neither figure: no whisker, and the reason is kept.
  e.chip_lo = e.chip_hi = e.watt_lo = e.watt_hi = std::nullopt;
  e.p10 = 5.0;
  e.p90 = 6.0;
  derive_ranges(e);
  EXPECT_FALSE(e.chip_lo);
  EXPECT_NE(e.range_basis.find("bracket neither"), std::string::npos);
}

// The shape `infermark estimate --format json` prints: the workload as an object, p10/p90 of time_s,
// provenance as a list with a summary, systems, and kinds.
TEST(Report, ReadsTheEstimateCommandsJsonShape) {
  auto doc = results_doc();
  doc["estimates"] = json::array({json::parse(R"JSON({
    "workload": {"name": "deepseek-v3", "model": "DeepSeek-V3 / R1", "phase": "decode", "batch": 128, "context": 4096},
    "reference": "h100-sxm", "mode": "calibrated", "host_fractions": {},
    "systems": [{"chips": 72, "power_kw": 145.0, "profile": "gb200-nvl72", "tokens_per_joule": 0.43, "tokens_per_s": 62360.0}],
    "estimates": [
      {"profile": "h100-sxm", "kind": "chip", "name": "NVIDIA H100 SXM", "dtype": "fp8", "bound": "memory", "time_s": 0.35,
       "p10": 0.25, "p90": 0.5, "tokens_per_s": 365.8, "relative_per_chip": 1.0, "tokens_per_joule": 0.52,
       "relative_per_watt": 1.0, "provenance": ["gemm/compute/fp8: fitted on 2 points", "elementwise: assumed"],
       "provenance_summary": "fitted 1, borrowed 0, assumed 1", "host_fraction": 0.42},
      {"profile": "gb200-nvl72", "kind": "system", "dtype": "fp8", "bound": "memory", "time_s": 0.14, "p10": 0.1, "p90": 0.28,
       "tokens_per_s": 866.1, "relative_per_chip": 2.5, "tokens_per_joule": 0.43, "relative_per_watt": null,
       "provenance": [], "provenance_summary": "fitted 3, borrowed 2, assumed 0", "host_fraction": null},
      {"profile": "b30a", "kind": "chip", "error": "b30a: memory.bandwidth is unknown (Not reported.)", "time_s": null}]})JSON")});
  const auto r = read_report(doc, "r.json");
  ASSERT_EQ(r.estimates.size(), 1u);
  const auto& set = r.estimates[0];
  EXPECT_EQ(set.workload, "deepseek-v3");
  EXPECT_EQ(set.phase, "decode");
  EXPECT_EQ(set.batch, "128");
  EXPECT_EQ(set.context, "4096");
  EXPECT_EQ(set.mode, "calibrated");
  ASSERT_EQ(set.rows.size(), 3u);
  const auto& h100 = set.rows[0];
  EXPECT_EQ(h100.range_basis, "time_s");
  EXPECT_NEAR(*h100.chip_lo, 0.35 / 0.5, 1e-12);
  EXPECT_NEAR(*h100.chip_hi, 0.35 / 0.25, 1e-12);
  EXPECT_EQ(h100.provenance, "fitted 1, borrowed 0, assumed 1");
  EXPECT_EQ(h100.provenance_detail, "gemm/compute/fp8: fitted on 2 points; elementwise: assumed");
  EXPECT_FALSE(set.rows[1].relative_per_watt);
  EXPECT_TRUE(set.rows[2].error);
  ASSERT_EQ(set.systems.size(), 1u);
  EXPECT_DOUBLE_EQ(*set.systems[0].chips, 72);

  const std::string html = render_html(r), md = render_markdown(r);
  EXPECT_NE(html.find("deepseek-v3 decode, batch 128, context 4096"), std::string::npos);
  EXPECT_NE(html.find("model: DeepSeek-V3 / R1; mode: calibrated"), std::string::npos);
  EXPECT_NE(html.find("gb200-nvl72 (system)"), std::string::npos);
  EXPECT_NE(html.find("n/a (no power figure)"), std::string::npos);
  EXPECT_NE(html.find("<th>host fraction</th>"), std::string::npos);
  EXPECT_NE(html.find("<b>b30a</b>: b30a: memory.bandwidth is unknown"), std::string::npos);
  EXPECT_NE(md.find("| **h100-sxm** | fp8 | 350.000 ms | 366 | 1.00 | 0.520 | 1.00 | memory | 0.70\u20131.40 | 0.42 | fitted 1, borrowed 0, assumed 1 |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| gb200-nvl72 | 72 | 145 | 62360 | 0.430 |"), std::string::npos) << md;
  EXPECT_EQ(html.find("NaN"), std::string::npos);
}

void expect_refused(const json& doc, const std::string& needle) {
  try {
    read_report(doc, "bad.json");
    ADD_FAILURE() << "accepted a file that should fail with '" << needle << "'";
  } catch (const std::runtime_error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("'bad.json'"), std::string::npos) << m;
    EXPECT_NE(m.find(needle), std::string::npos) << m;
  }
}

TEST(Report, RefusesWhatIsNotAResultsFile) {
  expect_refused(json::array(), "not a JSON object");
  expect_refused(json{{"context", json::object()}}, "no \"benchmarks\" list");
  expect_refused(json{{"benchmarks", json::array()}}, "no \"context\" object");
  expect_refused(json{{"benchmarks", json::array()}, {"context", {{"date", "x"}}}}, "no context.infermark");
  auto doc = results_doc();
  doc["context"]["infermark"]["tier"] = "callgrind";
  expect_refused(doc, "callgrind instruction counts");
  doc = results_doc();
  doc["benchmarks"][0]["time_unit"] = "fortnights";
  expect_refused(doc, "unknown time_unit 'fortnights'; valid choices: ns, us, ms, s");
  doc = results_doc();
  doc["benchmarks"][1]["real_time"] = "fast";
  expect_refused(doc, "'real_time' is not a number");
  doc = results_doc();
  doc["benchmarks"][0].erase("real_time");
  expect_refused(doc, "has no real_time");
  doc = results_doc();
  doc["benchmarks"][0].erase("name");
  doc["benchmarks"][0].erase("run_name");
  expect_refused(doc, "benchmarks[0] has no \"name\"");
  doc = results_doc();
  doc["context"]["infermark"]["probe"]["bandwidth_gbs"]["read"] = -1;
  expect_refused(doc, "context.infermark.probe");
  doc = results_doc();
  doc["estimates"] = 3;
  expect_refused(doc, "\"estimates\" is neither a list nor an object");
  doc["estimates"] = json::array({{{"workload", "w"}}});
  expect_refused(doc, "estimates[0] ('w') has no \"estimates\" list");
  doc["estimates"] = json::array({{{"workload", "w"}, {"estimates", {{{"dtype", "fp8"}}}}}});
  expect_refused(doc, "estimates[0].estimates[0] has no \"profile\" string");
  doc["estimates"] = json::array({{{"workload", "w"}, {"estimates", {{{"profile", "p"}, {"time_s", "soon"}}}}}});
  expect_refused(doc, "'time_s' is not a number");
}

TEST(Report, FilesAndFormats) {
  EXPECT_EQ(format_for_path("out/report.html"), report_format::html);
  EXPECT_EQ(format_for_path("report.md"), report_format::markdown);
  try {
    format_for_path("report.pdf");
    ADD_FAILURE() << "accepted .pdf";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'.pdf'; valid extensions: .html, .md"), std::string::npos) << e.what();
  }
  EXPECT_THROW(format_for_path("report"), std::invalid_argument);

  const auto dir = std::filesystem::temp_directory_path() / ("infermark-report-test-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  try {
    read_report_file(dir / "missing.json");
    ADD_FAILURE() << "read a missing file";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("missing.json"), std::string::npos);
  }
  std::ofstream(dir / "garbage.json") << "{ not json";
  try {
    read_report_file(dir / "garbage.json");
    ADD_FAILURE() << "read a file that is not JSON";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("garbage.json' is not valid JSON"), std::string::npos) << e.what();
  }
  std::ofstream(dir / "r.json") << results_doc().dump();
  EXPECT_EQ(read_report_file(dir / "r.json").kernels.size(), 3u);

  // Atomic writes: the content lands, is replaced whole, and no temporary file is left.
  write_text_atomically(dir / "out.md", "first\n");
  write_text_atomically(dir / "out.md", "second\n");
  std::ifstream in(dir / "out.md");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "second\n");
  std::size_t files = 0;
  for ([[maybe_unused]] const auto& f : std::filesystem::directory_iterator(dir)) ++files;
  EXPECT_EQ(files, 3u);  // garbage.json, r.json, out.md: no temporary file left
  EXPECT_THROW(write_text_atomically(dir / "no-such-dir" / "x.html", "x"), std::runtime_error);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace infermark::report
