// avx512:fp8 -- fp8 e4m3 GEMM through bf16 dot products (AVX512_BF16), with e4m3 -> bf16 by byte table
// lookups (AVX512_VBMI) or bit-matrix transforms (GFNI). Compiled with AVX-512 + VBMI + GFNI flags,
// called only when all are detected.
//
// Every e4m3 value is exactly a bf16 value, so vdpbf16ps forms the same products as fp32 FMAs. The
// conversion (gemm_fp8_vbmi.hpp) gives the [64][2] pair rows vdpbf16ps takes.
//
// Weights are used in one of two ways, chosen per row block by the driver (direct_tiles):
//  - few rows (decode: one row tile per block): every tile converts its micro-panel in registers and
//    nothing else touches it; the weights stream from memory once, at DRAM speed. With 1-2 rows a call
//    covers 16 scale blocks (decode_kc), each block's sum scaled into the accumulators in registers.
//    Such a tile converts most rows by two GFNI transforms instead of the table lookups (direct_dots);
//  - more rows: each 128 x 64 micro-panel (one scale block) is converted once per row block into the
//    worker's workspace (converts_b) and read by every row tile.
// The source row block is packed as bf16 pairs, [MR][pairs] per micro-panel, converted by the same
// lookups. One k block is one 128-wide scale block, so each block's sum is scaled once.
#include "kernels/gemm/gemm_fp8_vbmi.hpp"

