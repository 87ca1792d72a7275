// fp32 GEMM microkernel for AVX2+FMA: 6 rows x 16 columns (12 ymm accumulators, 2 weight vectors, one
// broadcast: 15 of the 16 ymm registers), the BLIS haswell shape. Source rows are packed per row block
// into dense [k][mr] micro-panels (pack_rows_f32): read in place, a row block's MC x KC source at a row
// stride of k floats (a multiple of 4 KiB for the expert shapes) fell on a fraction of L2's sets and was
// re-read from L3 for every weight panel (2 threads, m256n2048k7168 against oneDNN in alternating runs:
// 81 vs 50-63 GFLOP/s in place, 142-172 vs 68-79 packed).
#include <immintrin.h>

#include "kernels/gemm/gemm_driver.hpp"
#include "kernels/gemm/gemm_kernels.hpp"

namespace infermark::gemm_detail {
namespace {

// Lane masks for the first nr (0..8) lanes of a ymm vector.
inline __m256i lane_mask(int nr) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(nr), idx);
}

struct fp32_avx2 {
  static constexpr std::int64_t MR = 6, NR = fp32_nr_avx2;
  // KC x NR weights = 16 KiB and the 6 KiB source micro-panel fit L1d (32-48 KiB).
  static constexpr std::int64_t KC = 256;
  // MC x KC source rows = 192 KiB, inside L2.
  static constexpr std::int64_t MC = 192;
  using a_t = float;
  static constexpr bool packs_a = true;
  static std::int64_t a_panel_elems(std::int64_t kc) { return MR * kc; }
  static void pack_a(const gemm_desc& d, const gemm_args& a, std::int64_t i0, std::int64_t mc, std::int64_t p0,
                     std::int64_t kc, float* buf) {
    pack_rows_f32<MR>(static_cast<const float*>(a.src), d.k, i0, mc, p0, kc, buf, [](float v) { return v; });
  }
  static std::int64_t b_panel_bytes(std::int64_t kc) { return kc * NR * 4; }
  static const float* b_panel(const gemm_desc& d, const void* packed, std::int64_t jp, std::int64_t p0) {
    return static_cast<const float*>(packed) + jp * NR * d.k + p0 * NR;
  }

  // Decode with one row tile of one or two rows reads decode_streams(mr) weight panels in lockstep
  // (the driver's decode loop, ukr_streams): one sequential stream per core kept too few lines in
  // flight to reach the read bandwidth (see gemm_lowp_avx2.cpp). Each panel has one accumulator pair
  // per row whatever S is, so its sums do not depend on the panels beside it.
  static constexpr int decode_streams(int mr) { return lockstep_panels_16_regs(mr); }

  // a: the packed micro-panel, [k][mr]. S panels at b[s] (all NR wide when S > 1), dst columns at c[s].
  template <int mr, int S>
  static void tile(std::int64_t kc, const float* a, const float* const* bs, float* const* cs, std::int64_t ldc, int nr,
                   bool first) {
    __m256 acc[S][mr][2];
    for (int s = 0; s < S; ++s)
#pragma GCC unroll 8
      for (int i = 0; i < mr; ++i) acc[s][i][0] = acc[s][i][1] = _mm256_setzero_ps();
    const float* b[S];
    for (int s = 0; s < S; ++s) b[s] = bs[s];
#pragma GCC unroll 2
    for (std::int64_t p = 0; p < kc; ++p) {
      __m256 av[S > 1 ? mr : 1];
      if constexpr (S > 1)
        for (int i = 0; i < mr; ++i) av[i] = _mm256_broadcast_ss(a + i);
#pragma GCC unroll 4
      for (int s = 0; s < S; ++s) {
        const __m256 b0 = _mm256_loadu_ps(b[s]), b1 = _mm256_loadu_ps(b[s] + 8);
#pragma GCC unroll 8
        for (int i = 0; i < mr; ++i) {
          const __m256 ai = S > 1 ? av[i] : _mm256_broadcast_ss(a + i);
          acc[s][i][0] = _mm256_fmadd_ps(ai, b0, acc[s][i][0]);
          acc[s][i][1] = _mm256_fmadd_ps(ai, b1, acc[s][i][1]);
        }
        b[s] += NR;
      }
      a += mr;
    }
    for (int s = 0; s < S; ++s) {
      if (nr == NR) {
#pragma GCC unroll 8
        for (int i = 0; i < mr; ++i) {
          float* ci = cs[s] + i * ldc;
          if (!first) {
            acc[s][i][0] = _mm256_add_ps(acc[s][i][0], _mm256_loadu_ps(ci));
            acc[s][i][1] = _mm256_add_ps(acc[s][i][1], _mm256_loadu_ps(ci + 8));
          }
          _mm256_storeu_ps(ci, acc[s][i][0]);
          _mm256_storeu_ps(ci + 8, acc[s][i][1]);
        }
        continue;
      }
      const __m256i k0 = lane_mask(nr < 8 ? nr : 8), k1 = lane_mask(nr > 8 ? nr - 8 : 0);
#pragma GCC unroll 8
      for (int i = 0; i < mr; ++i) {
        float* ci = cs[s] + i * ldc;
        if (!first) {
          acc[s][i][0] = _mm256_add_ps(acc[s][i][0], _mm256_maskload_ps(ci, k0));
          acc[s][i][1] = _mm256_add_ps(acc[s][i][1], _mm256_maskload_ps(ci + 8, k1));
        }
        _mm256_maskstore_ps(ci, k0, acc[s][i][0]);
        _mm256_maskstore_ps(ci + 8, k1, acc[s][i][1]);
      }
    }
  }
  template <int mr>
  static void tile(std::int64_t kc, const float* a, const float* b, float* c, std::int64_t ldc, int nr, const gemm_desc&,
                   const gemm_args&, const tile_pos& t) {
    tile<mr, 1>(kc, a, &b, &c, ldc, nr, t.first);
  }

  static void ukr(int mr, std::int64_t kc, const float* a, const float* b, float* c, std::int64_t ldc,
                  int nr, const gemm_desc& d, const gemm_args& args, const tile_pos& t) {
    INFERMARK_MR_SWITCH(kc, a, b, c, ldc, nr, d, args, t)
  }
  static void ukr_streams(int mr, std::int64_t kc, const float* a, const float* const* b, float* const* c, std::int64_t ldc,
                          const gemm_desc&, const gemm_args&, const tile_pos& t, const std::int64_t*) {
    if (mr == 1) return tile<1, decode_streams(1)>(kc, a, b, c, ldc, NR, t.first);
    return tile<2, decode_streams(2)>(kc, a, b, c, ldc, NR, t.first);
  }
};

}  // namespace

void fp32_execute_avx2(const gemm_desc& d, const gemm_args& a, int ithr, int nthr) {
  drive<fp32_avx2>(d, a, ithr, nthr);
}
std::size_t fp32_workspace_avx2(const gemm_desc& d, int nthr) { return drive_workspace<fp32_avx2>(d, nthr); }

}  // namespace infermark::gemm_detail
