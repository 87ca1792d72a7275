// fp32 GEMM microkernel for AVX-512: 6 rows x 64 columns (24 zmm accumulators, 4 weight vectors, one
// broadcast source element), the shape oneDNN's brgemm uses. Source rows are read in place, not packed:
// 6 rows at a 4 KiB-multiple stride still fit the 8 ways of one L1 set (12 rows would thrash it), and
// skipping the pack saves a pass over src per call.
#include <immintrin.h>

#include "kernels/gemm/gemm_driver.hpp"
#include "kernels/gemm/gemm_kernels.hpp"

namespace infermark::gemm_detail {
namespace {

struct fp32_avx512 {
  static constexpr std::int64_t MR = 6, NR = fp32_nr_avx512;
  // KC x NR weights = 256 KiB and MC x KC source = 1 MiB, in L2 (1 MiB on Zen 4, 2 MiB here) while the
  // worker's weight panels pass by; KC divides the expert reductions (2048, 7168) into equal blocks and
  // few blocks mean few dst passes. Measured side by side (2 threads, Zen 4, two runs each, GFLOP/s;
  // KC/MC 384/384, 512/384, 512/252, 1024/192): m2048n7168k2048 202-215, 136-211, 209-214, 218-219;
  // m2048n2048k7168 215, 215-216, 215-218, 221 (oneDNN 221-226 in the same runs); m256n7168k2048 all
  // within 213-218.
  // MC 258 (one row block for a worker's 256 rows, so each weight micro-panel is streamed once per k
  // block instead of for a 192- and a 64-row block; 1 MiB of source, in the 2 MiB L2 of the Sapphire-
  // Rapids-class host): alternating builds there, 2 threads, MC 192 / 258: m256n2048k7168 286-300 /
  // 308-314, m256n7168k2048 298 / 314, m256n4096k7168 293-301 / 307-310 GFLOP/s (oneDNN 302-322 in the
  // same runs); the M = 2048 shapes within noise (1.02-1.04x oneDNN with 258).
  static constexpr std::int64_t KC = 1024;
  static constexpr std::int64_t MC = 258;
  using a_t = float;
  static constexpr bool packs_a = false;
  static std::int64_t b_panel_bytes(std::int64_t kc) { return kc * NR * 4; }
  static const float* b_panel(const gemm_desc& d, const void* packed, std::int64_t jp, std::int64_t p0) {
    return static_cast<const float*>(packed) + jp * NR * d.k + p0 * NR;
  }

  static constexpr int NV = NR / 16;  // zmm vectors per row

  template <int mr>
  static void tile(std::int64_t kc, const float* a, std::int64_t lda, const float* b, float* c,
                   std::int64_t ldc, int nr, bool first) {
    __m512 acc[mr][NV];
#pragma GCC unroll 16
    for (int i = 0; i < mr; ++i)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_ps();
    if (!first) {
      // The dst tile is read after the k loop: start fetching it now so the loads do not stall.
#pragma GCC unroll 16
      for (int i = 0; i < mr; ++i)
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v)
          _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + 16 * v), _MM_HINT_T0);
    }
#pragma GCC unroll 2
    for (std::int64_t p = 0; p < kc; ++p) {
      __m512 bv[NV];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) bv[v] = _mm512_loadu_ps(b + 16 * v);
#pragma GCC unroll 16
      for (int i = 0; i < mr; ++i) {
        const __m512 av = _mm512_set1_ps(a[i * lda]);
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_fmadd_ps(av, bv[v], acc[i][v]);
      }
      a += 1;
      b += NR;
    }
    __mmask16 mask[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      const int left = nr - 16 * v;
      mask[v] = left >= 16 ? __mmask16(0xffff) : left <= 0 ? __mmask16(0) : __mmask16((1u << left) - 1);
    }
#pragma GCC unroll 16
    for (int i = 0; i < mr; ++i) {
      float* ci = c + i * ldc;
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) {
        if (!first) acc[i][v] = _mm512_add_ps(acc[i][v], _mm512_maskz_loadu_ps(mask[v], ci + 16 * v));
        _mm512_mask_storeu_ps(ci + 16 * v, mask[v], acc[i][v]);
      }
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

void fp32_execute_avx512(const gemm_desc& d, const gemm_args& a, int ithr, int nthr) {
  drive<fp32_avx512>(d, a, ithr, nthr);
}
std::size_t fp32_workspace_avx512(const gemm_desc& d, int nthr) { return drive_workspace<fp32_avx512>(d, nthr); }

}  // namespace infermark::gemm_detail
