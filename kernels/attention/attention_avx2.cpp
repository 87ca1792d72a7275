// AVX2+FMA instantiation of the attention framework: 8-lane fp32, 8-accumulator Q.K^T tile reduced by
// one hadd tree, exp2 by exponent construction (exact 0 for masked scores), F16C for fp8 e4m3.
#include <immintrin.h>

#include "kernels/attention/attention_core.hpp"
#include "kernels/attention/attention_isa.hpp"

namespace infermark::attn_isa {
namespace {

struct avx2_simd {
  using vf = __m256;
  static constexpr int W = 8, kAcc = 8, kNV = 2;
  static vf zero() { return _mm256_setzero_ps(); }
  static vf load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, vf v) { _mm256_storeu_ps(p, v); }
  static vf set1(float x) { return _mm256_set1_ps(x); }
  static vf fma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }

  static void reduce(const vf* v, float* out) {
    const __m256 t0 = _mm256_hadd_ps(v[0], v[1]), t1 = _mm256_hadd_ps(v[2], v[3]);
    const __m256 t2 = _mm256_hadd_ps(v[4], v[5]), t3 = _mm256_hadd_ps(v[6], v[7]);
    const __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);
    _mm256_store_ps(out, _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31)));
  }
  static float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static float hmax(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  // 2^x for x <= 0 (or NaN): degree-7 polynomial on [-0.5, 0.5] times 2^n built in the exponent field;
  // x clamps to -127 whose exponent field is 0, so masked scores give exactly 0.
  static vf exp2(vf x) {
    x = _mm256_max_ps(_mm256_set1_ps(-127.0f), x);  // NaN in x is kept (second operand wins)
    const vf n = _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const vf f = _mm256_sub_ps(x, n);
    vf p = _mm256_set1_ps(1.525273380405984e-05f);
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.5403530393381608e-04f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.3333558146428443e-03f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(9.618129107628477e-03f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(5.550410866482158e-02f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(2.402265069591007e-01f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(6.931471805599453e-01f));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
  }
  static float row_max(const float* s) {
    __m256 m = _mm256_loadu_ps(s);
    for (std::int64_t t = 8; t < attn_core::kTile; t += 8) m = _mm256_max_ps(_mm256_loadu_ps(s + t), m);
    return hmax(m);
  }
  static float row_exp2(float* s, float m) {
    __m256 sum = _mm256_setzero_ps();
    const __m256 mv = _mm256_set1_ps(m);
    for (std::int64_t t = 0; t < attn_core::kTile; t += 8) {
      const __m256 e = exp2(_mm256_sub_ps(_mm256_loadu_ps(s + t), mv));
      _mm256_storeu_ps(s + t, e);
      sum = _mm256_add_ps(sum, e);
    }
    return hsum(sum);
  }
  static void scale(float* p, float f, std::int64_t n) {
    const __m256 fv = _mm256_set1_ps(f);
    for (std::int64_t i = 0; i < n; i += 8) _mm256_storeu_ps(p + i, _mm256_mul_ps(_mm256_loadu_ps(p + i), fv));
  }
  static void axpy(float* y, const float* x, float a, std::int64_t n) {
    const __m256 av = _mm256_set1_ps(a);
    for (std::int64_t i = 0; i < n; i += 8)
      _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  }
  static void dequant(dtype dt, const void* src, float sc, float* dst, std::int64_t n) {
    switch (dt) {
      case dtype::fp32: {
        const auto* s = static_cast<const float*>(src);
        for (std::int64_t i = 0; i < n; i += 8) _mm256_storeu_ps(dst + i, _mm256_loadu_ps(s + i));
        break;
      }
      case dtype::bf16: {
        const auto* s = static_cast<const bf16_t*>(src);
        for (std::int64_t i = 0; i < n; i += 8) {
          const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i)));
          _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
        }
        break;
      }
      case dtype::int8: {
        const auto* s = static_cast<const std::int8_t*>(src);
        const __m256 scv = _mm256_set1_ps(sc);
        for (std::int64_t i = 0; i < n; i += 8) {
          const __m256i w = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(s + i)));
          _mm256_storeu_ps(dst + i, _mm256_mul_ps(_mm256_cvtepi32_ps(w), scv));
        }
        break;
      }
      case dtype::fp8: {
        // Same e4m3 -> fp16 (x 2^-8) bit move as the AVX-512 path, converted with F16C.
        const auto* s = static_cast<const fp8_t*>(src);
        const __m256 scv = _mm256_set1_ps(sc * 256.0f);
        const __m128i lo7 = _mm_set1_epi16(0x7f), sign = _mm_set1_epi16(0x80);
        const __m256 nan = _mm256_set1_ps(std::numeric_limits<float>::quiet_NaN());
        for (std::int64_t i = 0; i < n; i += 8) {
          const __m128i x = _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(s + i)));
          const __m128i mag = _mm_and_si128(x, lo7);
          const __m128i h = _mm_or_si128(_mm_slli_epi16(mag, 7), _mm_slli_epi16(_mm_and_si128(x, sign), 8));
          const __m256 v = _mm256_mul_ps(_mm256_cvtph_ps(h), scv);
          const __m256 is_nan = _mm256_castsi256_ps(_mm256_cvtepi16_epi32(_mm_cmpeq_epi16(mag, lo7)));
          _mm256_storeu_ps(dst + i, _mm256_blendv_ps(v, nan, is_nan));
        }
        break;
      }
    }
  }
};

}  // namespace

void execute_avx2(const attention_desc& d, const attention_args& a, int stage, int ithr, int nthr) {
  attn_core::execute<avx2_simd>(d, a, stage, ithr, nthr);
}

}  // namespace infermark::attn_isa
