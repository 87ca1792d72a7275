// Attention over a paged KV cache: one op covers GQA/MHA/MQA decode, MLA decode (absorbed form),
// causal prefill (variable lengths, chunked against an existing cache), MLA prefill (decompressed
// form) and sliding-window attention with sinks. Each sequence b has q_len(b) new query tokens that sit
// at the end of its ctx_len(b) cached tokens (their K/V are already appended), so
//   query i of sequence b (0 <= i < q_len) has position p = ctx_len - q_len + i and attends to the
//   cached tokens j with  max(0, p - window + 1) <= j <= p   (window 0: no lower bound).
// Decode is q_len 1 (2 with multi-token prediction); prefill is q_len == ctx_len; chunked prefill is
// anything in between.
//
// out = softmax(scale * q.k^T [+ sink]) . v, with fp32 softmax and accumulation whatever the storage.
// Sinks (gpt-oss): one logit per query head that joins the softmax denominator and carries no value.
//
// Layouts (row-major, innermost last):
//   q        [total_q][hq][dk]                  q_dt (fp32 | bf16); rows of sequence b start at q_start[b]
//   k_cache  [num_blocks][hkv][block_size][dk]  kv_dt (fp32 | bf16 | int8 | fp8 e4m3)
//   v_cache  [num_blocks][hkv][block_size][dv]  kv_dt; not read when v_in_k (MLA: v = k[..., :dv])
//   k_scale, v_scale [num_blocks][hkv][block_size] fp32, int8/fp8 only: value = code * scale (per token)
//   block_table [batch][max_blocks_per_seq] int32: cache token j of sequence b lives in block
//            block_table[b][j / block_size], slot j % block_size
//   out      [total_q][hq][dv] fp32
// Query head n uses KV head n / (hq / hkv).
//
// Stages: stage 0 computes attention; when splits > 1 each (sequence, KV head, query tile) is split
// over `splits` contiguous KV ranges whose partial softmax states (max, sum, unnormalised acc) go to the
// scratch, and stage 1 merges them exactly. The harness runs backend.parallel once per stage.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "kernels/common/dtype.hpp"
#include "kernels/common/work.hpp"

