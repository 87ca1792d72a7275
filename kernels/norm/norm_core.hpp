// The optimized RMSNorm / RoPE bodies, written once in plain fp32 loops shaped for auto-vectorization
// (independent partial sums, contiguous halves) and compiled per ISA by norm_avx512.cpp, norm_avx2.cpp
// and norm_generic.cpp. Internal linkage on purpose: each ISA file keeps its own copy (see
// attention_core.hpp for why). Include only from those files.
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/common/partition.hpp"
#include "kernels/norm/norm.hpp"

namespace infermark::norm_core {
namespace {

inline constexpr int kChunk = 256;  // values converted per step (stack buffer, stays in L1)

// dst[0..n) = fp32 values of src (fp32 or bf16).
inline void to_f32(dtype dt, const void* src, std::int64_t at, float* dst, std::int64_t n) {
  if (dt == dtype::bf16) {
    const auto* s = static_cast<const bf16_t*>(src) + at;
    for (std::int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(s[i]);
  } else {
    const auto* s = static_cast<const float*>(src) + at;
    for (std::int64_t i = 0; i < n; ++i) dst[i] = s[i];
  }
}
inline void from_f32(dtype dt, const float* src, void* dst, std::int64_t at, std::int64_t n) {
  if (dt == dtype::bf16) {
    auto* d = static_cast<bf16_t*>(dst) + at;
    for (std::int64_t i = 0; i < n; ++i) d[i] = f32_to_bf16(src[i]);
  } else {
    auto* d = static_cast<float*>(dst) + at;
    for (std::int64_t i = 0; i < n; ++i) d[i] = src[i];
  }
}

// Two passes per row: sum of squares (of src + residual, which is written back), then the scaling.
void rmsnorm(const rmsnorm_desc& d, const rmsnorm_args& a, int ithr, int nthr) {
  const auto [r0, r1] = balance(d.rows, ithr, nthr);
  alignas(64) float h[kChunk], r[kChunk];
  for (std::int64_t row = r0; row < r1; ++row) {
    float part[16] = {};
    for (std::int64_t c = 0; c < d.dim; c += kChunk) {
      const std::int64_t n = std::min<std::int64_t>(kChunk, d.dim - c);
      to_f32(d.dt, a.src, row * d.dim + c, h, n);
      if (d.residual) {
        to_f32(d.dt, a.residual, row * d.dim + c, r, n);
        for (std::int64_t i = 0; i < n; ++i) h[i] += r[i];
        from_f32(d.dt, h, a.residual, row * d.dim + c, n);
      }
      std::int64_t i = 0;
      for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; ++j) part[j] += h[i + j] * h[i + j];
      for (; i < n; ++i) part[i % 16] += h[i] * h[i];
    }
    float ss = 0;
    for (float p : part) ss += p;
    const float inv = 1.0f / std::sqrt(ss / static_cast<float>(d.dim) + d.eps);
    // Second pass re-reads h: from the residual (just written: the rounded sum the next layer sees)
    // or from src.
    for (std::int64_t c = 0; c < d.dim; c += kChunk) {
      const std::int64_t n = std::min<std::int64_t>(kChunk, d.dim - c);
      if (d.residual) to_f32(d.dt, a.residual, row * d.dim + c, h, n);
      else to_f32(d.dt, a.src, row * d.dim + c, h, n);
      for (std::int64_t i = 0; i < n; ++i) h[i] = h[i] * inv * a.weight[c + i];
      from_f32(d.dt, h, a.dst, row * d.dim + c, n);
    }
  }
}

void rope(const rope_desc& d, const rope_args& a, int ithr, int nthr) {
  const std::int64_t half = d.rot_dim / 2;
  const auto [w0, w1] = balance(d.tokens * d.heads, ithr, nthr);
  alignas(64) float x1[kChunk], x2[kChunk], y1[kChunk], y2[kChunk];
  for (std::int64_t w = w0; w < w1; ++w) {
    const std::int64_t tok = w / d.heads;
    const float* cs = a.cos_sin + static_cast<std::int64_t>(a.positions[tok]) * d.rot_dim;
    const std::int64_t base = w * d.head_dim + d.rot_offset;
    for (std::int64_t c = 0; c < half; c += kChunk) {
      const std::int64_t n = std::min<std::int64_t>(kChunk, half - c);
      to_f32(d.dt, a.x, base + c, x1, n);
      to_f32(d.dt, a.x, base + half + c, x2, n);
      for (std::int64_t i = 0; i < n; ++i) {
        const float co = cs[c + i], si = cs[half + c + i];
        y1[i] = x1[i] * co - x2[i] * si;
        y2[i] = x2[i] * co + x1[i] * si;
      }
      from_f32(d.dt, y1, a.x, base + c, n);
      from_f32(d.dt, y2, a.x, base + half + c, n);
    }
  }
}

}  // namespace
}  // namespace infermark::norm_core
