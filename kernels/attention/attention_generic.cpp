// Portable instantiation of the attention framework: scalar "vectors" (W = 1); the compiler may
// auto-vectorize it for the baseline ISA. Also the implementation that runs on NEON machines.
#include <cmath>

#include "kernels/attention/attention_core.hpp"
#include "kernels/attention/attention_isa.hpp"

namespace infermark::attn_isa {
namespace {

struct scalar_simd {
  using vf = float;
  static constexpr int W = 1, kAcc = 4, kNV = 4;
  static vf zero() { return 0.0f; }
  static vf load(const float* p) { return *p; }
  static void store(float* p, vf v) { *p = v; }
  static vf set1(float x) { return x; }
  static vf fma(vf a, vf b, vf c) { return std::fma(a, b, c); }
  static void reduce(const vf* acc, float* out) {
    for (int j = 0; j < kAcc; ++j) out[j] = acc[j];
  }
  static float row_max(const float* s) {
    float m = s[0];
    for (std::int64_t t = 1; t < attn_core::kTile; ++t) m = std::isnan(s[t]) ? s[t] : std::max(m, s[t]);
    return m;
  }
  static float row_exp2(float* s, float m) {
    float sum = 0;
    for (std::int64_t t = 0; t < attn_core::kTile; ++t) sum += (s[t] = std::exp2(s[t] - m));
    return sum;
  }
  static void scale(float* p, float f, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) p[i] *= f;
  }
  static void axpy(float* y, const float* x, float a, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) y[i] = std::fma(a, x[i], y[i]);
  }
  static void dequant(dtype dt, const void* src, float sc, float* dst, std::int64_t n) {
    switch (dt) {
      case dtype::fp32: std::copy_n(static_cast<const float*>(src), n, dst); break;
      case dtype::bf16:
        for (std::int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(static_cast<const bf16_t*>(src)[i]);
        break;
      case dtype::int8:
        for (std::int64_t i = 0; i < n; ++i) dst[i] = static_cast<float>(static_cast<const std::int8_t*>(src)[i]) * sc;
        break;
      case dtype::fp8:
        for (std::int64_t i = 0; i < n; ++i) dst[i] = fp8_e4m3_to_f32(static_cast<const fp8_t*>(src)[i]) * sc;
        break;
    }
  }
};

}  // namespace

void execute_generic(const attention_desc& d, const attention_args& a, int stage, int ithr, int nthr) {
  attn_core::execute<scalar_simd>(d, a, stage, ithr, nthr);
}

}  // namespace infermark::attn_isa
