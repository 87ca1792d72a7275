// avx512:fp8 -- fp8 e4m3 GEMM through bf16 dot products (AVX512_BF16), with e4m3 -> bf16 by byte table
// lookups (AVX512_VBMI). Compiled with AVX-512 + VBMI flags, called only when both are detected.
//
// Every e4m3 value is exactly a bf16 value, so vdpbf16ps forms the same products as fp32 FMAs. The
// conversion (gemm_fp8_vbmi.hpp) gives the [64][2] pair rows vdpbf16ps takes.
//
// Weights are used in one of two ways, chosen per row block by the driver (direct_tiles):
//  - few rows (decode: one row tile per block): every tile converts its micro-panel in registers and
//    nothing else touches it; the weights stream from memory once, at DRAM speed. With 1-2 rows a call
//    covers 16 scale blocks (decode_kc), each block's sum scaled into the accumulators in registers;
//  - more rows: each 128 x 64 micro-panel (one scale block) is converted once per row block into the
//    worker's workspace (converts_b) and read by every row tile.
// The source row block is packed as bf16 pairs, [MR][pairs] per micro-panel, converted by the same
// lookups. One k block is one 128-wide scale block, so each block's sum is scaled once.
#include "kernels/gemm/gemm_fp8_vbmi.hpp"

namespace infermark::gemm_detail {
namespace {

struct fp8_avx512 {
  static constexpr std::int64_t MR = 6, NR = fp8_avx512_layout.nr;
  static_assert(NR == 64 && fp8_avx512_layout.unpack_order, "the conversion's byte order");
  static constexpr std::int64_t KC = fp8_kc;
  static constexpr std::int64_t MC = 384;
  using a_t = std::uint32_t;
  using bk_t = std::uint16_t;
  static constexpr bool packs_a = true;
  static constexpr bool converts_b = true;
  // Row blocks of up to this many row tiles read packed weights and convert in registers; more tiles
  // share one converted copy. Measured for one tile only (m1n2048k7168 fp8, cold, 2 threads: 1.46 ms
  // through the workspace, 0.74 ms converting in the tile, both in the blocked loop order).
  static constexpr std::int64_t direct_tiles = 1;
  // One or two rows (decode): a k block of 16 scale blocks per microkernel call, each scale block summed
  // apart and scaled into the tile's accumulators in registers (no pass through dst per 128 values, and
  // the per-call set-up once per 128 KiB of weights instead of once per 8 KiB). More rows keep one scale
  // block per call: two sets of mr x 4 accumulators would not fit in the 32 registers.
  static constexpr std::int64_t kMultiBlockRows = 2;
  static std::int64_t decode_kc(const gemm_desc& d) { return d.m <= kMultiBlockRows ? 16 * KC : KC; }
  static std::int64_t a_panel_elems(std::int64_t kc) { return MR * ceil_div(kc, 2); }
  static std::int64_t b_panel_bytes(std::int64_t kc) { return ceil_div(kc, 2) * 2 * NR; }
  static std::int64_t b_scratch_bytes(std::int64_t kc) { return ceil_div(kc, 2) * 2 * NR * 2; }
  static const fp8_t* b_panel(const gemm_desc& d, const void* packed, std::int64_t jp, std::int64_t p0) {
    return static_cast<const fp8_t*>(packed) + lowp_offset(d, NR, 2, jp, p0);
  }
  static void convert_b(const fp8_t* b, std::int64_t kc, std::uint16_t* out) { e4m3_panel_to_bf16(b, kc, out); }
  // Source micro-panel: MR rows of ceil(kc/2) bf16 pairs each, [MR][pairs] (rows past the end are not
  // written: tile<mr> reads rows < mr only).
  static void pack_a(const gemm_desc& d, const gemm_args& args, std::int64_t i0, std::int64_t mc, std::int64_t p0,
                     std::int64_t kc, std::uint32_t* buf) {
    const auto* src = static_cast<const fp8_t*>(args.src);
    const e4m3_luts lut;
    const std::int64_t pairs = ceil_div(kc, 2);
    for (std::int64_t ir = 0; ir < mc; ir += MR) {
      const std::int64_t mr = std::min(MR, mc - ir);
      std::uint32_t* out = buf + (ir / MR) * a_panel_elems(kc);
      for (std::int64_t i = 0; i < mr; ++i)
        fp8_row_to_bf16(lut, src + (i0 + ir + i) * d.k + p0, kc, reinterpret_cast<std::uint16_t*>(out + i * pairs));
    }
  }

