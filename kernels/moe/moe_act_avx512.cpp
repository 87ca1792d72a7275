// The expert activation (moe_act.hpp) with AVX-512 intrinsics; called only after run-time dispatch.
// GCC 12's AVX-512 headers trip -Wmaybe-uninitialized on their own _mm512_undefined_ps (GCC bug 105593).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include "kernels/moe/moe_act.hpp"
#include "kernels/moe/moe_internal.hpp"

namespace infermark::moe_detail {
namespace {

// exp(x) for x in float range: 2^n * p(r), x = n ln2 + r, |r| <= ln2/2, p the degree-6 Taylor
// polynomial (Cephes expf coefficients); inputs are clamped so 2^n stays finite.
inline __m512 vexp(__m512 x) {
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.0f)), _mm512_set1_ps(88.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(p, n);
}

inline __m512 vact(moe_activation act, __m512 g, __m512 u) {
  const __m512 one = _mm512_set1_ps(1.0f);
  if (act == moe_activation::swiglu)
    return _mm512_mul_ps(_mm512_div_ps(g, _mm512_add_ps(one, vexp(_mm512_sub_ps(_mm512_setzero_ps(), g)))), u);
  g = _mm512_min_ps(g, _mm512_set1_ps(7.0f));
  u = _mm512_min_ps(_mm512_max_ps(u, _mm512_set1_ps(-7.0f)), _mm512_set1_ps(7.0f));
  const __m512 s = _mm512_div_ps(g, _mm512_add_ps(one, vexp(_mm512_mul_ps(g, _mm512_set1_ps(-1.702f)))));
  return _mm512_mul_ps(s, _mm512_add_ps(u, one));
}

}  // namespace

void act_tile_avx512(moe_activation act, const float* gate, const float* up, std::int64_t m, std::int64_t w,
                     float* dst, std::int64_t ld) {
  constexpr std::int64_t L = 16;
  for (std::int64_t i = 0; i < m; ++i) {
    const float* g = gate + i * w;
    const float* u = up + i * w;
    float* o = dst + i * ld;
    std::int64_t j = 0;
    for (; j + L <= w; j += L) _mm512_storeu_ps(o + j, vact(act, _mm512_loadu_ps(g + j), _mm512_loadu_ps(u + j)));
    for (; j < w; ++j) o[j] = activate(act, g[j], u[j]);  // tail: the scalar form
  }
}

}  // namespace infermark::moe_detail