namespace infermark::gemm_detail {
namespace {

// Direct tiles convert a k block of weights by two GFNI bit-matrix transforms where the tables take two
// 128-entry lookups and a sign merge, unless the block holds a subnormal code. The transforms move the
// sign and the 7 exponent+mantissa bits of the e4m3 code into bf16's fields (bits s.0000eee.emmm0000: low
// byte e0.mmm.0000, high byte s.000.0.e3e2e1), i.e. the value x 2^-120: exact for every normal code, but
// a subnormal lands on a bf16 denormal, which vdpbf16ps reads as zero. So each 128 x 64 block has a flag
// (lowp_layout::subnormal_blocks) and a flagged block takes the tables. The source is packed for both:
// x 2^119 against transformed rows, x 2^-1 against table rows, so each product is src x wei / 2 either way,
// formed exactly (src x 2^119 <= 1.75 x 2^127 stays finite; src x 2^-1 >= 2^-10 stays normal), and the
// scale multiplier doubles the sums back (kDirectFrame): bit for bit the sums of the workspace path (the
// tables alone), whichever path or thread count takes a row. Against the tables alone (n2048 k7168, hot,
// one thread, bench/tools/fp8_subnormal_cost): integer-valued weights (the suite's, no subnormals) m1
// 205-214 -> 189-193 us, m2 243-258 -> 226-235, m4 616-620 -> 327-328; Gaussian weights quantized per
// block (56% of the blocks hold a subnormal) m1 211-214 -> 212-216, m2 244-249 -> 251-252, m4 611-615 ->
// 355-357; m64 (workspace path) unchanged. Cold decode at 2 threads: the same within the noise.
alignas(64) constexpr bf16_byte_tables kSrcTransformed = make_tables(0x1p119f);
alignas(64) constexpr bf16_byte_tables kSrcTables = make_tables(0x1p-1f);
constexpr float kDirectFrame = 2.0f;
static_assert(e4m3_bf16_bits(0x7e, 0x1p119f) == 0x7f60 && e4m3_bf16_bits(0x01, 0x1p-1f) == 0x3a80, "ranges");

struct e4m3_transform {
  __m512i lo = _mm512_set1_epi64(0x01020408);             // out bit 7-i <- code bit 3-i, i < 4
  __m512i hi = _mm512_set1_epi64(0x1020400000000080ll);  // out bit 7 <- bit 7; bits 2-0 <- bits 6-4
  std::int64_t prefetch_bytes = stream_prefetch();        // as e4m3_luts::streamed_row
  // One 128-byte packed pair row -> bv[0..3] (value x 2^-120, subnormals lost).
  INFERMARK_ROW_INLINE void row(const fp8_t* b, __m512i (&bv)[NV]) const {
    if (prefetch_bytes != 0) {
      _mm_prefetch(reinterpret_cast<const char*>(b) + prefetch_bytes, _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(b) + prefetch_bytes + 64, _MM_HINT_T0);
    }
    for (int h = 0; h < 2; ++h) {
      const __m512i x = _mm512_loadu_si512(b + 64 * h);
      const __m512i l = _mm512_gf2p8affine_epi64_epi8(x, lo, 0), u = _mm512_gf2p8affine_epi64_epi8(x, hi, 0);
      bv[2 * h] = _mm512_unpacklo_epi8(l, u);
      bv[2 * h + 1] = _mm512_unpackhi_epi8(l, u);
    }
  }
};
static_assert(fp8_avx512_layout.subnormal_blocks, "direct tiles read the flags");

// sum += the products of `pairs` packed rows of a direct tile's k block, from its pair row 0, converted by
// the transforms (a: the source packed for them; sum arrives zeroed).
template <int mr>
INFERMARK_ROW_INLINE inline void transformed_dots(__m512 (&sum)[mr][NV], std::int64_t pairs, const std::uint32_t* a,
                                                  const fp8_t* b, const e4m3_transform& tr) {
  bf16_pair_dots<mr>(
      sum, pairs, [&](int i, std::int64_t q) INFERMARK_ROW_INLINE { return a[i * pairs + q]; },
      [&](std::int64_t q, __m512i (&bv)[NV]) INFERMARK_ROW_INLINE { tr.row(b + q * 128, bv); });
}
// The same by the tables (a: the source packed for them), for blocks holding a subnormal. Out of line,
// into an array of its own: with the two loops inlined on the same accumulators, GCC kept those in
// memory and stored all of them on every pair row (m4n2048k7168 hot, one thread: 640 -> 860 us).
template <int mr>
[[gnu::noinline]] void table_dots(__m512 (&out)[mr][NV], std::int64_t pairs, const std::uint32_t* a, const fp8_t* b) {
  __m512 sum[mr][NV];  // local: accumulating in `out` would store every row's sums through the reference
  for (int i = 0; i < mr; ++i)
    for (int v = 0; v < NV; ++v) sum[i][v] = _mm512_setzero_ps();
  const e4m3_luts lut;
  bf16_pair_dots<mr>(
      sum, pairs, [&](int i, std::int64_t q) INFERMARK_ROW_INLINE { return a[i * pairs + q]; },
      [&](std::int64_t q, __m512i (&bv)[NV]) INFERMARK_ROW_INLINE { lut.streamed_row(b + q * 128, bv); });
  for (int i = 0; i < mr; ++i)
    for (int v = 0; v < NV; ++v) out[i][v] = sum[i][v];
}

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
  // Two copies for direct tiles (kSrcTables, then kSrcTransformed: see kDirectFrame), one (kE4m3Bf16) otherwise.
  static std::int64_t a_panel_elems(std::int64_t kc) { return 2 * MR * ceil_div(kc, 2); }
  // The driver runs a row block of this many row tiles on the packed weights (run_panel).
  static bool direct(std::int64_t rows) { return ceil_div(rows, MR) <= direct_tiles; }
  static std::int64_t b_panel_bytes(std::int64_t kc) { return ceil_div(kc, 2) * 2 * NR; }
  static std::int64_t b_scratch_bytes(std::int64_t kc) { return ceil_div(kc, 2) * 2 * NR * 2; }
  static const fp8_t* b_panel(const gemm_desc& d, const void* packed, std::int64_t jp, std::int64_t p0) {
    return static_cast<const fp8_t*>(packed) + lowp_offset(d, NR, 2, jp, p0);
  }
  static void convert_b(const fp8_t* b, std::int64_t kc, std::uint16_t* out) { e4m3_panel_to_bf16(b, kc, out); }
  // Source micro-panel: MR rows of ceil(kc/2) bf16 pairs each, [MR][pairs], twice for a direct row block
  // (see kDirectFrame; rows past the end are not written: tile<mr> reads rows < mr only).
  static void pack_a(const gemm_desc& d, const gemm_args& args, std::int64_t i0, std::int64_t mc, std::int64_t p0,
                     std::int64_t kc, std::uint32_t* buf) {
    const auto* src = static_cast<const fp8_t*>(args.src);
    const bool dir = direct(mc);
    const e4m3_luts lut(dir ? kSrcTables : kE4m3Bf16), tr(kSrcTransformed);
    const std::int64_t pairs = ceil_div(kc, 2);
    for (std::int64_t ir = 0; ir < mc; ir += MR) {
      const std::int64_t mr = std::min(MR, mc - ir);
      std::uint32_t* out = buf + (ir / MR) * a_panel_elems(kc);
      for (std::int64_t i = 0; i < mr; ++i) {
        const fp8_t* row = src + (i0 + ir + i) * d.k + p0;
        fp8_row_to_bf16(lut, row, kc, reinterpret_cast<std::uint16_t*>(out + i * pairs));
        if (dir) fp8_row_to_bf16(tr, row, kc, reinterpret_cast<std::uint16_t*>(out + (MR + i) * pairs));
      }
    }
  }
  // The tile's subnormal flags (lowp_layout), at k block 0 of its panel.
  static const std::uint8_t* flags(const gemm_desc& d, const gemm_args& args, const tile_pos& t) {
    // They follow the panels: where a panel past the last would start.
    return static_cast<const std::uint8_t*>(args.packed_wei) + lowp_offset(d, NR, 2, ceil_div(d.n, NR), 0) +
           (t.j0 / NR) * ceil_div(d.k, gemm_fp8_block);
  }

