// bf16 / int8 / fp8 GEMM microkernels for AVX2+FMA, 6 rows x 16 columns like the fp32 kernel. AVX2
// has no bf16/fp8 arithmetic: weights are widened to fp32 in registers (bf16: a 16-bit shift; e4m3:
// shift/mask/multiply) and the source rows are converted to fp32 once when packed. int8 sign-extends
// k pairs to 16 bits and uses vpmaddwd (exact: |pair sum| <= 2 * 128 * 128), int32 accumulation;
// partial sums live in dst between k blocks and the last block applies the scales.
#include <immintrin.h>

#include "kernels/gemm/gemm_driver.hpp"
#include "kernels/gemm/gemm_kernels.hpp"

namespace infermark::gemm_detail {
namespace {

inline __m256i lane_mask(int nr) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(nr), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

inline __m256 bf16x8_to_f32(const bf16_t* p) {
  return _mm256_castsi256_ps(
      _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16));
}
inline __m256 fp8x8_to_f32(const fp8_t* p) {
  const __m256i x = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
  const __m256i em = _mm256_and_si256(_mm256_slli_epi32(x, 20), _mm256_set1_epi32(0x07f00000));
  const __m256 mag = _mm256_mul_ps(_mm256_castsi256_ps(em), _mm256_set1_ps(0x1p120f));
  const __m256i sign = _mm256_and_si256(_mm256_slli_epi32(x, 24), _mm256_set1_epi32(static_cast<int>(0x80000000u)));
  return _mm256_or_ps(mag, _mm256_castsi256_ps(sign));
}

// bf16 and fp8: fp32 source panels, weights widened per k step; fp8 scales each 128-k block's sum.
template <dtype DT>
struct widen_avx2 {
  using b_t = std::conditional_t<DT == dtype::bf16, bf16_t, fp8_t>;
  static constexpr std::int64_t MR = 6, NR = 16;
  static constexpr std::int64_t KC = DT == dtype::fp8 ? fp8_kc : 256;
  static constexpr std::int64_t MC = 192;
  using a_t = float;
  static constexpr bool packs_a = true;
  static std::int64_t a_panel_elems(std::int64_t kc) { return MR * kc; }
  static std::int64_t b_panel_bytes(std::int64_t kc) { return kc * NR * static_cast<std::int64_t>(sizeof(b_t)); }
  static float cvt(b_t v) {
    if constexpr (DT == dtype::bf16) return bf16_to_f32(v);
    else return fp8_to_f32_fast(v);
  }
  static void pack_a(const gemm_desc& d, const gemm_args& a, std::int64_t i0, std::int64_t mc,
                     std::int64_t p0, std::int64_t kc, float* buf) {
    pack_rows_f32<MR>(static_cast<const b_t*>(a.src), d.k, i0, mc, p0, kc, buf, cvt);
  }
  static const b_t* b_panel(const gemm_desc& d, const void* packed, std::int64_t jp, std::int64_t p0) {
    return static_cast<const b_t*>(packed) + lowp_offset(d, NR, 1, jp, p0);
  }

