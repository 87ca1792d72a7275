// Shared pieces of the AVX-512 low-precision GEMM microkernels (internal linkage; included only by
// translation units compiled with AVX-512 flags: gemm_lowp_avx512.cpp, gemm_fp8_avx512vbmi.cpp).
#pragma once
#include <immintrin.h>

#include "kernels/gemm/gemm_driver.hpp"
#include "kernels/gemm/gemm_kernels.hpp"

// GCC 12 false positive (bug 105593): the AVX-512 shift intrinsics' internal _mm512_undefined operand
// is reported as "maybe uninitialized" once inlined.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

// For the per-row steps of the microkernel loops (conversions, row lambdas): GCC otherwise keeps some
// out of line once a loop calls them from two places, and each call then passes the converted rows and
// the accumulators through memory and reloads the conversion tables (seen in the fp8 kernel's code).
#define INFERMARK_ROW_INLINE __attribute__((always_inline))

namespace infermark::gemm_detail {
namespace {

constexpr int NV = 4;  // zmm vectors per 64-column row

inline std::uint32_t load_u32(const void* p) {
  std::uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

inline void col_masks(int nr, __mmask16 (&mask)[NV]) {
  for (int v = 0; v < NV; ++v) {
    const int left = nr - 16 * v;
    mask[v] = left >= 16 ? __mmask16(0xffff) : left <= 0 ? __mmask16(0) : __mmask16((1u << left) - 1);
  }
}

// Stores float accumulators to the dst tile (adding the previous contents unless first).
template <int mr>
inline void store_f32(__m512 (&acc)[mr][NV], float* c, std::int64_t ldc, int nr, bool first) {
  __mmask16 mask[NV];
  col_masks(nr, mask);
#pragma GCC unroll 8
  for (int i = 0; i < mr; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      float* ci = c + i * ldc + 16 * v;
      if (!first) acc[i][v] = _mm512_add_ps(acc[i][v], _mm512_maskz_loadu_ps(mask[v], ci));
      _mm512_mask_storeu_ps(ci, mask[v], acc[i][v]);
    }
}

// The dst tile is read after the k loop (partial sums of earlier k blocks): start fetching it now so
// those loads do not stall (dst of a large problem lives in L3, not L2).
template <int mr>
inline void prefetch_dst(const float* c, std::int64_t ldc, bool first) {
  if (first) return;
#pragma GCC unroll 8
  for (int i = 0; i < mr; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + 16 * v), _MM_HINT_T0);
}

// acc[i][:] += sum over `pairs` k pairs of vdpbf16ps(source pair (i, q), weight pair row q): the loop the
// bf16 and fp8 kernels share. a_pair(i, q) returns row i's pair q as one dword (two bf16);
// b_row(q, bv) sets bv[0..3] to weight pair row q as bf16 [NR][2] (a load, or a load and a conversion).
template <int mr, class APair, class BRow>
inline void bf16_pair_dots(__m512 (&acc)[mr][NV], std::int64_t pairs, APair a_pair, BRow b_row) {
#pragma GCC unroll 2
  for (std::int64_t q = 0; q < pairs; ++q) {
    __m512i bv[NV];
    b_row(q, bv);
#pragma GCC unroll 8
    for (int i = 0; i < mr; ++i) {
      const __m512i av = _mm512_set1_epi32(static_cast<int>(a_pair(i, q)));
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_dpbf16_ps(acc[i][v], (__m512bh)av, (__m512bh)bv[v]);
    }
  }
}

// b_row for bf16 weight rows stored as [pair][64][2].
inline auto bf16_rows(const bf16_t* b) {
  return [b](std::int64_t q, __m512i (&bv)[NV]) INFERMARK_ROW_INLINE {
    for (int v = 0; v < NV; ++v) bv[v] = _mm512_loadu_si512(b + q * 128 + 32 * v);
  };
}

// fp8 epilogue: one k block is one 128-wide scale block, so the block's sums are scaled once,
// dst += sum x src_scale[row][block] x wei_scale[column block][block] x frame (a power of two undoing a
// kernel's scaling of its products).
template <int mr>
INFERMARK_ROW_INLINE inline void fp8_store_scaled(__m512 (&acc)[mr][NV], float* c, std::int64_t ldc, int nr, const gemm_desc& d,
                                                  const gemm_args& args, const tile_pos& t, float frame = 1.0f) {
  const std::int64_t kb = ceil_div(d.k, gemm_fp8_block), blk = t.p0 / gemm_fp8_block;
  const float ws = args.wei_scale[(t.j0 / gemm_fp8_block) * kb + blk];  // NR divides the block
  __mmask16 mask[NV];
  col_masks(nr, mask);
  for (int i = 0; i < mr; ++i) {
    const __m512 s = _mm512_set1_ps(args.src_scale[(t.i0 + i) * kb + blk] * ws * frame);
    for (int v = 0; v < NV; ++v) {
      float* ci = c + i * ldc + 16 * v;
      const __m512 prev = t.first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(mask[v], ci);
      _mm512_mask_storeu_ps(ci, mask[v], _mm512_fmadd_ps(acc[i][v], s, prev));
    }
  }
}

}  // namespace
}  // namespace infermark::gemm_detail