  // b: converted bf16 pair rows (workspace) or packed e4m3 pair rows (converted here).
  template <int mr, class B>
  static void tile(std::int64_t kc, const std::uint32_t* a, const B* b, float* c, std::int64_t ldc, int nr,
                   const gemm_desc& d, const gemm_args& args, const tile_pos& t) {
    __m512 acc[mr][NV];
    for (int i = 0; i < mr; ++i)
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_ps();
    prefetch_dst<mr>(c, ldc, t.first);
    const std::int64_t pairs = ceil_div(kc, 2);
    if constexpr (mr <= kMultiBlockRows && std::is_same_v<B, fp8_t>) {
      if (kc > gemm_fp8_block) return multi_block<mr>(acc, kc, a, b, c, ldc, nr, d, args, t);
    }
    const auto a_pair = [&](int i, std::int64_t q) { return a[i * pairs + q]; };
    if constexpr (std::is_same_v<B, fp8_t>) {
      const e4m3_luts lut;
      bf16_pair_dots<mr>(acc, pairs, a_pair, [&](std::int64_t q, __m512i (&bv)[NV]) { lut.streamed_row(b + q * 128, bv); });
    } else {
      bf16_pair_dots<mr>(acc, pairs, a_pair, bf16_rows(b));
    }
    fp8_store_scaled<mr>(acc, c, ldc, nr, d, args, t);
  }
  // kc spans several scale blocks (decode_kc, mr <= kMultiBlockRows; packed e4m3 weights only: decode_kc
  // is K::KC whenever the driver converts into the workspace): each block's sum (blk) is scaled
  // by src_scale[row][block] x wei_scale[column block][block] into acc, then acc goes to dst once. The
  // products and each block's sum are formed as in the one-block path; only where the scaled sums are
  // added differs (registers instead of dst), so results match up to fp32 rounding of that sum.
  template <int mr>
  static void multi_block(__m512 (&acc)[mr][NV], std::int64_t kc, const std::uint32_t* a, const fp8_t* b, float* c,
                          std::int64_t ldc, int nr, const gemm_desc& d, const gemm_args& args, const tile_pos& t) {
    static_assert(KC == gemm_fp8_block, "one k block per scale block");
    const std::int64_t kb = ceil_div(d.k, gemm_fp8_block);
    const float* wscale = args.wei_scale + (t.j0 / gemm_fp8_block) * kb;  // NR divides the block
    const e4m3_luts lut;
    for (std::int64_t b0 = 0; b0 < kc; b0 += KC) {
      // Source: packed per KC block (see gemm_driver.hpp decode_kc), block j at a + j * a_panel_elems(KC).
      const std::uint32_t* ab = a + (b0 / KC) * a_panel_elems(KC);
      const std::int64_t q0 = b0 / 2, bpairs = ceil_div(std::min(KC, kc - b0), 2);
      const std::int64_t blk = (t.p0 + b0) / KC;
      __m512 sum[mr][NV];
      for (int i = 0; i < mr; ++i)
        for (int v = 0; v < NV; ++v) sum[i][v] = _mm512_setzero_ps();
      const auto a_pair = [&](int i, std::int64_t q) { return ab[i * bpairs + q]; };
      bf16_pair_dots<mr>(sum, bpairs, a_pair, [&](std::int64_t q, __m512i (&bv)[NV]) { lut.streamed_row(b + (q0 + q) * 128, bv); });
      for (int i = 0; i < mr; ++i) {
        const __m512 sc = _mm512_set1_ps(args.src_scale[(t.i0 + i) * kb + blk] * wscale[blk]);
        for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_fmadd_ps(sum[i][v], sc, acc[i][v]);
      }
    }
    store_f32<mr>(acc, c, ldc, nr, t.first);
  }

  template <class B>
  static void ukr(int mr, std::int64_t kc, const std::uint32_t* a, const B* b, float* c, std::int64_t ldc, int nr,
                  const gemm_desc& d, const gemm_args& args, const tile_pos& t) {
    INFERMARK_MR_SWITCH(kc, a, b, c, ldc, nr, d, args, t)
  }
};

}  // namespace

void fp8_execute_avx512(const gemm_desc& d, const gemm_args& a, int ithr, int nthr) {
  drive<fp8_avx512>(d, a, ithr, nthr);
}
std::size_t fp8_workspace_avx512(const gemm_desc& d, int nthr) { return drive_workspace<fp8_avx512>(d, nthr); }

}  // namespace infermark::gemm_detail