  template <int mr>
  static void tile(std::int64_t kc, const float* a, const b_t* b, float* c, std::int64_t ldc, int nr,
                   const gemm_desc& d, const gemm_args& args, const tile_pos& t) {
    __m256 acc0[mr], acc1[mr];
    for (int i = 0; i < mr; ++i) acc0[i] = acc1[i] = _mm256_setzero_ps();
#pragma GCC unroll 2
    for (std::int64_t p = 0; p < kc; ++p) {
      __m256 b0, b1;
      if constexpr (DT == dtype::bf16) b0 = bf16x8_to_f32(b), b1 = bf16x8_to_f32(b + 8);
      else b0 = fp8x8_to_f32(b), b1 = fp8x8_to_f32(b + 8);
#pragma GCC unroll 8
      for (int i = 0; i < mr; ++i) {
        const __m256 av = _mm256_broadcast_ss(a + i);
        acc0[i] = _mm256_fmadd_ps(av, b0, acc0[i]);
        acc1[i] = _mm256_fmadd_ps(av, b1, acc1[i]);
      }
      a += MR;
      b += NR;
    }
    __m256 s = _mm256_set1_ps(1.0f);
    std::int64_t kb = 0, blk = 0;
    float ws = 1.0f;
    if constexpr (DT == dtype::fp8) {
      kb = ceil_div(d.k, gemm_fp8_block), blk = t.p0 / gemm_fp8_block;
      ws = args.wei_scale[(t.j0 / gemm_fp8_block) * kb + blk];  // NR divides the block
    }
    const __m256i k0 = lane_mask(nr < 8 ? nr : 8), k1 = lane_mask(nr > 8 ? nr - 8 : 0);
    for (int i = 0; i < mr; ++i) {
      float* ci = c + i * ldc;
      if constexpr (DT == dtype::fp8) s = _mm256_set1_ps(args.src_scale[(t.i0 + i) * kb + blk] * ws);
      const __m256 p0 = t.first ? _mm256_setzero_ps() : _mm256_maskload_ps(ci, k0);
      const __m256 p1 = t.first ? _mm256_setzero_ps() : _mm256_maskload_ps(ci + 8, k1);
      _mm256_maskstore_ps(ci, k0, _mm256_fmadd_ps(acc0[i], s, p0));
      _mm256_maskstore_ps(ci + 8, k1, _mm256_fmadd_ps(acc1[i], s, p1));
    }
  }
  static void ukr(int mr, std::int64_t kc, const float* a, const b_t* b, float* c, std::int64_t ldc, int nr,
                  const gemm_desc& d, const gemm_args& args, const tile_pos& t) {
    INFERMARK_MR_SWITCH(kc, a, b, c, ldc, nr, d, args, t)
  }
};

struct int8_avx2 {
  static constexpr std::int64_t MR = 6, NR = int8_avx2_layout.nr;
  static constexpr std::int64_t KC = 512;  // even: pairs never straddle k blocks
  static constexpr std::int64_t MC = 192;
  // One int32 per source k pair: two sign-extended int16 halves, the operand vpmaddwd wants.
  using a_t = std::int32_t;
  static constexpr bool packs_a = true;
  static std::int64_t a_panel_elems(std::int64_t kc) { return MR * ceil_div(kc, 2); }
  static std::int64_t b_panel_bytes(std::int64_t kc) { return kc * NR; }
  static void pack_a(const gemm_desc& d, const gemm_args& a, std::int64_t i0, std::int64_t mc,
                     std::int64_t p0, std::int64_t kc, std::int32_t* buf) {
    const auto* src = static_cast<const std::int8_t*>(a.src);
    const std::int64_t pairs = ceil_div(kc, 2);
    for (std::int64_t ir = 0; ir < mc; ir += MR) {
      const std::int64_t mr = std::min(MR, mc - ir);
      std::int32_t* out = buf + (ir / MR) * MR * pairs;
      for (std::int64_t i = 0; i < MR; ++i) {
        const std::int8_t* row = src + (i0 + ir + i) * d.k + p0;
        for (std::int64_t q = 0; q < pairs; ++q) {
          const std::int16_t lo = i < mr ? row[2 * q] : 0;
          const std::int16_t hi = (i < mr && 2 * q + 1 < kc) ? row[2 * q + 1] : 0;
          out[q * MR + i] = static_cast<std::int32_t>(static_cast<std::uint16_t>(lo) |
                                                      (static_cast<std::uint32_t>(static_cast<std::uint16_t>(hi)) << 16));
        }
      }
    }
  }
  static const std::int8_t* b_panel(const gemm_desc& d, const void* packed, std::int64_t jp, std::int64_t p0) {
    return static_cast<const std::int8_t*>(packed) + lowp_offset(d, NR, 2, jp, p0);
  }

