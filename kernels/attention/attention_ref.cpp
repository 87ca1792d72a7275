// Reference attention: the test oracle. Naive loops over exactly the visible tokens, fp64 softmax and
// accumulation, values read through the scalar dtype conversions. Never optimized.
#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "kernels/attention/attention.hpp"
#include "kernels/attention/attention_msg.hpp"
#include "kernels/common/partition.hpp"

namespace infermark {
namespace {

double load_q(const attention_desc& d, const void* q, std::int64_t idx) {
  if (d.q_dt == dtype::bf16) return bf16_to_f32(static_cast<const bf16_t*>(q)[idx]);
  return static_cast<const float*>(q)[idx];
}

// Dequantized cache value; idx indexes the [num_blocks][hkv][block_size][dim] array, sidx its scale.
double load_kv(const attention_desc& d, const void* cache, const float* scale, std::int64_t idx, std::int64_t sidx) {
  switch (d.kv_dt) {
    case dtype::fp32: return static_cast<const float*>(cache)[idx];
    case dtype::bf16: return bf16_to_f32(static_cast<const bf16_t*>(cache)[idx]);
    case dtype::int8: return static_cast<double>(static_cast<const std::int8_t*>(cache)[idx]) * scale[sidx];
    case dtype::fp8: return static_cast<double>(fp8_e4m3_to_f32(static_cast<const fp8_t*>(cache)[idx])) * scale[sidx];
  }
  return 0;
}

std::optional<std::string> ref_check(const attention_desc&) { return std::nullopt; }
std::size_t ref_scratch(const attention_desc& d, int nthr) {
  return static_cast<std::size_t>(nthr) * static_cast<std::size_t>(d.dv) * sizeof(double);
}
int ref_stages(const attention_desc&) { return 1; }

void ref_execute(const attention_desc& d, const attention_args& a, int stage, int ithr, int nthr) {
  if (stage != 0) return;
  const std::int64_t group = d.hq / d.hkv;
  const double scale = attention_scale(d);
  double* acc = static_cast<double*>(a.scratch) + static_cast<std::int64_t>(ithr) * d.dv;
  const auto [w0, w1] = balance(d.total_q * d.hq, ithr, nthr);
  for (std::int64_t w = w0; w < w1; ++w) {
    const std::int64_t row = w / d.hq, head = w % d.hq, kvh = head / group;
    const std::int64_t b = std::upper_bound(a.q_start, a.q_start + d.batch + 1, static_cast<std::int32_t>(row)) - a.q_start - 1;
    const std::int64_t q_len = a.q_start[b + 1] - a.q_start[b], ctx = a.ctx_lens[b];
    const std::int64_t p = ctx - q_len + (row - a.q_start[b]);
    const auto [lo, hi] = attention_visible(d, p);
    const std::int32_t* bt = a.block_table + b * d.max_blocks_per_seq;
    auto slot = [&](std::int64_t j) {  // index of token j's row start / d-dim, in (block, head, slot) units
      return (static_cast<std::int64_t>(bt[j / d.block_size]) * d.hkv + kvh) * d.block_size + j % d.block_size;
    };
    auto score = [&](std::int64_t j) {
      const std::int64_t t = slot(j);
      double s = 0;
      for (std::int64_t i = 0; i < d.dk; ++i)
        s += load_q(d, a.q, (row * d.hq + head) * d.dk + i) * load_kv(d, a.k_cache, a.k_scale, t * d.dk + i, t);
      return s * scale;
    };
    double m = d.sinks ? static_cast<double>(a.sinks[head]) : -std::numeric_limits<double>::infinity();
    for (std::int64_t j = lo; j < hi; ++j) m = std::max(m, score(j));
    double l = d.sinks ? std::exp(static_cast<double>(a.sinks[head]) - m) : 0.0;
    std::fill(acc, acc + d.dv, 0.0);
    for (std::int64_t j = lo; j < hi; ++j) {
      const double e = std::exp(score(j) - m);
      l += e;
      const std::int64_t t = slot(j);
      for (std::int64_t i = 0; i < d.dv; ++i)
        acc[i] += e * (d.v_in_k ? load_kv(d, a.k_cache, a.k_scale, t * d.dk + i, t)
                                : load_kv(d, a.v_cache, a.v_scale, t * d.dv + i, t));
    }
    float* o = a.out + (row * d.hq + head) * d.dv;
    for (std::int64_t i = 0; i < d.dv; ++i) o[i] = static_cast<float>(acc[i] / l);
  }
}

void positive(std::int64_t v, const char* name) {
  if (v <= 0) throw std::invalid_argument(cat("attention: ", name, " = ", v, " must be positive"));
}

}  // namespace

const attention_impl& attention_reference() {
  static const attention_impl impl{"ref:any", ref_check, ref_scratch, ref_stages, ref_execute};
  return impl;
}

void attention_validate(const attention_desc& d) {
  positive(d.batch, "batch");
  positive(d.total_q, "total_q");
  positive(d.hq, "hq");
  positive(d.hkv, "hkv");
  positive(d.dk, "dk");
  positive(d.dv, "dv");
  positive(d.block_size, "block_size");
  positive(d.num_blocks, "num_blocks");
  positive(d.max_blocks_per_seq, "max_blocks_per_seq");
  positive(d.splits, "splits");
  if (d.hq % d.hkv != 0)
    throw std::invalid_argument(cat("attention: query heads hq = ", d.hq, " are not a multiple of KV heads hkv = ", d.hkv));
  if (d.window < 0) throw std::invalid_argument(cat("attention: window = ", d.window, " must be >= 0 (0 = no window)"));
  if (d.v_in_k && d.dv > d.dk)
    throw std::invalid_argument(cat("attention: v_in_k needs dv <= dk, got dv = ", d.dv, " > dk = ", d.dk));
  if (d.q_dt != dtype::fp32 && d.q_dt != dtype::bf16)
    throw std::invalid_argument(cat("attention: query format '", to_string(d.q_dt), "' unsupported; valid choices: fp32, bf16"));
  if (!(d.scale >= 0) || std::isinf(d.scale))
    throw std::invalid_argument(cat("attention: scale = ", d.scale, " must be finite and >= 0 (0 = 1/sqrt(dk))"));
}

void attention_validate(const attention_desc& d, const attention_args& a) {
  attention_validate(d);
  if (a.q_start[0] != 0) throw std::invalid_argument(cat("attention: q_start[0] = ", a.q_start[0], " must be 0"));
  if (a.q_start[d.batch] != d.total_q)
    throw std::invalid_argument(cat("attention: q_start[batch] = ", a.q_start[d.batch], " must equal total_q = ", d.total_q));
  const std::int64_t capacity = d.max_blocks_per_seq * d.block_size;
  for (std::int64_t b = 0; b < d.batch; ++b) {
    const std::int64_t q_len = a.q_start[b + 1] - a.q_start[b], ctx = a.ctx_lens[b];
    if (q_len < 0) throw std::invalid_argument(cat("attention: sequence ", b, " has q_len = ", q_len, " < 0 (q_start not monotone)"));
    if (ctx > capacity)
      throw std::invalid_argument(cat("attention: sequence ", b, " has context ", ctx, " longer than its block table holds (", d.max_blocks_per_seq, " blocks x ", d.block_size, " tokens = ", capacity, ")"));
    if (q_len > ctx) throw std::invalid_argument(cat("attention: sequence ", b, " has q_len = ", q_len, " > context ", ctx));
    if (q_len == 0) continue;
    // Blocks of the tokens this sequence's queries can see.
    const std::int64_t lo = attention_visible(d, ctx - q_len).lo;
    for (std::int64_t blk = lo / d.block_size; blk < div_up(ctx, d.block_size); ++blk) {
      const std::int32_t e = a.block_table[b * d.max_blocks_per_seq + blk];
      if (e < 0 || e >= d.num_blocks)
        throw std::invalid_argument(cat("attention: block_table[", b, "][", blk, "] = ", e, " points outside the cache of ", d.num_blocks, " blocks"));
    }
  }
}

work_model attention_work(const attention_desc& d, std::span<const std::int32_t> q_start, std::span<const std::int32_t> ctx_lens) {
  const double kv_es = static_cast<double>(dtype_size(d.kv_dt)), q_es = static_cast<double>(dtype_size(d.q_dt));
  const bool scaled = d.kv_dt == dtype::int8 || d.kv_dt == dtype::fp8;
  double pairs = 0, tokens_read = 0;
  for (std::int64_t b = 0; b < d.batch; ++b) {
    const std::int64_t q_len = q_start[b + 1] - q_start[b], ctx = ctx_lens[b];
    for (std::int64_t i = 0; i < q_len; ++i) {
      const auto r = attention_visible(d, ctx - q_len + i);
      pairs += static_cast<double>(r.hi - r.lo);
    }
    if (q_len > 0) tokens_read += static_cast<double>(ctx - attention_visible(d, ctx - q_len).lo);
  }
  const double hq = static_cast<double>(d.hq), hkv = static_cast<double>(d.hkv);
  const double dk = static_cast<double>(d.dk), dv = static_cast<double>(d.dv), tq = static_cast<double>(d.total_q);
  double kv_bytes = tokens_read * hkv * (d.v_in_k ? dk * kv_es + (scaled ? 4 : 0) : (dk + dv) * kv_es + (scaled ? 8 : 0));
  double index_bytes = 4.0 * static_cast<double>(2 * d.batch + 1);
  for (std::int64_t b = 0; b < d.batch; ++b) {
    const std::int64_t q_len = q_start[b + 1] - q_start[b], ctx = ctx_lens[b];
    if (q_len > 0) {
      const std::int64_t lo = attention_visible(d, ctx - q_len).lo;
      index_bytes += 4.0 * static_cast<double>(div_up(ctx, d.block_size) - lo / d.block_size);
    }
  }
  work_phase attn{"attention", pairs * hq * (2 * dk + 2 * dv),
                  tq * hq * dk * q_es + kv_bytes + index_bytes + (d.sinks ? 4 * hq : 0) + tq * hq * dv * 4};
  work_model w{{attn}};
  if (d.splits > 1) {
    const double partial = tq * hq * static_cast<double>(d.splits) * (dv + 2) * 4;
    w.phases[0].bytes += partial - tq * hq * dv * 4;  // stage 0 writes partials instead of out
    w.phases.push_back({"merge", tq * hq * static_cast<double>(d.splits) * 2 * dv, partial + tq * hq * dv * 4});
  }
  return w;
}

}  // namespace infermark
