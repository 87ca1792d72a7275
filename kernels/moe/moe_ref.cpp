// Reference MoE layer: the test oracle. Token by token, fp64 dot products over dequantized operands, the
// shared scoring rule (moe_score) and activation quantization (moe_quantize_row). Never optimized.
//
// Packed form (a plain copy of the logical weights): router gate [E][H], bias [E], then the shared
// expert (if any) and each local expert: gate, up, down in the storage format, then their scales.
#include <cstring>
#include <stdexcept>
#include <vector>

#include "kernels/common/partition.hpp"
#include "kernels/moe/moe_internal.hpp"

namespace infermark {
namespace {

using moe_detail::carver;
using moe_detail::weight_scales;

struct ref_expert {
  const void* gate;
  const void* up;
  const void* down;
  const float* gate_scale;
  const float* up_scale;
  const float* down_scale;
};

// Carves one expert of intermediate width `inter` out of `c`.
ref_expert carve_expert(const moe_desc& d, std::int64_t inter, carver& c) {
  const auto bytes = static_cast<std::size_t>(inter * d.hidden) * dtype_size(d.dt);
  ref_expert e{};
  e.gate = c.take<unsigned char>(bytes);
  e.up = c.take<unsigned char>(bytes);
  e.down = c.take<unsigned char>(bytes);
  e.gate_scale = c.take<float>(static_cast<std::size_t>(weight_scales(d.dt, inter, d.hidden)));
  e.up_scale = c.take<float>(static_cast<std::size_t>(weight_scales(d.dt, inter, d.hidden)));
  e.down_scale = c.take<float>(static_cast<std::size_t>(weight_scales(d.dt, d.hidden, inter)));
  return e;
}

struct ref_layout {
  const float* router = nullptr;
  const float* bias = nullptr;
  ref_expert shared{};
  std::size_t experts_at = 0, expert_bytes = 0, bytes = 0;
};

ref_layout layout(const moe_desc& d, const void* base) {
  carver c(const_cast<void*>(base));
  ref_layout l;
  l.router = c.take<float>(static_cast<std::size_t>(d.experts * d.hidden));
  l.bias = c.take<float>(static_cast<std::size_t>(d.experts));
  if (d.shared_inter > 0) l.shared = carve_expert(d, d.shared_inter, c);
  l.experts_at = c.used();
  carver one;
  carve_expert(d, d.inter, one);
  l.expert_bytes = one.used();
  l.bytes = l.experts_at + l.expert_bytes * static_cast<std::size_t>(d.local());
  return l;
}

ref_expert expert_at(const moe_desc& d, const void* packed, std::int64_t e) {
  const ref_layout l = layout(d, packed);
  if (e == moe_shared_expert) return l.shared;
  carver c(const_cast<unsigned char*>(static_cast<const unsigned char*>(packed)) + l.experts_at +
           l.expert_bytes * static_cast<std::size_t>(e));
  return carve_expert(d, d.inter, c);
}

double load(dtype dt, const void* base, std::int64_t idx) {
  switch (dt) {
    case dtype::fp32: return static_cast<const float*>(base)[idx];
    case dtype::bf16: return bf16_to_f32(static_cast<const bf16_t*>(base)[idx]);
    case dtype::int8: return static_cast<const std::int8_t*>(base)[idx];
    case dtype::fp8: return fp8_e4m3_to_f32(static_cast<const fp8_t*>(base)[idx]);
  }
  return 0;
}

// Dequantized element (row, col) of a weight matrix [n][kk] with the gemm.hpp scale layouts.
double weight_at(dtype dt, const void* w, const float* scale, std::int64_t kk, std::int64_t row, std::int64_t col) {
  const double v = load(dt, w, row * kk + col);
  if (dt == dtype::int8) return v * scale[row];
  if (dt == dtype::fp8) {
    const std::int64_t kb = (kk + gemm_fp8_block - 1) / gemm_fp8_block;
    return v * scale[(row / gemm_fp8_block) * kb + col / gemm_fp8_block];
  }
  return v;
}

// Dequantized activation element `col` of a row quantized by moe_quantize_row.
double activation(dtype dt, const void* q, const float* scale, std::int64_t col) {
  const double v = load(dt, q, col);
  if (dt == dtype::int8) return v * scale[0];
  if (dt == dtype::fp8) return v * scale[col / gemm_fp8_block];
  return v;
}

// Per-worker scratch, sized for the wider of the routed and shared experts.
struct ref_scratch {
  float* score_work;  // moe_score_work
  float* logits;      // [E]
  unsigned char* xq;  // [H] in dt
  float* xq_scale;
  float* h;           // [max inter] fp32
  unsigned char* hq;  // [max inter] in dt
  float* hq_scale;
  double* acc;        // [H]
};

ref_scratch carve_scratch(const moe_desc& d, carver& c) {
  const std::int64_t wide = std::max(d.inter, d.shared_inter);
  ref_scratch s{};
  s.score_work = c.take<float>(static_cast<std::size_t>(moe_score_work(d)));
  s.logits = c.take<float>(static_cast<std::size_t>(d.experts));
  s.xq = c.take<unsigned char>(moe_detail::act_row_bytes(d.dt, d.hidden));
  s.xq_scale = c.take<float>(static_cast<std::size_t>(moe_row_scales(d.dt, d.hidden)) + 1);
  s.h = c.take<float>(static_cast<std::size_t>(wide));
  s.hq = c.take<unsigned char>(moe_detail::act_row_bytes(d.dt, wide));
  s.hq_scale = c.take<float>(static_cast<std::size_t>(moe_row_scales(d.dt, wide)) + 1);
  s.acc = c.take<double>(static_cast<std::size_t>(d.hidden));
  return s;
}

std::size_t per_worker_bytes(const moe_desc& d) {
  carver c;
  carve_scratch(d, c);
  return c.used();
}

ref_scratch scratch_for(const moe_desc& d, void* base, int ithr) {
  carver c(static_cast<unsigned char*>(base) + per_worker_bytes(d) * static_cast<std::size_t>(ithr));
  return carve_scratch(d, c);
}

std::size_t ref_scratch_bytes(const moe_desc& d, int nthr) { return per_worker_bytes(d) * static_cast<std::size_t>(nthr); }

// acc += weight * ffn(x) for one expert; x already quantized in s.xq.
void expert_ffn(const moe_desc& d, const ref_expert& e, std::int64_t inter, double weight, const ref_scratch& s) {
  const std::int64_t H = d.hidden;
  for (std::int64_t j = 0; j < inter; ++j) {
    double g = 0, u = 0;
    for (std::int64_t p = 0; p < H; ++p) {
      const double x = activation(d.dt, s.xq, s.xq_scale, p);
      g += x * weight_at(d.dt, e.gate, e.gate_scale, H, j, p);
      u += x * weight_at(d.dt, e.up, e.up_scale, H, j, p);
    }
    s.h[j] = moe_detail::activate(d.act, static_cast<float>(g), static_cast<float>(u));
  }
  moe_quantize_row(d.dt, s.h, inter, s.hq, s.hq_scale);
  for (std::int64_t i = 0; i < H; ++i) {
    double y = 0;
    for (std::int64_t j = 0; j < inter; ++j)
      y += activation(d.dt, s.hq, s.hq_scale, j) * weight_at(d.dt, e.down, e.down_scale, inter, i, j);
    s.acc[i] += weight * static_cast<double>(static_cast<float>(y));
  }
}

void ref_router(const moe_desc& d, const moe_args& a, int ithr, int nthr) {
  const ref_layout l = layout(d, a.packed);
  const ref_scratch s = scratch_for(d, a.scratch, ithr);
  const auto [t0, t1] = balance(d.tokens, ithr, nthr);
  // The router's inputs in its format (moe_router_dtype): bf16-rounded outside fp32 layers.
  const bool bf16 = moe_router_dtype(d) == dtype::bf16;
  auto in = [bf16](float v) { return static_cast<double>(bf16 ? bf16_to_f32(f32_to_bf16(v)) : v); };
  for (std::int64_t t = t0; t < t1; ++t) {
    for (std::int64_t e = 0; e < d.experts; ++e) {
      double acc = 0;
      for (std::int64_t p = 0; p < d.hidden; ++p) acc += in(a.src[t * d.hidden + p]) * in(l.router[e * d.hidden + p]);
      s.logits[e] = static_cast<float>(acc);
    }
    moe_score(d, s.logits, l.bias, s.score_work, a.topk_ids + t * d.top_k, a.topk_weights + t * d.top_k);
  }
}

void ref_experts(const moe_desc& d, const moe_args& a, int ithr, int nthr) {
  const ref_scratch s = scratch_for(d, a.scratch, ithr);
  const std::int32_t* ids = a.forced_ids ? a.forced_ids : a.topk_ids;
  const float* wts = a.forced_ids ? a.forced_weights : a.topk_weights;
  if (ithr == 0 && a.expert_counts) {
    std::fill(a.expert_counts, a.expert_counts + d.experts, 0);
    for (std::int64_t i = 0; i < d.tokens * d.top_k; ++i)
      if (ids[i] >= 0 && ids[i] < d.experts) ++a.expert_counts[ids[i]];
  }
  const auto [t0, t1] = balance(d.tokens, ithr, nthr);
  for (std::int64_t t = t0; t < t1; ++t) {
    std::fill(s.acc, s.acc + d.hidden, 0.0);
    moe_quantize_row(d.dt, a.src + t * d.hidden, d.hidden, s.xq, s.xq_scale);
    for (std::int64_t j = 0; j < d.top_k; ++j) {
      const std::int64_t le = ids[t * d.top_k + j] - d.local_first;
      if (ids[t * d.top_k + j] < 0 || le < 0 || le >= d.local()) continue;
      expert_ffn(d, expert_at(d, a.packed, le), d.inter, wts[t * d.top_k + j], s);
    }
    if (d.shared_inter > 0) expert_ffn(d, expert_at(d, a.packed, moe_shared_expert), d.shared_inter, 1.0, s);
    for (std::int64_t i = 0; i < d.hidden; ++i) a.dst[t * d.hidden + i] = static_cast<float>(s.acc[i]);
  }
}

void ref_pack_router(const moe_desc& d, const moe_router_weights& w, void* packed) {
  moe_validate(d);
  if (!w.gate) throw std::invalid_argument("moe pack_router: gate weights are null");
  if (d.scoring == moe_scoring::sigmoid_group_topk && !w.bias)
    throw std::invalid_argument("moe pack_router: scoring sigmoid_group_topk needs the correction bias; got null");
  carver c(packed);
  float* router = c.take<float>(static_cast<std::size_t>(d.experts * d.hidden));
  float* bias = c.take<float>(static_cast<std::size_t>(d.experts));
  std::memcpy(router, w.gate, static_cast<std::size_t>(d.experts * d.hidden) * sizeof(float));
  for (std::int64_t e = 0; e < d.experts; ++e) bias[e] = w.bias ? w.bias[e] : 0.0f;
}

void ref_pack_expert(const moe_desc& d, std::int64_t e, const moe_expert_weights& w, void* packed) {
  moe_validate(d);
  if (e != moe_shared_expert && (e < 0 || e >= d.local()))
    throw std::invalid_argument("moe pack_expert: expert " + std::to_string(e) + " outside the local shard [0, " +
                                std::to_string(d.local()) + ") (or moe_shared_expert)");
  if (e == moe_shared_expert && d.shared_inter == 0)
    throw std::invalid_argument("moe pack_expert: moe_shared_expert given but shared_inter=0");
  const bool scaled = d.dt == dtype::int8 || d.dt == dtype::fp8;
  if (!w.gate || !w.up || !w.down || (scaled && (!w.gate_scale || !w.up_scale || !w.down_scale)))
    throw std::invalid_argument("moe pack_expert: null weight or scale pointer for format " + std::string(to_string(d.dt)));
  const std::int64_t inter = e == moe_shared_expert ? d.shared_inter : d.inter;
  const ref_expert dst = expert_at(d, packed, e);
  const std::size_t bytes = static_cast<std::size_t>(inter * d.hidden) * dtype_size(d.dt);
  std::memcpy(const_cast<void*>(dst.gate), w.gate, bytes);
  std::memcpy(const_cast<void*>(dst.up), w.up, bytes);
  std::memcpy(const_cast<void*>(dst.down), w.down, bytes);
  const auto gs = static_cast<std::size_t>(weight_scales(d.dt, inter, d.hidden)) * sizeof(float);
  const auto ds = static_cast<std::size_t>(weight_scales(d.dt, d.hidden, inter)) * sizeof(float);
  if (gs) std::memcpy(const_cast<float*>(dst.gate_scale), w.gate_scale, gs);
  if (gs) std::memcpy(const_cast<float*>(dst.up_scale), w.up_scale, gs);
  if (ds) std::memcpy(const_cast<float*>(dst.down_scale), w.down_scale, ds);
}

}  // namespace

const moe_impl& moe_reference() {
  static const moe_impl impl{
      "ref:any",
      [](const moe_desc&) -> std::optional<std::string> { return std::nullopt; },
      [](const moe_desc& d) { return layout(d, nullptr).bytes; },
      ref_scratch_bytes,
      ref_pack_router,
      ref_pack_expert,
      {{"router", ref_router}, {"experts", ref_experts}}};
  return impl;
}

}  // namespace infermark