  template <int mr>
  static void tile(std::int64_t kc, const std::int32_t* a, const std::int8_t* b, float* c, std::int64_t ldc,
                   int nr, const gemm_desc&, const gemm_args& args, const tile_pos& t) {
    __m256i acc0[mr], acc1[mr];
    for (int i = 0; i < mr; ++i) acc0[i] = acc1[i] = _mm256_setzero_si256();
    const std::int64_t pairs = ceil_div(kc, 2);
#pragma GCC unroll 2
    for (std::int64_t q = 0; q < pairs; ++q) {
      // 32 bytes = 16 columns x (k, k+1): columns 0-7 then 8-15, widened to int16 pairs.
      const __m256i b0 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b)));
      const __m256i b1 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 16)));
#pragma GCC unroll 8
      for (int i = 0; i < mr; ++i) {
        const __m256i av = _mm256_set1_epi32(a[i]);
        acc0[i] = _mm256_add_epi32(acc0[i], _mm256_madd_epi16(av, b0));
        acc1[i] = _mm256_add_epi32(acc1[i], _mm256_madd_epi16(av, b1));
      }
      a += MR;
      b += 2 * NR;
    }
    const __m256i k0 = lane_mask(nr < 8 ? nr : 8), k1 = lane_mask(nr > 8 ? nr - 8 : 0);
    for (int i = 0; i < mr; ++i) {
      float* ci = c + i * ldc;
      __m256i s0 = acc0[i], s1 = acc1[i];
      if (!t.first) {
        s0 = _mm256_add_epi32(s0, _mm256_maskload_epi32(reinterpret_cast<const int*>(ci), k0));
        s1 = _mm256_add_epi32(s1, _mm256_maskload_epi32(reinterpret_cast<const int*>(ci + 8), k1));
      }
      if (t.last) {
        const __m256 ss = _mm256_set1_ps(args.src_scale[t.i0 + i]);
        const __m256 w0 = _mm256_maskload_ps(args.wei_scale + t.j0, k0);
        const __m256 w1 = _mm256_maskload_ps(args.wei_scale + t.j0 + 8, k1);
        _mm256_maskstore_ps(ci, k0, _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(s0), ss), w0));
        _mm256_maskstore_ps(ci + 8, k1, _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(s1), ss), w1));
      } else {
        _mm256_maskstore_epi32(reinterpret_cast<int*>(ci), k0, s0);
        _mm256_maskstore_epi32(reinterpret_cast<int*>(ci + 8), k1, s1);
      }
    }
  }
  static void ukr(int mr, std::int64_t kc, const std::int32_t* a, const std::int8_t* b, float* c,
                  std::int64_t ldc, int nr, const gemm_desc& d, const gemm_args& args, const tile_pos& t) {
    INFERMARK_MR_SWITCH(kc, a, b, c, ldc, nr, d, args, t)
  }
};

}  // namespace

void bf16_execute_avx2(const gemm_desc& d, const gemm_args& a, int ithr, int nthr) {
  drive<widen_avx2<dtype::bf16>>(d, a, ithr, nthr);
}
std::size_t bf16_workspace_avx2(const gemm_desc& d, int nthr) { return drive_workspace<widen_avx2<dtype::bf16>>(d, nthr); }
void int8_execute_avx2(const gemm_desc& d, const gemm_args& a, int ithr, int nthr) {
  drive<int8_avx2>(d, a, ithr, nthr);
}
std::size_t int8_workspace_avx2(const gemm_desc& d, int nthr) { return drive_workspace<int8_avx2>(d, nthr); }
void fp8_execute_avx2(const gemm_desc& d, const gemm_args& a, int ithr, int nthr) {
  drive<widen_avx2<dtype::fp8>>(d, a, ithr, nthr);
}
std::size_t fp8_workspace_avx2(const gemm_desc& d, int nthr) { return drive_workspace<widen_avx2<dtype::fp8>>(d, nthr); }

}  // namespace infermark::gemm_detail
