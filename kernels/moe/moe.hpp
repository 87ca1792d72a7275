// Mixture-of-experts layer: router (gate GEMM + scoring) -> dispatch (tokens permuted into expert order)
// -> experts (grouped GEMM: gate and up fused with SwiGLU, then down) -> combine (weighted sum back to
// token order, shared experts added).
//
//   logits[t][e] = x[t] . router_w[e]     fp32 logits; inputs fp32 in fp32 layers, rounded to bf16 in
//                                          bf16 / int8 / fp8 layers (moe_router_dtype), as DeepSeek-V3's
//                                          and Qwen3's inference code run the gate in the model's bf16
//   ids/weights  = scoring rule applied to logits[t]                   (moe_score)
//   dst[t]       = sum_j weights[t][j] * ffn_{ids[t][j]}(x[t])  (only experts of the local shard)
//                  + ffn_shared(x[t])                                  (when shared_inter > 0)
//   ffn(x)       = down . act(gate . x, up . x)                        (act: SwiGLU or the gpt-oss form)
//
// Expert weights are stored in the GEMM formats of kernels/gemm/gemm.hpp (fp32, bf16, int8 W8A8 with
// per-channel scales, fp8 e4m3 with 128x128 block scales). Activations entering each expert GEMM are
// quantized the way that format's GEMM expects (bf16: rounded; int8: one scale per row = amax/127;
// fp8: one scale per row and 128-column block = amax/448), by moe_quantize_row, in the optimized
// implementations and in the reference alike.
//
// Execution is a sequence of steps; the harness runs each step on all workers and waits (a barrier)
// before the next: for (step : impl.steps) parallel(step.execute(desc, args, ithr, nthr)). Every step is
// pure (no threads, no I/O, no allocation in this code; the GEMM it calls may allocate its packing
// buffer) and workers write disjoint memory. Results are bit-identical for every thread count: the
// work decomposition depends only on the problem, never on nthr.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/common/dtype.hpp"
#include "kernels/common/work.hpp"
#include "kernels/gemm/gemm.hpp"

namespace infermark {

// How router logits become (expert ids, weights); slots are ordered best first, ties broken by the
// lower expert index.
enum class moe_scoring {
  softmax_topk_renorm,  // Qwen3: softmax over all experts, top-k, weights renormalised to sum 1
  topk_softmax,         // Mixtral, gpt-oss: top-k over logits, softmax over the k selected logits
  sigmoid_group_topk,   // DeepSeek-V3: sigmoid, + correction bias for selection, group-limited top-k,
                        // weights = unbiased scores renormalised, times routed_scale
  softmax_topk,         // DeepSeek-V2-Lite: softmax over all experts, greedy top-k, no renormalisation
};

// Expert activation between the (gate, up) and down projections.
enum class moe_activation {
  swiglu,      // silu(gate) * up
  swiglu_oai,  // gpt-oss: g = min(gate, 7), u = clamp(up, -7, 7), g * sigmoid(1.702 g) * (u + 1)
};

// Routing distributions for benchmarks; `model` keeps the router's own choice.
enum class moe_route { model, uniform, balanced, zipf };

std::string_view to_string(moe_scoring s);
std::string_view to_string(moe_activation a);
std::string_view to_string(moe_route r);
// Each throws std::invalid_argument naming the bad value and the valid choices.
moe_scoring parse_moe_scoring(std::string_view name);
moe_activation parse_moe_activation(std::string_view name);
moe_route parse_moe_route(std::string_view name);

struct moe_desc {
  std::int64_t tokens = 0;        // rows of x and dst
  std::int64_t experts = 0;       // routed experts in the full layer (E)
  std::int64_t top_k = 0;         // experts per token
  std::int64_t hidden = 0;        // model width (columns of x and dst)
  std::int64_t inter = 0;         // intermediate width of one routed expert
  std::int64_t shared_inter = 0;  // intermediate width of the shared expert(s) merged into one; 0: none
  std::int64_t n_group = 1;       // expert groups (sigmoid_group_topk); must divide experts
  std::int64_t topk_group = 1;    // groups kept per token (sigmoid_group_topk)
  std::int64_t local_first = 0;   // first expert of the local shard (expert parallelism)
  std::int64_t local_count = 0;   // experts in the local shard; 0 means all `experts`
  moe_scoring scoring = moe_scoring::softmax_topk_renorm;
  moe_activation act = moe_activation::swiglu;
  float routed_scale = 1.0f;      // multiplies the routed weights of sigmoid_group_topk (V3: 2.5)
  dtype dt = dtype::fp32;         // expert weight format (router and combine are fp32 in every format)

