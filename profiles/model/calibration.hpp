// Calibration: published kernel-level measurements (profiles/calibration/*.toml) and the efficiency
// factors fitted from them, per target x kernel class x dtype x bound, with provenance and range.
#pragma once
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "profiles/model/profile.hpp"

namespace infermark {

enum class kernel_class { gemm, grouped_gemm, attention_decode, attention_prefill, mla_decode, elementwise, all_to_all };
std::string_view to_string(kernel_class k);
kernel_class parse_kernel_class(std::string_view name);  // throws std::invalid_argument listing choices

// Which peak a measurement is a fraction of: compute (peak.<dtype>), memory (memory.bandwidth),
// scale_up (scale_up.bandwidth), scale_out (scale_out.bandwidth).
enum class bound_kind { compute, memory, scale_up, scale_out };
std::string_view to_string(bound_kind b);
bound_kind parse_bound(std::string_view name);

struct calibration_point {
  std::string id;             // unique across all files
  std::string target;         // profile slug
  kernel_class kernel = kernel_class::gemm;
  std::string dtype;          // one of peak_dtypes
  bound_kind bound = bound_kind::compute;
  double value = 0;           // > 0, in unit
  std::string unit;           // TFLOPS | TOPS (compute), TB/s | GB/s (memory, links), percent (any)
  nlohmann::json shape;       // named dimensions (integers) or descriptions (strings)
  std::string source;
  confidence grade = confidence::paper;
  std::string notes;
  std::string origin;         // "file:line"
  // Work model, when the shape states integer m, n, k (optionally `groups`): FLOPs 2 x groups x m x n x k,
  // bytes groups x (m k + n k) in the point's dtype + groups x m x n x 2 (the sources' GEMMs write BF16).
  // 0 when the shape does not determine the work (sweeps, ranges, STREAM, collectives).
  double flops = 0, bytes = 0;
  // all_to_all: "low-latency" (decode kernels, ~128 tokens per rank) or "normal" (prefill/throughput
  // kernels), from the first word of shape.mode; empty when the shape does not say.
  std::string mode;
};

// Fixed cost of one kernel invocation (launch, ramp-up and tail) per vendor family, with its source:
// profiles/calibration/overhead.toml ([[overhead]] tables: vendor, value, unit "us", source, confidence,
// optional notes).
struct op_overhead {
  std::string vendor;
  double seconds = 0;
  std::string source;
  confidence grade = confidence::paper;
  std::string notes;
  std::string origin;
};
// Loads every [[overhead]] table of dir/*.toml (same strictness as load_calibration: file, line, key).
std::vector<op_overhead> load_overheads(const std::filesystem::path& dir);

// The overhead used for one target: its vendor's figure, or (no figure for that vendor) the median of the
// other vendors' figures, marked "assumed"; 0 with "none" when no figures were loaded.
struct overhead_choice {
  double seconds = 0;
  bool sourced = false;       // the target's own vendor has a figure
  std::string describe() const;  // "3.7 us (NVIDIA: <source>; third-party)" / "3.7 us assumed (...)"
  std::string vendor, source, grade;
};

// Loads every dir/*.toml ([[point]] tables; [[overhead]] tables are read by load_overheads). Strict like the profile loader: profile_error with file,
// line and key on unknown keys, missing fields, bad units for the bound, values <= 0, duplicate ids.
std::vector<calibration_point> load_calibration(const std::filesystem::path& dir);
// Throws profile_error for a point whose target is not in `db` or lacks the figure its bound needs.
void check_targets(const std::vector<calibration_point>& points, const profile_db& db);

// Achieved fraction of the target's own peak for the point's bound (e.g. 1358 TFLOPS / 1979 = 0.686).
// Throws not_estimable when the target lacks that peak.
double achieved_fraction(const calibration_point& p, const profile& target);

enum class provenance_kind { fitted, borrowed, assumed };

struct efficiency_factor {
  double eta = 0;             // P50: median achieved fraction
  double p10 = 0, p90 = 0;    // uncertainty range (see README: spread of the points, widened by provenance)
  provenance_kind provenance = provenance_kind::assumed;
  int n_points = 0;           // points the value rests on
  std::string from;           // fitted: the target; borrowed: "<vendor> family (slugs)" or "cross-vendor (slugs)"; assumed: the basis
  std::vector<std::string> point_ids;
  std::string shape_note;     // shape-aware fit used (all_to_all: the ln(ep) line), else empty
  std::string describe() const;  // "fitted on 3 points", "borrowed from NVIDIA family (h800; 2 points)", "assumed (...)"
  nlohmann::json to_json() const;
};

// Per-point leave-one-out result: the point is removed, the factor for its key refitted (possibly
// borrowed), and the prediction compared with the measured fraction.
struct loo_result {
  std::string id;
  double measured = 0;        // achieved fraction
  double predicted = 0;
  double rel_error = 0;       // (predicted - measured) / measured
  std::string provenance;     // of the refitted factor
  std::string fit_bound;      // the bound the point was fitted in (the roofline's binding bound for points
                              // with a work model; else its stated bound)
};

// Shape-aware fitting (see profiles/README.md): a point with a work model is a measured time T. It is fitted
// in the bound the roofline says binds it at the target's peaks (a "compute" GEMM whose bytes take longer
// than its FLOPs at peak is a memory point), and its fraction is taken net of the vendor's per-op overhead
// t0: eta = work / (peak x (T - t0)). Its leave-one-out prediction is the estimator's own formula,
// T = max(FLOPs / (peak x eta_c), bytes / (bandwidth x eta_m)) + t0, with both etas refitted without it.
class efficiency_model {
 public:
  // Without overheads t0 = 0 (and the estimator's provenance says "none").
  efficiency_model(const profile_db& db, std::vector<calibration_point> points, std::vector<op_overhead> overheads = {});

