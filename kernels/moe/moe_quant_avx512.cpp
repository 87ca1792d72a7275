// moe_quantize_row with AVX-512 intrinsics (called only after run-time dispatch): the same rules as the
// scalar form in moe_common.cpp and bit-identical to it (tests compare every format, edge values
// included). Activations are quantized inside the timed layer (every token before the experts, every
// expert row before the down projection); the scalar form cost 2.7-2.8 ns per value for int8 / fp8.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/moe/moe_act.hpp"

namespace infermark::moe_detail {
namespace {

inline __mmask16 tail_mask(std::int64_t left) { return left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1); }

// max over |x[0, n)| as the scalar loop's std::max(amax, |x|) (a NaN never replaces the running max).
float abs_max(const float* x, std::int64_t n) {
  __m512 m = _mm512_setzero_ps();
  for (std::int64_t i = 0; i < n; i += 16) {
    const __m512 v = _mm512_abs_ps(_mm512_maskz_loadu_ps(tail_mask(n - i), x + i));
    m = _mm512_mask_mov_ps(m, _mm512_cmp_ps_mask(m, v, _CMP_LT_OQ), v);
  }
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, m);
  float amax = 0;
  for (float v : lanes) amax = std::max(amax, v);
  return amax;
}

inline __m512i bf16_bits(__m512 x) {  // f32_to_bf16: round to nearest even, NaN quieted
  const __m512i u = _mm512_castps_si512(x);
  const __m512i abs = _mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff));
  const __mmask16 nan = _mm512_cmpgt_epu32_mask(abs, _mm512_set1_epi32(0x7f800000));
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  const __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
  return _mm512_mask_mov_epi32(rounded, nan, _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40)));
}

inline __m512i e4m3_bits(__m512 y) {  // f32_to_fp8_e4m3 on 16 lanes (result in the low byte of each)
  const __m512i u0 = _mm512_castps_si512(y);
  const __m512i sign = _mm512_and_si512(_mm512_srli_epi32(u0, 24), _mm512_set1_epi32(0x80));
  const __m512i u = _mm512_and_si512(u0, _mm512_set1_epi32(0x7fffffff));
  // normal: keep 3 mantissa bits, round to nearest even, rebias 127 -> 7
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 20), _mm512_set1_epi32(1));
  const __m512i rounded = _mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7ffff)));
  __m512i r = _mm512_sub_epi32(_mm512_srli_epi32(rounded, 20), _mm512_set1_epi32((127 - 7) << 3));
  // below 2^-6: quantum 2^-9, nearbyint(|y| * 512)
  const __m512 small_q = _mm512_roundscale_ps(_mm512_mul_ps(_mm512_castsi512_ps(u), _mm512_set1_ps(512.0f)),
                                              _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  r = _mm512_mask_mov_epi32(r, _mm512_cmplt_epu32_mask(u, _mm512_set1_epi32(0x3c800000)), _mm512_cvttps_epi32(small_q));
  r = _mm512_mask_mov_epi32(r, _mm512_cmpge_epu32_mask(u, _mm512_set1_epi32(0x43e00000)), _mm512_set1_epi32(0x7e));
  r = _mm512_or_si512(r, sign);
  return _mm512_mask_mov_epi32(r, _mm512_cmpgt_epu32_mask(u, _mm512_set1_epi32(0x7f800000)), _mm512_set1_epi32(0x7f));
}

}  // namespace

void quantize_row_avx512(dtype dt, const float* x, std::int64_t n, void* q, float* scale) {
  switch (dt) {
    case dtype::fp32:
      std::memcpy(q, x, static_cast<std::size_t>(n) * sizeof(float));
      return;
    case dtype::bf16: {
      auto* out = static_cast<bf16_t*>(q);
      for (std::int64_t i = 0; i < n; i += 16) {
        const __mmask16 k = tail_mask(n - i);
        _mm256_mask_storeu_epi16(out + i, k, _mm512_cvtepi32_epi16(bf16_bits(_mm512_maskz_loadu_ps(k, x + i))));
      }
      return;
    }
    case dtype::int8: {
      const float amax = abs_max(x, n);
      const float s = amax > 0 ? amax / 127.0f : 1.0f;
      const __m512 sv = _mm512_set1_ps(1.0f / s), lo = _mm512_set1_ps(-127.0f), hi = _mm512_set1_ps(127.0f);
      auto* out = static_cast<std::int8_t*>(q);
      for (std::int64_t i = 0; i < n; i += 16) {
        const __mmask16 k = tail_mask(n - i);
        __m512 v = _mm512_roundscale_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), sv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
        _mm_mask_storeu_epi8(out + i, k, _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(v)));
      }
      scale[0] = s;
      return;
    }
    case dtype::fp8: {
      auto* out = static_cast<fp8_t*>(q);
      for (std::int64_t b0 = 0, b = 0; b0 < n; b0 += gemm_fp8_block, ++b) {
        const std::int64_t len = std::min<std::int64_t>(gemm_fp8_block, n - b0);
        const float amax = abs_max(x + b0, len);
        const float s = amax > 0 ? amax / 448.0f : 1.0f;
        const __m512 sv = _mm512_set1_ps(1.0f / s);
        for (std::int64_t i = 0; i < len; i += 16) {
          const __mmask16 k = tail_mask(len - i);
          const __m512 y = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + b0 + i), sv);
          _mm_mask_storeu_epi8(out + b0 + i, k, _mm512_cvtepi32_epi8(e4m3_bits(y)));
        }
        scale[b] = s;
      }
      return;
    }
  }
}

}  // namespace infermark::moe_detail
