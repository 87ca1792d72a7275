// AVX-512 instantiation of the attention framework: 16-lane fp32, 16-accumulator Q.K^T tile reduced by
// one transpose-add tree, exp2 through vscalefps (exact 0 for masked scores), conversions of bf16 /
// int8 / fp8 e4m3 cache rows to fp32 in registers.
// GCC 12 flags the _mm512_undefined_*() inside its own intrinsics headers as uninitialized (false positive).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <cstring>

#include "kernels/attention/attention_core.hpp"
#include "kernels/attention/attention_isa.hpp"
#include "kernels/common/isa.hpp"

namespace infermark::attn_isa {
namespace {

struct avx512_simd {
  using vf = __m512;
  static constexpr int W = 16, kAcc = 16, kNV = 4;
  static constexpr bool kFast = true;  // the direct / broadcast paths of attention_core.hpp
  static vf zero() { return _mm512_setzero_ps(); }
  static vf load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, vf v) { _mm512_storeu_ps(p, v); }
  static vf set1(float x) { return _mm512_set1_ps(x); }
  static vf fma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
  static vf mul(vf a, vf b) { return _mm512_mul_ps(a, b); }
  static vf sub(vf a, vf b) { return _mm512_sub_ps(a, b); }
  static vf bcast32(const float* p) { return _mm512_set1_ps(*p); }  // a bit move (vbroadcastss): bf16 pairs survive
  static vf load_bits(const bf16_t* p) { return _mm512_loadu_ps(reinterpret_cast<const float*>(p)); }
  // acc + a.b over bf16 pairs (vdpbf16ps): the products are exact in fp32, the sums are fp32.
  static vf dp(vf acc, vf a, vf b) { return _mm512_dpbf16_ps(acc, (__m512bh)a, (__m512bh)b); }