namespace infermark {

struct attention_desc {
  std::int64_t batch = 1;               // sequences
  std::int64_t total_q = 1;             // query tokens over all sequences (rows of q and out)
  std::int64_t hq = 1;                  // query heads
  std::int64_t hkv = 1;                 // KV heads (hq % hkv == 0)
  std::int64_t dk = 128;                // q/k head dim
  std::int64_t dv = 128;                // v/out head dim
  std::int64_t block_size = 16;         // tokens per cache block
  std::int64_t num_blocks = 1;          // cache capacity in blocks
  std::int64_t max_blocks_per_seq = 1;  // row length of block_table
  std::int64_t window = 0;              // sliding window in tokens (query sees window tokens incl. itself); 0 = none
  std::int64_t splits = 1;              // KV splits per work item (split-KV); > 1 adds the merge stage
  bool sinks = false;                   // args.sinks holds one logit per query head
  bool v_in_k = false;                  // MLA absorbed: v is the first dv values of each k row (dv <= dk)
  float scale = 0;                      // softmax scale; 0 means 1/sqrt(dk)
  dtype q_dt = dtype::fp32;             // fp32 | bf16
  dtype kv_dt = dtype::fp32;            // fp32 | bf16 | int8 | fp8
};

struct attention_args {
  const void* q = nullptr;
  const void* k_cache = nullptr;
  const void* v_cache = nullptr;
  const float* k_scale = nullptr;          // int8/fp8 only
  const float* v_scale = nullptr;          // int8/fp8 only, not read when v_in_k
  const std::int32_t* block_table = nullptr;
  const std::int32_t* q_start = nullptr;   // [batch + 1], q_start[0] == 0, q_start[batch] == total_q
  const std::int32_t* ctx_lens = nullptr;  // [batch], tokens in the cache incl. the new queries
  const float* sinks = nullptr;            // [hq] when desc.sinks
  float* out = nullptr;
  void* scratch = nullptr;                 // impl.scratch_bytes(desc, nthr) bytes, 64-byte aligned
};

struct attention_impl {
  std::string_view name;  // "<isa>:<variant>", e.g. "avx512:fp32acc", "ref:any"
  // std::nullopt when this implementation runs `d` on this CPU under the current ISA cap; else why not.
  std::optional<std::string> (*check)(const attention_desc& d);
  // Scratch the caller provides in args.scratch for `nthr` workers (same nthr as in execute).
  std::size_t (*scratch_bytes)(const attention_desc& d, int nthr);
  // Number of stages (1 or 2); run them in order, each over all workers.
  int (*stages)(const attention_desc& d);
  // This worker's share of `stage`. Pure: no threads, no I/O, no allocation; workers write disjoint
  // parts of out and of their own scratch.
  void (*execute)(const attention_desc& d, const attention_args& a, int stage, int ithr, int nthr);
  // Accuracy contract against the reference: 0 = within 1e-5 normwise (max |err| / max |ref|), what fp32
  // softmax and accumulation give; else the NMSE bound of a path that rounds an operand (bf16 P).
  double nmse_bound = 0;
};

// Implementations in preference order, the reference last.
std::span<const attention_impl> attention_impls();
// The oracle: naive loops over exactly the visible tokens, fp64 softmax and accumulation, no splits.
const attention_impl& attention_reference();
// First implementation that accepts `d`; throws std::invalid_argument listing every refusal.
const attention_impl& attention_select(const attention_desc& d);
// The implementation named `name`; throws std::invalid_argument listing the valid names.
const attention_impl& attention_find(std::string_view name);

// Throws std::invalid_argument naming the bad value (and the valid choices) for an inconsistent desc:
// non-positive sizes, hq % hkv != 0, dv > dk with v_in_k, unsupported dtypes, negative window, ...
void attention_validate(const attention_desc& d);
// Also checks the index arrays: q_start monotone and ending at total_q, q_len <= ctx_len, ctx_len <=
// max_blocks_per_seq * block_size, and every block_table entry a sequence uses inside [0, num_blocks).
void attention_validate(const attention_desc& d, const attention_args& a);

// Exact work of one call. FLOPs: 2*dk + 2*dv per (query row, head, visible token) -- the two matrix
// products, the usual attention convention (softmax exp/max/sum not counted) -- plus, with splits, the
// merge: 2*dv per (row, head, split). Bytes: q, out, the K/V (and scales) of every token some query of
// the sequence sees, read once per KV head (MLA: the shared cache once), index arrays, sinks, and the
// partial states written and read back when split.
work_model attention_work(const attention_desc& d, std::span<const std::int32_t> q_start,
                          std::span<const std::int32_t> ctx_lens);

// ---- KV append ----------------------------------------------------------------------------------------
// Writes `tokens` new K/V rows ([tokens][hkv][dk] and [tokens][hkv][dv], src_dt fp32 | bf16) into the
// paged cache of the layout above at slot_mapping[t] = block * block_size + offset, converting to kv_dt:
// fp32/bf16 by rounding to nearest even; int8 with a per-(token, head) scale absmax/127 and codes rounded
// to nearest (ties away); fp8 e4m3 with scale absmax/448 (RNE, saturating). An all-zero row gets scale 1.
// With v_in_k (MLA) only the K rows (the 576-wide latent+rope rows) are written.
struct kv_append_desc {
  std::int64_t tokens = 1, hkv = 1, dk = 128, dv = 128, block_size = 16, num_blocks = 1;
  bool v_in_k = false;
  dtype src_dt = dtype::fp32;
  dtype kv_dt = dtype::fp32;
};
struct kv_append_args {
  const void* k_new = nullptr;
  const void* v_new = nullptr;
  const std::int32_t* slot_mapping = nullptr;  // [tokens]
  void* k_cache = nullptr;
  void* v_cache = nullptr;
  float* k_scale = nullptr;  // int8/fp8 only
  float* v_scale = nullptr;
};
// Throws std::invalid_argument naming the bad value (sizes, formats, a slot outside the cache).
void kv_append_validate(const kv_append_desc& d, const kv_append_args& a);
// This worker's share of the (token, head) rows. Pure; the one implementation ("generic:any") is also
// the oracle -- tests check it against independent bounds (round trip within half a quantization step).
void kv_append(const kv_append_desc& d, const kv_append_args& a, int ithr, int nthr);
// FLOPs: 0 for fp32/bf16; int8/fp8: 2 per value (absmax compare, scale). Bytes: new rows read, cache
// rows (+ scales) written, slot mapping.
work_model kv_append_work(const kv_append_desc& d);

// Tokens in [lo, hi) that query position p sees.
struct visible_range {
  std::int64_t lo, hi;
};
inline visible_range attention_visible(const attention_desc& d, std::int64_t p) {
  const std::int64_t lo = d.window > 0 && p - d.window + 1 > 0 ? p - d.window + 1 : 0;
  return {lo, p + 1};
}
inline float attention_scale(const attention_desc& d) {
  return d.scale != 0 ? d.scale : 1.0f / std::sqrt(static_cast<float>(d.dk));
}

}  // namespace infermark
