// fp32 GEMM microkernel for AArch64 Advanced SIMD: 8 rows x 12 columns (24 q-register accumulators,
// 3 weight vectors, 2 source vectors used lane by lane: 29 of the 32 registers), the BLIS armv8a shape.
#include <arm_neon.h>

#include "kernels/gemm/gemm_driver.hpp"
#include "kernels/gemm/gemm_kernels.hpp"

namespace infermark::gemm_detail {
namespace {

struct fp32_neon {
  static constexpr std::int64_t MR = 8, NR = fp32_nr_neon;
  // KC x NR weights = 12 KiB and the 8 KiB source micro-panel fit a 64 KiB L1d.
  static constexpr std::int64_t KC = 256;
  // MC x KC source block = 256 KiB, inside L2.
  static constexpr std::int64_t MC = 256;
  using a_t = float;
  static constexpr bool packs_a = true;
  static std::int64_t a_panel_elems(std::int64_t kc) { return MR * kc; }

  static void pack_a(const gemm_desc& d, const gemm_args& a, std::int64_t i0, std::int64_t mc,
                     std::int64_t p0, std::int64_t kc, float* buf) {
    pack_rows<MR>(static_cast<const float*>(a.src), d.k, i0, mc, p0, kc, buf);
  }
  static std::int64_t b_panel_bytes(std::int64_t kc) { return kc * NR * 4; }
  static const float* b_panel(const gemm_desc& d, const void* packed, std::int64_t jp, std::int64_t p0) {
    return static_cast<const float*>(packed) + jp * NR * d.k + p0 * NR;
  }

  static void ukr(int mr, std::int64_t kc, const float* a, const float* b, float* c, std::int64_t ldc,
                  int nr, const gemm_desc&, const gemm_args&, const tile_pos& t) {
    float32x4_t acc[MR][3];
    for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = acc[i][2] = vdupq_n_f32(0.0f);
    // Rows past mr are zero in the packed panel (pack_rows); computing all MR rows keeps the loop
    // branch-free and only the valid rows are stored.
    for (std::int64_t p = 0; p < kc; ++p) {
      const float32x4_t b0 = vld1q_f32(b), b1 = vld1q_f32(b + 4), b2 = vld1q_f32(b + 8);
      const float32x4_t a0 = vld1q_f32(a), a1 = vld1q_f32(a + 4);
      acc[0][0] = vfmaq_laneq_f32(acc[0][0], b0, a0, 0);
      acc[0][1] = vfmaq_laneq_f32(acc[0][1], b1, a0, 0);
      acc[0][2] = vfmaq_laneq_f32(acc[0][2], b2, a0, 0);
      acc[1][0] = vfmaq_laneq_f32(acc[1][0], b0, a0, 1);
      acc[1][1] = vfmaq_laneq_f32(acc[1][1], b1, a0, 1);
      acc[1][2] = vfmaq_laneq_f32(acc[1][2], b2, a0, 1);
      acc[2][0] = vfmaq_laneq_f32(acc[2][0], b0, a0, 2);
      acc[2][1] = vfmaq_laneq_f32(acc[2][1], b1, a0, 2);
      acc[2][2] = vfmaq_laneq_f32(acc[2][2], b2, a0, 2);
      acc[3][0] = vfmaq_laneq_f32(acc[3][0], b0, a0, 3);
      acc[3][1] = vfmaq_laneq_f32(acc[3][1], b1, a0, 3);
      acc[3][2] = vfmaq_laneq_f32(acc[3][2], b2, a0, 3);
      acc[4][0] = vfmaq_laneq_f32(acc[4][0], b0, a1, 0);
      acc[4][1] = vfmaq_laneq_f32(acc[4][1], b1, a1, 0);
      acc[4][2] = vfmaq_laneq_f32(acc[4][2], b2, a1, 0);
      acc[5][0] = vfmaq_laneq_f32(acc[5][0], b0, a1, 1);
      acc[5][1] = vfmaq_laneq_f32(acc[5][1], b1, a1, 1);
      acc[5][2] = vfmaq_laneq_f32(acc[5][2], b2, a1, 1);
      acc[6][0] = vfmaq_laneq_f32(acc[6][0], b0, a1, 2);
      acc[6][1] = vfmaq_laneq_f32(acc[6][1], b1, a1, 2);
      acc[6][2] = vfmaq_laneq_f32(acc[6][2], b2, a1, 2);
      acc[7][0] = vfmaq_laneq_f32(acc[7][0], b0, a1, 3);
      acc[7][1] = vfmaq_laneq_f32(acc[7][1], b1, a1, 3);
      acc[7][2] = vfmaq_laneq_f32(acc[7][2], b2, a1, 3);
      a += MR;
      b += NR;
    }
    for (int i = 0; i < mr; ++i) {
      float* ci = c + i * ldc;
      if (nr == NR) {
        for (int v = 0; v < 3; ++v) {
          float32x4_t r = acc[i][v];
          if (!t.first) r = vaddq_f32(r, vld1q_f32(ci + 4 * v));
          vst1q_f32(ci + 4 * v, r);
        }
      } else {
        float tmp[NR];
        for (int v = 0; v < 3; ++v) vst1q_f32(tmp + 4 * v, acc[i][v]);
        for (int j = 0; j < nr; ++j) ci[j] = t.first ? tmp[j] : ci[j] + tmp[j];
      }
    }
  }
};

}  // namespace

void fp32_execute_neon(const gemm_desc& d, const gemm_args& a, int ithr, int nthr) {
  drive<fp32_neon>(d, a, ithr, nthr);
}
std::size_t fp32_workspace_neon(const gemm_desc& d, int nthr) { return drive_workspace<fp32_neon>(d, nthr); }

}  // namespace infermark::gemm_detail
