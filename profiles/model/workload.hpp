// Workloads: whole models (profiles/models/*.toml; every layer as the model has it: dense and MoE layers, MLA / GQA /
// sliding-window attention, norms, shared experts, the LM head) decomposed, for one phase x batch x
// context x parallel configuration x dtype, into the kernel invocations one chip runs per model step.
// FLOPs and bytes come from the kernels' own work models (gemm_work, moe_work, attention_work,
// kv_append_work, rmsnorm_work, rope_work); communication volumes are counted here (no kernel exists).
#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernels/common/dtype.hpp"
#include "kernels/moe/moe.hpp"
#include "profiles/model/calibration.hpp"

namespace infermark {

enum class attention_kind { gqa, mla };

// One model's architecture, from its public config.json (source recorded), plus the parameter counts its
// authors quote (the tests check the decomposition against them).
struct model_config {
  std::string slug;             // command-line name, e.g. "deepseek-v3"
  std::string name;
  std::string source;           // where the shapes come from
  std::int64_t hidden = 0;
  std::int64_t layers = 0;
  std::int64_t dense_layers = 0;  // leading layers with a dense FFN (all layers for a dense model)
  std::int64_t vocab = 0;
  attention_kind attn = attention_kind::gqa;
  std::int64_t heads = 0;       // query heads
  std::int64_t kv_heads = 0;    // GQA KV heads (MLA: 1 latent cache row shared by all heads)
  std::int64_t head_dim = 0;    // GQA head dim
  bool qk_norm = false;         // Qwen3: RMSNorm over each q and k head
  std::int64_t window = 0;      // sliding window (tokens) of the sliding layers; 0: none
  std::int64_t sliding_every = 0;  // every n-th layer (starting at layer 0) is sliding; 0: none
  bool sinks = false;           // gpt-oss attention sinks
  // MLA (DeepSeek): q_lora_rank 0 means no query compression (V2-Lite).
  std::int64_t q_lora_rank = 0, kv_lora_rank = 0, qk_nope_dim = 0, qk_rope_dim = 0, v_head_dim = 0;
  std::int64_t dense_inter = 0;   // dense FFN intermediate width
  std::int64_t experts = 0;       // routed experts (0: dense model)
  std::int64_t top_k = 0;
  std::int64_t expert_inter = 0;
  std::int64_t shared_experts = 0;  // shared experts of expert_inter width each
  std::int64_t n_group = 1, topk_group = 1;
  moe_scoring scoring = moe_scoring::softmax_topk_renorm;
  moe_activation act = moe_activation::swiglu;
  double quoted_total_params = 0;   // as the authors quote them
  double quoted_active_params = 0;
  std::string quoted_source;
  std::string active_convention;    // what the authors' "active" count includes (embedding or not)