  // A direct tile's k block holding a subnormal: by the tables (a: the source packed for them), out of
  // line for the reason table_dots is.
  template <int mr>
  [[gnu::noinline]] static void table_tile(std::int64_t pairs, const std::uint32_t* a, const fp8_t* b, float* c,
                                           std::int64_t ldc, int nr, const gemm_desc& d, const gemm_args& args,
                                           const tile_pos& t) {
    __m512 sum[mr][NV];
    table_dots<mr>(sum, pairs, a, b);
    fp8_store_scaled<mr>(sum, c, ldc, nr, d, args, t, kDirectFrame);
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
    if constexpr (std::is_same_v<B, fp8_t>) {
      if (flags(d, args, t)[t.p0 / gemm_fp8_block] != 0) return table_tile<mr>(pairs, a, b, c, ldc, nr, d, args, t);
      const e4m3_transform tr;
      transformed_dots<mr>(acc, pairs, a + MR * pairs, b, tr);
      fp8_store_scaled<mr>(acc, c, ldc, nr, d, args, t, kDirectFrame);
    } else {
      bf16_pair_dots<mr>(acc, pairs, [&](int i, std::int64_t q) INFERMARK_ROW_INLINE { return a[i * pairs + q]; }, bf16_rows(b));
      fp8_store_scaled<mr>(acc, c, ldc, nr, d, args, t);
    }
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
    const e4m3_transform tr;
    const std::uint8_t* flag = flags(d, args, t);
    for (std::int64_t b0 = 0; b0 < kc; b0 += KC) {
      // Source: packed per KC block (see gemm_driver.hpp decode_kc), block j at a + j * a_panel_elems(KC).
      const std::uint32_t* ab = a + (b0 / KC) * a_panel_elems(KC);
      const std::int64_t q0 = b0 / 2, bpairs = ceil_div(std::min(KC, kc - b0), 2);
      const std::int64_t blk = (t.p0 + b0) / KC;
      const auto add = [&](__m512 (&sum)[mr][NV]) INFERMARK_ROW_INLINE {
        for (int i = 0; i < mr; ++i) {
          const __m512 sc = _mm512_set1_ps(args.src_scale[(t.i0 + i) * kb + blk] * wscale[blk] * kDirectFrame);
          for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_fmadd_ps(sum[i][v], sc, acc[i][v]);
        }
      };
      __m512 sum[mr][NV];
      for (int i = 0; i < mr; ++i)
        for (int v = 0; v < NV; ++v) sum[i][v] = _mm512_setzero_ps();
      if (flag[blk] != 0) {
        __m512 tab[mr][NV];
        table_dots<mr>(tab, bpairs, ab, b + q0 * 128);
        add(tab);
      } else {
        transformed_dots<mr>(sum, bpairs, ab + MR * bpairs, b + q0 * 128, tr);
        add(sum);
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