  // 16 cache values converted in registers, unscaled (fp8: times 2^-8, see kv_factor).
  static vf cvt(const float* p) { return _mm512_loadu_ps(p); }
  static vf cvt(const bf16_t* p) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))), 16));
  }
  static vf cvt(const std::int8_t* p) {
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
  }
  static vf cvt(const fp8_t* p) {
    const __m256i x = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    const __m256i lo7 = _mm256_set1_epi16(0x7f);
    const __m256i mag = _mm256_and_si256(x, lo7);
    const __m256i h = _mm256_or_si256(_mm256_slli_epi16(mag, 7), _mm256_slli_epi16(_mm256_and_si256(x, _mm256_set1_epi16(0x80)), 8));
    return _mm512_mask_mov_ps(_mm512_cvtph_ps(h), _mm256_cmpeq_epi16_mask(mag, lo7), _mm512_set1_ps(std::numeric_limits<float>::quiet_NaN()));
  }
  static float kv_factor(dtype dt) { return dt == dtype::fp8 ? 256.0f : 1.0f; }
  // n (a multiple of 32) int8 / fp8 cache values -> bf16, exactly: cvt's values (fp8: times 2^-8) have at
  // most 8 significant bits.
  static void to_bf16(dtype dt, const void* src, std::int64_t n, bf16_t* dst) {
    auto run = [&](auto* p) {
      for (std::int64_t i = 0; i < n; i += 32)
        _mm512_storeu_si512(dst + i, (__m512i)_mm512_cvtne2ps_pbh(cvt(p + i + 16), cvt(p + i)));
    };
    if (dt == dtype::int8) run(static_cast<const std::int8_t*>(src));
    else run(static_cast<const fp8_t*>(src));
  }

  // Key pairs (2u, 2u+1) of n bf16 rows interleaved per 32 columns (32-bit lanes), lo then hi vector
  // (see pv_perm_col); a missing partner row is zero. Position p of pair u goes to
  // dst[(p / 16) * ldb + u * ldu + p % 16]: [u][dv] with (ldu, ldb) = (dv, 16), or blocks of 16 positions.
  static void pair_rows(const void* const* rows, std::int64_t n, std::int64_t dv, float* dst, std::int64_t ldu, std::int64_t ldb) {
    for (std::int64_t t = 0; t < n; t += 2) {
      float* o = dst + (t / 2) * ldu;
      for (std::int64_t c = 0; c < dv; c += 32) {
        const __m512i x = _mm512_loadu_si512(static_cast<const bf16_t*>(rows[t]) + c);
        const __m512i y = t + 1 < n ? _mm512_loadu_si512(static_cast<const bf16_t*>(rows[t + 1]) + c) : _mm512_setzero_si512();
        _mm512_storeu_si512(o + (c / 16) * ldb, _mm512_unpacklo_epi16(x, y));
        _mm512_storeu_si512(o + (c / 16 + 1) * ldb, _mm512_unpackhi_epi16(x, y));
      }
    }
  }
  // 32 fp32 probabilities -> 32 bf16 (round to nearest even), key order kept: pairs in 32-bit lanes.
  static void to_bf16_pairs(const float* p, float* dst) {
    const __m512bh h = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(p + 16), _mm512_loadu_ps(p));
    _mm512_storeu_ps(dst, (__m512)h);
  }

  // ---- row-lane path (attention_core.hpp, run_item_lanes): one query row per lane ----
  // The 32-bit element at p (a bf16 pair) in every lane; memcpy: p points into a bf16 buffer.
  // H = 2: the 64 bits at p (two adjacent pairs) in every 64-bit lane.
  template <int H>
  static vf bcast_pairs(const void* p) {
    if constexpr (H == 1) {
      std::uint32_t x;
      std::memcpy(&x, p, 4);
      return _mm512_castsi512_ps(_mm512_set1_epi32(static_cast<int>(x)));
    } else {
      static_assert(H == 2);
      std::uint64_t x;
      std::memcpy(&x, p, 8);
      return _mm512_castsi512_ps(_mm512_set1_epi64(static_cast<long long>(x)));
    }
  }
  // ---- two lanes per row (run_item_lanes<S, true>, softmax_pairs) ----
  // Lane 2r: a[2r] + a[2r + 1], lane 2r + 1: b[2r] + b[2r + 1] (two keys' halves summed, packed).
  static vf pack_pair(vf a, vf b) {
    return _mm512_mask_blend_ps(0xaaaa, _mm512_add_ps(a, _mm512_permute_ps(a, 0xb1)), _mm512_add_ps(b, _mm512_permute_ps(b, 0xb1)));
  }
  static vf pair_set(float even, float odd) { return _mm512_mask_blend_ps(0xaaaa, _mm512_set1_ps(even), _mm512_set1_ps(odd)); }
  static vf pair_max(vf x) { return _mm512_max_ps(x, _mm512_permute_ps(x, 0xb1)); }
  static vf odd_neg_inf(vf x) { return _mm512_mask_mov_ps(x, 0xaaaa, neg_inf()); }
  // x with -inf in the lanes l where key k + l % 2 is outside [lo[l], hi[l]].
  static vf mask_outside_pairs(vf x, std::int32_t k, const std::int32_t* lo, const std::int32_t* hi) {
    const __m512i kv = _mm512_add_epi32(_mm512_set1_epi32(k), _mm512_set_epi32(1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0));
    const __mmask16 in = _mm512_cmple_epi32_mask(_mm512_loadu_si512(lo), kv) & _mm512_cmple_epi32_mask(kv, _mm512_loadu_si512(hi));
    return _mm512_mask_mov_ps(neg_inf(), in, x);
  }
  // p0, p1 packed probabilities (lanes 2r, 2r + 1: row r's keys 2u, 2u + 1) -> row r's bf16 pair in lanes
  // 2r and 2r + 1 of dst0 (from p0) and dst1 (from p1).
  static void dup_pairs(vf p0, vf p1, float* dst0, float* dst1) {
    const __m512i h = (__m512i)_mm512_cvtne2ps_pbh(p1, p0);  // dword r: row r's pair of p0; dword 8 + r: of p1
    _mm512_storeu_si512(dst0, _mm512_permutexvar_epi32(_mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0), h));
    _mm512_storeu_si512(dst1, _mm512_permutexvar_epi32(_mm512_set_epi32(15, 15, 14, 14, 13, 13, 12, 12, 11, 11, 10, 10, 9, 9, 8, 8), h));
  }
  static vf max(vf a, vf b) { return _mm512_max_ps(a, b); }
  static vf add(vf a, vf b) { return _mm512_add_ps(a, b); }
  static vf neg_inf() { return _mm512_set1_ps(-std::numeric_limits<float>::infinity()); }
  // s with -inf in the lanes l where key k is outside [lo[l], hi[l]].
  static vf mask_outside(vf s, std::int32_t k, const std::int32_t* lo, const std::int32_t* hi) {
    const __m512i kv = _mm512_set1_epi32(k);
    const __mmask16 in = _mm512_cmple_epi32_mask(_mm512_loadu_si512(lo), kv) & _mm512_cmple_epi32_mask(kv, _mm512_loadu_si512(hi));
    return _mm512_mask_mov_ps(neg_inf(), in, s);
  }
  // m, with 0 where m is -inf (the reference point of rows that have seen no key yet).
  static vf finite_or_zero(vf m) { return _mm512_mask_mov_ps(m, _mm512_cmpeq_ps_mask(m, neg_inf()), _mm512_setzero_ps()); }
  static bool any_ne(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_NEQ_UQ) != 0; }
  // Lane l = (bf16(even[l]), bf16(odd[l])) rounded to nearest even: probabilities of a key pair per row.
  static vf pair_bf16(vf even, vf odd) {
    const __m512i h = (__m512i)_mm512_cvtne2ps_pbh(odd, even);  // words 0-15: even, 16-31: odd
    const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21, 5, 20, 4,
                                         19, 3, 18, 2, 17, 1, 16, 0);
    return _mm512_castsi512_ps(_mm512_permutexvar_epi16(idx, h));
  }

  // dst[e * ld + t] = rows[t][e0 + e] for 16 rows x 16 32-bit elements (fp32 values or bf16 pairs).
  static void transpose(const void* const* rows, std::int64_t e0, float* dst, std::int64_t ld) {
    __m512 r[16], t[16];
    for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(static_cast<const float*>(rows[i]) + e0);
    for (int i = 0; i < 16; i += 2) {
      t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
      t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
      const __m512d a0 = _mm512_castps_pd(t[i]), a1 = _mm512_castps_pd(t[i + 1]);
      const __m512d b0 = _mm512_castps_pd(t[i + 2]), b1 = _mm512_castps_pd(t[i + 3]);
      r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a0, b0));
      r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a0, b0));
      r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(a1, b1));
      r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(a1, b1));
    }
    // r[4g + c] holds, per 128-bit lane L, element 4L + c of rows 4g..4g+3.
    for (int c = 0; c < 4; ++c) {
      for (int g = 0; g < 4; g += 2) {
        t[4 * g / 2 + c] = _mm512_shuffle_f32x4(r[4 * g + c], r[4 * (g + 1) + c], 0x88);      // lanes 0,2 | 0,2
        t[4 * g / 2 + c + 8] = _mm512_shuffle_f32x4(r[4 * g + c], r[4 * (g + 1) + c], 0xdd);  // lanes 1,3 | 1,3
      }
    }
    // t[g2*4 + c] (g2 = 0: rows 0-7, 1: rows 8-15) for lanes {0,2}; t[8 + ...] for lanes {1,3}.
    for (int c = 0; c < 4; ++c) {
      for (int half = 0; half < 2; ++half) {  // half 0: lanes {0,2} -> elements c, 8 + c; half 1: 4 + c, 12 + c
        const __m512 lo = t[8 * half + c], hi = t[8 * half + 4 + c];
        _mm512_storeu_ps(dst + (4 * half + c) * ld, _mm512_shuffle_f32x4(lo, hi, 0x88));
        _mm512_storeu_ps(dst + (8 + 4 * half + c) * ld, _mm512_shuffle_f32x4(lo, hi, 0xdd));
      }
    }
  }

  // out[j] = horizontal sum of v[j], j < 16: pairwise unpack/add inside 128-bit lanes, then across lanes.
  static void reduce(const vf* v, float* out) {
    __m512 t[8], u[4];
    for (int i = 0; i < 8; ++i)
      t[i] = _mm512_add_ps(_mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]), _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]));
    for (int i = 0; i < 4; ++i) {
      const __m512d a = _mm512_castps_pd(t[2 * i]), b = _mm512_castps_pd(t[2 * i + 1]);
      u[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(a, b)), _mm512_castpd_ps(_mm512_unpackhi_pd(a, b)));
    }
    const __m512 x01 = _mm512_add_ps(_mm512_shuffle_f32x4(u[0], u[1], 0x88), _mm512_shuffle_f32x4(u[0], u[1], 0xdd));
    const __m512 x23 = _mm512_add_ps(_mm512_shuffle_f32x4(u[2], u[3], 0x88), _mm512_shuffle_f32x4(u[2], u[3], 0xdd));
    _mm512_store_ps(out, _mm512_add_ps(_mm512_shuffle_f32x4(x01, x23, 0x88), _mm512_shuffle_f32x4(x01, x23, 0xdd)));
  }

  // 2^x for x <= 0 (or NaN): degree-7 polynomial on [-0.5, 0.5] (rel. error ~5e-9 before rounding),
  // scaled by 2^n; x = -inf clamps to -200 whose 2^-200 flushes to exactly 0.
  static vf exp2(vf x) {
    x = _mm512_max_ps(_mm512_set1_ps(-200.0f), x);  // NaN in x is kept (second operand wins)
    const vf n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const vf f = _mm512_sub_ps(x, n);
    vf p = _mm512_set1_ps(1.525273380405984e-05f);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.5403530393381608e-04f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.3333558146428443e-03f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.618129107628477e-03f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.550410866482158e-02f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.402265069591007e-01f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.931471805599453e-01f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
  }
  static float row_max(const float* s) {
    __m512 m = _mm512_loadu_ps(s);
    for (std::int64_t t = 16; t < attn_core::kTile; t += 16) m = _mm512_max_ps(_mm512_loadu_ps(s + t), m);
    return _mm512_reduce_max_ps(m);
  }
  static float row_exp2(float* s, float m) {
    __m512 sum = _mm512_setzero_ps();
    const __m512 mv = _mm512_set1_ps(m);
    for (std::int64_t t = 0; t < attn_core::kTile; t += 16) {
      const __m512 e = exp2(_mm512_sub_ps(_mm512_loadu_ps(s + t), mv));
      _mm512_storeu_ps(s + t, e);
      sum = _mm512_add_ps(sum, e);
    }
    return _mm512_reduce_add_ps(sum);
  }
  static void scale(float* p, float f, std::int64_t n) {
    const __m512 fv = _mm512_set1_ps(f);
    for (std::int64_t i = 0; i < n; i += 16) _mm512_storeu_ps(p + i, _mm512_mul_ps(_mm512_loadu_ps(p + i), fv));
  }
  static void axpy(float* y, const float* x, float a, std::int64_t n) {
    const __m512 av = _mm512_set1_ps(a);
    for (std::int64_t i = 0; i < n; i += 16)
      _mm512_storeu_ps(y + i, _mm512_fmadd_ps(av, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
  }
  static void dequant(dtype dt, const void* src, float sc, float* dst, std::int64_t n) {
    switch (dt) {
      case dtype::fp32: {
        const auto* s = static_cast<const float*>(src);
        for (std::int64_t i = 0; i < n; i += 16) _mm512_storeu_ps(dst + i, _mm512_loadu_ps(s + i));
        break;
      }
      case dtype::bf16: {
        const auto* s = static_cast<const bf16_t*>(src);
        for (std::int64_t i = 0; i < n; i += 16) {
          const __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + i)));
          _mm512_storeu_ps(dst + i, _mm512_castsi512_ps(_mm512_slli_epi32(w, 16)));
        }
        break;
      }
      case dtype::int8: {
        const auto* s = static_cast<const std::int8_t*>(src);
        const __m512 scv = _mm512_set1_ps(sc);
        for (std::int64_t i = 0; i < n; i += 16) {
          const __m512i w = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i)));
          _mm512_storeu_ps(dst + i, _mm512_mul_ps(_mm512_cvtepi32_ps(w), scv));
        }
        break;
      }
      case dtype::fp8: {
        // e4m3 -> fp16 by moving exponent+mantissa up 7 bits: the fp16 value is the e4m3 value times
        // 2^-8 for normals and subnormals alike, so one multiply by 256 (folded into the scale) fixes it.
        const auto* s = static_cast<const fp8_t*>(src);
        const __m512 scv = _mm512_set1_ps(sc * 256.0f);
        const __m256i lo7 = _mm256_set1_epi16(0x7f), sign = _mm256_set1_epi16(0x80);
        const __m512 nan = _mm512_set1_ps(std::numeric_limits<float>::quiet_NaN());
        for (std::int64_t i = 0; i < n; i += 16) {
          const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i));
          const __m256i x = _mm256_cvtepu8_epi16(b);
          const __m256i mag = _mm256_and_si256(x, lo7);
          const __m256i h = _mm256_or_si256(_mm256_slli_epi16(mag, 7), _mm256_slli_epi16(_mm256_and_si256(x, sign), 8));
          __m512 v = _mm512_mul_ps(_mm512_cvtph_ps(h), scv);
          const __mmask16 is_nan = _mm256_cmpeq_epi16_mask(mag, lo7);  // 0x7f / 0xff encode NaN
          v = _mm512_mask_mov_ps(v, is_nan, nan);
          _mm512_storeu_ps(dst + i, v);
        }
        break;
      }
    }
  }
};

}  // namespace

void execute_avx512(const attention_desc& d, const attention_args& a, int stage, int ithr, int nthr) {
  attn_core::execute<avx512_simd>(d, a, stage, ithr, nthr, {effective_features().avx512_bf16, false});
}

void execute_avx512_bf16dot(const attention_desc& d, const attention_args& a, int stage, int ithr, int nthr) {
  attn_core::execute<avx512_simd>(d, a, stage, ithr, nthr, {true, true});
}

}  // namespace infermark::attn_isa