  std::int64_t local() const { return local_count > 0 ? local_count : experts; }
};

// Throws std::invalid_argument naming the bad value and the valid range or choices: non-positive sizes,
// top_k > experts, n_group not dividing experts, topk_group > n_group, too few experts in the kept groups,
// a shard outside [0, experts).
void moe_validate(const moe_desc& d);

// Logical router weights (fp32).
struct moe_router_weights {
  const float* gate = nullptr;  // [experts][hidden]
  const float* bias = nullptr;  // [experts] e_score_correction_bias; required by sigmoid_group_topk only
};

// Logical weights of one expert in the format `dt` (element types and scale layouts of gemm.hpp):
// gate and up [inter][hidden], down [hidden][inter] (inter = shared_inter for the shared expert).
struct moe_expert_weights {
  const void* gate = nullptr;
  const void* up = nullptr;
  const void* down = nullptr;
  const float* gate_scale = nullptr;  // int8: [inter]; fp8: [ceil(inter/128)][ceil(hidden/128)]
  const float* up_scale = nullptr;    // same layout as gate_scale
  const float* down_scale = nullptr;  // int8: [hidden]; fp8: [ceil(hidden/128)][ceil(inter/128)]
};

// Index of the shared expert in pack_expert (routed experts are 0 .. local()-1, shard-relative).
inline constexpr std::int64_t moe_shared_expert = -1;

struct moe_args {
  const float* src = nullptr;         // x [tokens][hidden]
  const void* packed = nullptr;       // packed_bytes(desc) bytes filled by pack_router + pack_expert
  // Optional routing override [tokens][top_k] (moe_synthetic_routing): when set, dispatch and combine use
  // it instead of the router's choice; the router still runs (its cost is part of the layer). Expert ids
  // of one token must be distinct.
  const std::int32_t* forced_ids = nullptr;
  const float* forced_weights = nullptr;
  std::int32_t* topk_ids = nullptr;   // out [tokens][top_k]: the router's choice (full-layer expert ids)
  float* topk_weights = nullptr;      // out [tokens][top_k]
  std::int32_t* expert_counts = nullptr;  // out [experts]: routed (token, expert) pairs per expert, all E
  float* dst = nullptr;               // out [tokens][hidden]
  void* scratch = nullptr;            // scratch_bytes(desc, nthr) bytes, any content, 64-byte aligned
};

struct moe_step {
  std::string_view name;  // the work-model phase it performs, e.g. "router", "experts.down"
  void (*execute)(const moe_desc& d, const moe_args& a, int ithr, int nthr);
};

struct moe_impl {
  std::string name;  // "grouped:<gemm impl>" (e.g. "grouped:avx512:fp32") or "ref:any"
  // std::nullopt when this implementation can run `d` on this CPU under the current ISA cap; else why not.
  std::function<std::optional<std::string>(const moe_desc& d)> check;
  std::function<std::size_t(const moe_desc& d)> packed_bytes;
  // Scratch for a run with up to `nthr` workers.
  std::function<std::size_t(const moe_desc& d, int nthr)> scratch_bytes;
  // Packing (outside timing). pack_router once, pack_expert once per local expert (0 .. local()-1) and
  // for moe_shared_expert when shared_inter > 0, in any order: weights can be streamed one expert at a time.
  std::function<void(const moe_desc& d, const moe_router_weights& w, void* packed)> pack_router;
  std::function<void(const moe_desc& d, std::int64_t expert, const moe_expert_weights& w, void* packed)>
      pack_expert;
  std::vector<moe_step> steps;  // run in order, a barrier between consecutive steps
};

// Implementations in preference order (one "grouped" per GEMM implementation), the reference last.
std::span<const moe_impl> moe_impls();
// The reference (test oracle): per token, fp64 dot products, the same scoring and quantization rules.
const moe_impl& moe_reference();
// The first implementation accepting `d` (validates first); throws std::invalid_argument with every refusal.
const moe_impl& moe_select(const moe_desc& d);
// Throws std::invalid_argument listing the valid names.
const moe_impl& moe_find(std::string_view name);

// Runs all steps of `impl` as workers 0..nthr-1 one after another on the calling thread (tests, tools).
void moe_run_sequential(const moe_impl& impl, const moe_desc& d, const moe_args& a, int nthr);

// The scoring rule of `d` for one token: logits [experts] (and bias [experts] for sigmoid_group_topk)
// -> ids [top_k], weights [top_k]. work: moe_score_work(d) floats of scratch. Pure fp32; shared by every
// implementation. NaN logits are never selected (ids -1 when fewer than top_k experts qualify).
std::int64_t moe_score_work(const moe_desc& d);

// The format of the router GEMM's inputs (activations and gate weights; products exact, fp32 logits):
// fp32 for fp32 layers, bf16 for every other format.
dtype moe_router_dtype(const moe_desc& d);
void moe_score(const moe_desc& d, const float* logits, const float* bias, float* work, std::int32_t* ids,
               float* weights);

// Synthetic routing (fixed seed, independent of everything but desc, route and seed); `model` is not a
// synthetic route (throws). uniform: k distinct experts uniformly at random; balanced: token t, slot j ->
// expert (t*k + j) mod E, every expert gets t*k/E pairs (+-1); zipf: k distinct experts drawn without
// replacement with P(e) ~ 1/(e+1) (expert 0 the most popular). Weights: random in [0.5, 1.5) normalised
// to sum 1 (times routed_scale for sigmoid_group_topk).
void moe_synthetic_routing(const moe_desc& d, moe_route route, std::uint64_t seed, std::int32_t* ids,
                           float* weights);

// Activation quantization into the GEMM source format of `dt` (fp32: copy; bf16: round to nearest even;
// int8: scale[0] = amax/127, q = clamp(round(x * (1 / scale)), -127, 127); fp8: per 128-column block b,
// scale[b] = amax_b/448, q = e4m3(x * (1 / scale)); an all-zero row or block gets scale 1 (the reciprocal
// is taken once per row / block, as serving code does: no division per value).
// Writes n elements of dtype_size(dt) bytes to q and moe_row_scales(dt, n) floats to scale.
void moe_quantize_row(dtype dt, const float* x, std::int64_t n, void* q, float* scale);
std::int64_t moe_row_scales(dtype dt, std::int64_t n);

// Exact work of one run given the routing outcome (counts [experts], as written to expert_counts):
// FLOPs are the multiply-adds of the GEMMs and of the weighted combine (2 per multiply-add); the
// softmax/sigmoid/SiLU evaluations are not counted. Bytes: each tensor a phase reads or writes, once;
// expert weights only for experts with at least one routed token. Phases: router, dispatch,
// experts.gate_up, experts.down, combine, shared (only when shared_inter > 0). With full_layer the
// routed phases cover all `experts`, as if the whole layer ran here; otherwise only the local shard.
work_model moe_work(const moe_desc& d, std::span<const std::int32_t> counts, bool full_layer = false);

}  // namespace infermark
