// The estimator: a workload plan (profiles/model/workload.hpp) timed on each target profile.
//
// Time of one invocation = max(FLOPs / (peak(dtype) x eta_compute), bytes / (bandwidth x eta_memory))
// + a per-op fixed overhead; collectives take link_bytes / (link bandwidth x eta_link). Calibrated mode
// takes the etas from efficiency_model (per target x kernel class x dtype x bound, with provenance and a
// P10-P90 range); portable mode divides the target's roofline time by the host's achieved fraction of its
// own roofline for the kernel class ("if this same portable code ran there"). See profiles/README.md.
#pragma once
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "profiles/model/calibration.hpp"
#include "profiles/model/profile.hpp"
#include "profiles/model/workload.hpp"

namespace infermark {

enum class estimate_mode { calibrated, portable };
std::string_view to_string(estimate_mode m);
estimate_mode parse_estimate_mode(std::string_view name);  // throws listing calibrated, portable

// One measured host case: its descriptor, kernel class and achieved fraction of the host roofline
// (achieved FLOP/s over min(peak, intensity x read bandwidth)).
struct host_case {
  std::string descriptor;
  kernel_class kclass = kernel_class::gemm;
  double fraction = 0;
};
// Per kernel class: median fraction of its cases, the range they span, and which cases they are.
struct host_class_fraction {
  double fraction = 0, lo = 0, hi = 0;
  std::vector<std::string> cases;
};
using host_fractions = std::map<kernel_class, host_class_fraction>;
// Throws std::invalid_argument for a fraction that is not in (0, 1.5] (a roofline fraction above 1.5 means a
// broken work model or probe, not a fast kernel).
host_fractions aggregate_host_fractions(const std::vector<host_case>& cases);

struct estimate_options {
  workload_request request;
  std::string reference = "h100-sxm";
  estimate_mode mode = estimate_mode::calibrated;
  std::optional<std::string> dtype;  // forces the GEMM format (fp32 | bf16 | fp16 | int8 | fp8)
  host_fractions host;               // required by portable mode; shown beside estimates when present
  std::string host_source;           // where the host fractions come from (results file)
  // Per-op fixed overhead: by default the target vendor's figure from efficiency_model::overhead()
  // (profiles/calibration/overhead.toml); a value here overrides it for every target.
  std::optional<double> op_overhead_s;
  // The request's parallel config was not given (tp 1, ep 1, attn-dp 1 by default): a system target whose
  // weights + KV do not fit per chip then runs at the smallest expert-parallel (MoE) or tensor-parallel
  // (dense) degree that fits within its chips, and says so. Otherwise a system that does not fit is an error.
  bool fit_systems = false;
};

// Weights + KV cache per chip (GB) of a request in the given formats.
double memory_per_chip_gb(const workload_request& r, const dtype_choice& dt);
// The smallest config over at most `max_chips` chips (powers of two) whose weights + KV fit `capacity_gb`
// per chip: MoE models expert-parallel over every chip, attention data-parallel as far as the batch
// divides and tensor-parallel for the rest; dense models tensor-parallel. nullopt when none fits.
std::optional<parallel_config> smallest_fitting_config(workload_request r, const dtype_choice& dt, double capacity_gb,
                                                       int max_chips);
// The command-line flags of a config: "--ep 8", "--tp 2 --ep 8 --attn-dp 4", "--tp 4".
std::string parallel_flags(const parallel_config& c);

// The target's best native GEMM format (fp8 where the chip has an FP8 figure: Hopper, Blackwell; int8
// W8A8 on Ascend, which has no FP8 unit; bf16 otherwise) unless `forced`; aux (attention, norms, KV) is
// bf16, or fp32 on a host without bf16. Throws std::invalid_argument for a forced name outside fp32, bf16,
// fp16, int8, fp8.
dtype_choice choose_dtypes(const profile& chip, const std::optional<std::string>& forced);

struct op_time {
  std::string name;
  kernel_class kclass = kernel_class::gemm;
  std::string dtype;
  double flops = 0, bytes = 0, link_bytes = 0;
  double t50 = 0, t10 = 0, t90 = 0;  // seconds per invocation (t10 fast end, t90 slow end)
  std::string bound;                 // compute | memory | scale_up | scale_out
  std::string provenance;
};

struct group_time {
  std::string kind;
  std::int64_t count = 0;
  double t50 = 0, t10 = 0, t90 = 0;  // seconds per layer of this kind
  std::vector<op_time> ops;
};

struct target_estimate {
  std::string profile;
  std::string kind;                  // chip | system | host
  std::string name;
  std::optional<std::string> error;  // "not estimable: <field> is unknown (...)" (the chip's slug is named when a
                                     // system's chip lacks it), or a system that does not fit at a given config
  std::optional<std::string> warning;  // "does not fit: needs X GB per chip, has Y GB (smallest that fits: ...)"
  std::string parallel;              // the config estimated, "tp 1 ep 1 attn-dp 1"
  std::string parallel_note;         // why it differs from the request (systems that did not fit)
  std::string dtype, aux_dtype;
  double step_s = 0, p10_s = 0, p90_s = 0;   // one model step on one chip (P50, fast, slow)
  double layer_s = 0;                        // one layer of the most common kind
  std::string layer_kind;
  double tokens_per_s = 0, tokens_per_s_p10 = 0, tokens_per_s_p90 = 0;  // per chip (p10 = slow end)
  double relative_per_chip = 0;
  std::optional<double> power_w;             // per chip: TDP, or a system's all-in power / count
  std::string power_basis;                   // which figure, or why none
  std::optional<double> tokens_per_joule, relative_per_watt;
  std::string bound;                         // the bound holding most of the step time
  std::map<std::string, double> bound_share; // fraction of step time per bound
  std::vector<std::string> provenance;       // each factor used: "<class>/<bound>/<dtype>: <describe()>", and
                                             // "per-op overhead: <overhead_choice::describe()>"
  std::string provenance_summary;            // e.g. "fitted 4, borrowed 6, assumed 1"
  std::string link;                          // scale_up | scale_out | none
  double memory_gb = 0;                      // resident weights + KV cache per chip
  std::optional<double> capacity_gb;
  int system_count = 0;                      // systems: chips per system
  std::optional<double> system_power_kw;
  std::optional<double> host_fraction;       // the host's achieved fraction over this workload's classes
  std::vector<group_time> groups;
  nlohmann::json to_json() const;
};

struct estimate_report {
  nlohmann::json workload;                   // the request and the plan summary of the reference
  std::string reference;
  estimate_mode mode = estimate_mode::calibrated;
  std::vector<target_estimate> estimates;
  host_fractions host;
  std::string host_source;
  nlohmann::json to_json() const;
};

// One target. Never throws not_estimable: a missing figure becomes `error`.
target_estimate estimate_target(const profile_db& db, const efficiency_model& model, const profile& target,
                                const estimate_options& opt);
// Every slug in `targets` plus relative figures against opt.reference. Throws std::invalid_argument for an
// unknown slug (listing the valid ones), an invalid request, portable mode without host fractions, or a
// reference that is not estimable (naming the missing field).
estimate_report estimate(const profile_db& db, const efficiency_model& model, const std::vector<std::string>& targets,
                         const estimate_options& opt);

// Energy cost of one million tokens at `price_per_kwh`, the bill cut by `subsidy` (a fraction in [0, 1)).
// Throws std::invalid_argument for a price <= 0 or a subsidy outside [0, 1).
double energy_cost_per_mtok(double tokens_per_joule, double price_per_kwh, double subsidy);

// System view: per system, throughput (per-chip tokens/s x count), all-in power and tokens per joule.
struct system_row {
  std::string profile;
  int chips = 0;
  std::string parallel, parallel_note;
  double tokens_per_s = 0;
  std::optional<double> power_kw;
  std::optional<double> tokens_per_joule;
};
std::vector<system_row> system_view(const estimate_report& r);

}  // namespace infermark