  bool moe() const { return experts > 0; }
  bool sliding(std::int64_t layer) const { return sliding_every > 0 && window > 0 && layer % sliding_every == 0; }
};

// One model file (profiles/models/<slug>.toml, schema in profiles/README.md); the slug is the file stem.
// Throws profile_error ("<file>:<line>: key '<key>': <problem>") for unknown or missing keys, wrong
// types, unknown attention / scoring / activation names and inconsistent shapes.
model_config load_model(const std::filesystem::path& file);
// Every *.toml of `dir`, by file name; throws std::invalid_argument when dir is missing or empty.
std::vector<model_config> load_models(const std::filesystem::path& dir);
// The models of profiles_dir()/models, loaded on first use (and again after set_profiles_dir changes it:
// references from before then are invalid).
const std::vector<model_config>& known_models();
// Throws std::invalid_argument naming the bad name and listing the valid ones.
const model_config& find_model(std::string_view slug);

struct param_counts {
  double total = 0;              // every weight, embedding and LM head included
  double active = 0;             // weights one token's forward pass reads, embedding table excluded
  double embedding = 0;          // the input embedding table (one row is read per token)
};
param_counts count_params(const model_config& m);
// KV cache bytes per token over all layers with `bytes_per_value` storage (MLA: the 576-value latent row).
double kv_bytes_per_token(const model_config& m, double bytes_per_value);

enum class phase { decode, prefill };
std::string_view to_string(phase p);
phase parse_phase(std::string_view name);  // throws std::invalid_argument listing decode, prefill

// One inference instance spans tp x attn_dp chips. Attention (and the dense FFN, shared expert, LM head)
// is tensor-parallel over tp within each of attn_dp data-parallel groups; routed experts are either
// tensor-parallel over tp inside each group (ep = 1) or expert-parallel over all chips (ep = tp x attn_dp).
struct parallel_config {
  int tp = 1;
  int ep = 1;
  int attn_dp = 1;
  int chips() const { return tp * attn_dp; }
};

// Formats the kernels run in: gemm_dt for the linear layers and experts (the target's best native
// format), aux_dt for attention, the KV cache, norms, the absorbed MLA products and the LM head.
// The peak names are those of the profile (fp16 runs on the fp16 peak with 2-byte storage).
struct dtype_choice {
  std::string gemm_peak = "bf16";  // fp32 | bf16 | fp16 | fp8 | int8
  std::string aux_peak = "bf16";   // fp32 | bf16 | fp16
  dtype gemm_dt = dtype::bf16;     // storage format for the work models
  dtype aux_dt = dtype::bf16;
};
// Maps a peak name to the storage format of the work models (fp16 -> bf16, same size); throws
// std::invalid_argument listing fp32, bf16, fp16, int8, fp8.
dtype storage_dtype(std::string_view peak_name);

struct workload_request {
  std::string model;
  phase ph = phase::decode;
  std::int64_t batch = 1;    // sequences in one instance's step
  std::int64_t context = 1;  // tokens per sequence in the cache (decode) / prompt length (prefill)
  parallel_config par;
};
// Throws std::invalid_argument naming the bad value and the valid choices: unknown model, batch or
// context < 1, tp not dividing the query (or KV) heads, attn_dp not dividing the batch, ep not 1 or the
// instance's chips (or ep > 1 on a dense model, or above the expert count).
void validate(const workload_request& r);

// One kernel invocation on one chip (or one collective for class all_to_all).
struct invocation {
  std::string name;         // e.g. "attn.q_b_proj", "moe.experts.gate_up", "comm.ep_dispatch"
  kernel_class kclass = kernel_class::gemm;
  std::string peak;         // dtype whose compute peak bounds it (profile name); "" for communication
  double flops = 0;         // per invocation
  double bytes = 0;         // memory bytes per invocation
  double link_bytes = 0;    // bytes one chip sends over its link per invocation (communication only)
  std::string link_dtype;   // dtype of the payload (calibration key of the link factor)
  int group = 0;            // chips taking part in the collective (EP or TP degree)
  bool compute_on_vector = false;  // elementwise: the compute term uses the fp32 vector peak
};

struct layer_group {
  std::string kind;         // e.g. "mla+moe", "gqa-sliding+moe", "head"
  std::int64_t count = 0;   // layers of this kind in the model
  std::vector<invocation> ops;
};

struct workload_plan {
  workload_request request;
  dtype_choice dt;
  const model_config* model = nullptr;
  std::vector<layer_group> groups;     // transformer layer kinds, then "head" (count 1)
  double tokens_per_step = 0;          // tokens the instance produces (decode) or ingests (prefill) per step
  int chips = 1;
  double weight_bytes_per_chip = 0;    // resident weights
  double kv_bytes_per_chip = 0;        // cache of the chip's sequences at full context
  double expected_experts_hit = 0;     // per chip and MoE layer (uniform routing expectation)
  double routed_rows_per_chip = 0;     // (token, expert) pairs per chip and MoE layer
  std::int64_t layers() const;         // transformer layers (head excluded)
  double flops() const;                // per chip and step
  double bytes() const;
  nlohmann::json to_json() const;
};

// Expected distinct experts hit among `local` of `experts` when `tokens` tokens each pick top_k distinct
// experts uniformly: local * (1 - (1 - k/E)^tokens) (workloads.md, "Only experts actually hit").
double expected_experts_hit(std::int64_t experts, std::int64_t top_k, std::int64_t local, double tokens);

workload_plan decompose(const workload_request& r, const dtype_choice& dt);

}  // namespace infermark