  // Factor for target x kernel x dtype x bound: fitted from the target's own points; else borrowed
  // from the same vendor's chips (same dtype, then any dtype); else from all vendors (same class and
  // bound); else assumed (Huawei msmodeling's uncalibrated defaults: compute 0.7, memory 0.6, links 0.7).
  efficiency_factor factor(std::string_view target, kernel_class kernel, std::string_view dtype, bound_kind bound) const;
  // Shape-aware variant for all_to_all: `group` is the collective's size (EP degree). When the selected
  // points carry an integer `ep` in their shape with at least two distinct values, the factor is the
  // least-squares line fraction = a + b ln(ep) at `group`, clamped to the points' range, instead of their
  // median (dispatch/combine efficiency falls with the EP size); otherwise as factor().
  efficiency_factor factor(std::string_view target, kernel_class kernel, std::string_view dtype, bound_kind bound,
                           std::optional<double> group) const;
  // all_to_all with the kernel regime: `mode` "low-latency" (decode) or "normal" (prefill). The target's
  // own points of that mode are used first (same dtype, then any dtype); without any, the usual chain over
  // all modes, and the provenance says so.
  efficiency_factor factor(std::string_view target, kernel_class kernel, std::string_view dtype, bound_kind bound,
                           std::optional<double> group, const std::string& mode) const;
  overhead_choice overhead(std::string_view target) const;

  std::vector<loo_result> leave_one_out() const;
  // The factors every (target, kernel, dtype, bound) with calibration data fits to, with provenance.
  nlohmann::json fitted_json() const;
  const std::vector<calibration_point>& points() const { return points_; }
  const std::vector<op_overhead>& overheads() const { return overheads_; }

 private:
  struct entry {
    const calibration_point* point;
    double fraction;          // in `bound`, net of the overhead for points with a work model
    std::string vendor;
    bound_kind bound;         // the bound it is fitted in
  };
  efficiency_factor factor_excluding(std::string_view target, kernel_class kernel, std::string_view dtype,
                                     bound_kind bound, const calibration_point* excluded,
                                     std::optional<double> group = std::nullopt, const std::string& mode = {}) const;
  const profile_db& db_;
  std::vector<calibration_point> points_;
  std::vector<op_overhead> overheads_;
  std::vector<entry> entries_;
};

double median_abs(const std::vector<loo_result>& r);  // median |rel_error|

// What `infermark calibrate` writes: {"method", "points", "factors": fitted_json(), "leave_one_out": [{id,
// target, kernel, dtype, bound, measured, predicted, rel_error, provenance}], "median_abs_loo_error"}.
nlohmann::json calibration_json(const efficiency_model& m);

}  // namespace infermark
