// fp32 GEMM microkernel for AVX2+FMA: 6 rows x 16 columns (12 ymm accumulators, 2 weight vectors, one
// broadcast: 15 of the 16 ymm registers), the BLIS haswell shape. Source rows are read in place (6 rows
// fit one L1 set's ways even at a 4 KiB-multiple stride), so nothing is packed per call.
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
  static constexpr bool packs_a = false;
  static std::int64_t b_panel_bytes(std::int64_t kc) { return kc * NR * 4; }
  static const float* b_panel(const gemm_desc& d, const void* packed, std::int64_t jp, std::int64_t p0) {
    return static_cast<const float*>(packed) + jp * NR * d.k + p0 * NR;
  }

  template <int mr>
  static void tile(std::int64_t kc, const float* a, std::int64_t lda, const float* b, float* c,
                   std::int64_t ldc, int nr, bool first) {
    __m256 acc0[mr], acc1[mr];
#pragma GCC unroll 8
    for (int i = 0; i < mr; ++i) acc0[i] = acc1[i] = _mm256_setzero_ps();
#pragma GCC unroll 2
    for (std::int64_t p = 0; p < kc; ++p) {
      const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
#pragma GCC unroll 8
      for (int i = 0; i < mr; ++i) {
        const __m256 av = _mm256_broadcast_ss(a + i * lda);
        acc0[i] = _mm256_fmadd_ps(av, b0, acc0[i]);
        acc1[i] = _mm256_fmadd_ps(av, b1, acc1[i]);
      }
      a += 1;
      b += NR;
    }
    if (nr == NR) {
#pragma GCC unroll 8
      for (int i = 0; i < mr; ++i) {
        float* ci = c + i * ldc;
        if (!first) {
          acc0[i] = _mm256_add_ps(acc0[i], _mm256_loadu_ps(ci));
          acc1[i] = _mm256_add_ps(acc1[i], _mm256_loadu_ps(ci + 8));
        }
        _mm256_storeu_ps(ci, acc0[i]);
        _mm256_storeu_ps(ci + 8, acc1[i]);
      }
      return;
    }
    const __m256i k0 = lane_mask(nr < 8 ? nr : 8), k1 = lane_mask(nr > 8 ? nr - 8 : 0);
#pragma GCC unroll 8
    for (int i = 0; i < mr; ++i) {
      float* ci = c + i * ldc;
      if (!first) {
        acc0[i] = _mm256_add_ps(acc0[i], _mm256_maskload_ps(ci, k0));
        acc1[i] = _mm256_add_ps(acc1[i], _mm256_maskload_ps(ci + 8, k1));
      }
      _mm256_maskstore_ps(ci, k0, acc0[i]);
      _mm256_maskstore_ps(ci + 8, k1, acc1[i]);
    }
  }

  static void ukr(int mr, std::int64_t kc, const float* a, const float* b, float* c, std::int64_t ldc,
                  int nr, const gemm_desc& d, const gemm_args&, const tile_pos& t) {
    switch (mr) {
      case 6: return tile<6>(kc, a, d.k, b, c, ldc, nr, t.first);
      case 5: return tile<5>(kc, a, d.k, b, c, ldc, nr, t.first);
      case 4: return tile<4>(kc, a, d.k, b, c, ldc, nr, t.first);
      case 3: return tile<3>(kc, a, d.k, b, c, ldc, nr, t.first);
      case 2: return tile<2>(kc, a, d.k, b, c, ldc, nr, t.first);
      default: return tile<1>(kc, a, d.k, b, c, ldc, nr, t.first);
    }
  }
};

}  // namespace

void fp32_execute_avx2(const gemm_desc& d, const gemm_args& a, int ithr, int nthr) {
  drive<fp32_avx2>(d, a, ithr, nthr);
}
std::size_t fp32_workspace_avx2(const gemm_desc& d, int nthr) { return drive_workspace<fp32_avx2>(d, nthr); }

}  // namespace infermark::gemm_detail
