// `infermark report`: a results file (Google Benchmark JSON with context.infermark, see results/README.md)
// turned into a self-contained HTML page (inline CSS and SVG, no network requests) or Markdown: the host
// roofline chart, the kernel results, estimate bar charts and tables, and the machine context.
//
// Flow: read_report() validates the JSON and gathers a report_data (no rendering decisions), then
// render_html() / render_markdown() print it. Both renderers are pure functions of report_data.
#pragma once
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/probe/probe.hpp"

namespace infermark::report {

// One timed (or correctness-only) case: the entries of one Google Benchmark run_name folded together.
struct kernel_result {
  int index = 0;                          // 1-based; the marker number on the roofline chart
  std::string name;                       // run_name: <descriptor>/<impl>/<backend>/<threads>
  std::string descriptor, impl, backend;  // backend is "library" for peers with their own threads
  int threads = 0;                        // backend_threads
  bool timed = false;                     // false: correctness-mode entry, no timing
  int repetitions = 0;                    // iteration entries found (0 when only aggregates are stored)
  std::optional<double> median_s;         // seconds per iteration, median over the repetitions
  std::optional<double> flops_per_s;      // achieved FLOP/s (OP/s for int8) at the median time
  std::optional<double> bytes_per_s;      // achieved bytes/s at the median time
  std::optional<double> intensity;        // FLOP per byte of the work model
  std::optional<double> roofline_fraction;  // achieved / min(peak(dtype, threads), intensity x DRAM read)
  std::optional<double> dram_read_gbs_alongside;  // memory-bound case: DRAM read measured beside it; then
                                                  // roofline_fraction = bytes/s over this bandwidth
  std::string peak_dtype;                 // dtype whose peak bounds it: fp32 | bf16 | int8 | fp8
  bool verified = false;
  std::string verification;               // the verifier's detail
  std::string repro;                      // command that reproduces it
};

struct failure_row {
  std::string descriptor, impl, kind, message, repro;  // kind: verification | refused | error
};

// One target of an estimate, as `infermark estimate --format json` prints it.
struct estimate_row {
  std::string profile;
  std::optional<std::string> error;  // set: not estimable, for this reason; the fields below are empty
  std::string kind;                  // chip | system | host ("" when not given)
  std::string name;                  // the profile's full name, when given
  std::string dtype, bound;
  std::string provenance;            // provenance_summary when given, else the provenance text
  std::string provenance_detail;     // the full provenance text (a list is joined with "; ")
  std::optional<double> host_fraction;  // the host's achieved fraction of its roofline, when measured
  std::optional<double> time_s, tokens_per_s, relative_per_chip, tokens_per_joule, relative_per_watt;
  nlohmann::json p10, p90;           // as written (null when absent): numbers, or objects (see derive_ranges)
  // P10-P90 whiskers of the relative figures, derived by derive_ranges(); empty when not derivable.
  std::optional<double> chip_lo, chip_hi, watt_lo, watt_hi;
  std::string range_basis;           // how p10/p90 were read ("tokens_per_s", "time_s", ...) or why not
};

struct system_row {
  std::string profile;
  std::optional<double> chips, power_kw, tokens_per_s, tokens_per_joule;
};

struct estimate_set {
  // workload may be a name or an object {name, model, phase, batch, context, ...}; top-level phase, batch
  // and context override the object's.
  std::string workload, model, reference, phase, mode;
  std::string batch, context;        // as written (numbers printed), "" when absent
  std::vector<estimate_row> rows;
  std::vector<system_row> systems;   // the "systems" list, when given
};

struct report_data {
  std::string source;                       // the file as named on the command line
  nlohmann::json context;                   // the results file's whole context
  std::optional<probe_result> probe;        // context.infermark.probe, when the run had one
  int run_threads = 0;                      // context.infermark.threads
  std::vector<kernel_result> kernels;       // in file order
  std::vector<failure_row> failures;
  bool has_estimates = false;               // the top-level "estimates" key exists
  std::vector<estimate_set> estimates;
  std::vector<std::string> notes;           // what was skipped and why
};

// Validates and gathers. Throws std::runtime_error starting with `source` and naming the problem: not a
// JSON object, no "benchmarks" array, no context.infermark (not written by 'infermark run'), callgrind
// counts instead of timings, an entry without name or time, an unknown time unit, a malformed probe or
// "estimates" value.
report_data read_report(const nlohmann::json& doc, const std::string& source);
// Reads the file first (missing, unreadable, not JSON: std::runtime_error naming it).
report_data read_report_file(const std::filesystem::path& path);

// p10/p90 of an estimate row, read as: objects holding relative_per_chip / relative_per_watt (used as
// they are) or tokens_per_s / time_s; or numbers bracketing tokens_per_s (throughput percentiles) or,
// failing that, time_s (time percentiles: the faster time is the upper whisker). The relative whiskers
// scale the row's relative figures by the same ratio (the power per chip is fixed, so per-watt moves with
// per-chip); the reference's own uncertainty is not compounded. Sets range_basis either way.
void derive_ranges(estimate_row& row);

enum class report_format { html, markdown };
// From the output file's extension: .html or .md; anything else throws std::invalid_argument naming the
// extension and the valid ones.
report_format format_for_path(const std::filesystem::path& path);

std::string render_html(const report_data& r);
std::string render_markdown(const report_data& r);

// Scaling used by the roofline chart: the chart itself (SVG) or "" when there is no probe or nothing to
// place. Exposed for tests.
std::string roofline_chart(const report_data& r);

}  // namespace infermark::report
