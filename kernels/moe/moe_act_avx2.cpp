// The expert activation (moe_act.hpp) with AVX2+FMA intrinsics; called only after run-time dispatch.
#include <immintrin.h>

#include "kernels/moe/moe_act.hpp"
#include "kernels/moe/moe_internal.hpp"

namespace infermark::moe_detail {
namespace {

// exp(x) for x in float range: 2^n * p(r), x = n ln2 + r, |r| <= ln2/2, p the degree-6 Taylor
// polynomial (Cephes expf coefficients); inputs are clamped so 2^n stays finite.
inline __m256 vexp(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.0f)), _mm256_set1_ps(88.0f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  return _mm256_mul_ps(p, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23)));
}

inline __m256 vact(moe_activation act, __m256 g, __m256 u) {
  const __m256 one = _mm256_set1_ps(1.0f);
  if (act == moe_activation::swiglu)
    return _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(one, vexp(_mm256_sub_ps(_mm256_setzero_ps(), g)))), u);
  g = _mm256_min_ps(g, _mm256_set1_ps(7.0f));
  u = _mm256_min_ps(_mm256_max_ps(u, _mm256_set1_ps(-7.0f)), _mm256_set1_ps(7.0f));
  const __m256 s = _mm256_div_ps(g, _mm256_add_ps(one, vexp(_mm256_mul_ps(g, _mm256_set1_ps(-1.702f)))));
  return _mm256_mul_ps(s, _mm256_add_ps(u, one));
}

}  // namespace

void act_tile_avx2(moe_activation act, const float* gate, const float* up, std::int64_t m, std::int64_t w,
                     float* dst, std::int64_t ld) {
  constexpr std::int64_t L = 8;
  for (std::int64_t i = 0; i < m; ++i) {
    const float* g = gate + i * w;
    const float* u = up + i * w;
    float* o = dst + i * ld;
    std::int64_t j = 0;
    for (; j + L <= w; j += L) _mm256_storeu_ps(o + j, vact(act, _mm256_loadu_ps(g + j), _mm256_loadu_ps(u + j)));
    for (; j < w; ++j) o[j] = activate(act, g[j], u[j]);  // tail: the scalar form
  }
}

}  // namespace infermark::moe_detail
