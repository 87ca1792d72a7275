// AMX GEMM microkernels (Sapphire Rapids and later): tile products tdpbf16ps (bf16 k pairs, fp32
// accumulation: products exact, as vdpbf16ps) and tdpbssd (int8 k quads, exact int32 accumulation).
//
// One call computes 32 rows x 64 columns as two halves of 32 x 32: four accumulator tiles (16 x 16
// fp32 / int32, tiles 0-3) fed per k step by two source tiles (16 rows x 64 bytes, tiles 4-5) and two
// weight tiles (16 k groups x 16 columns x group, tiles 6-7).
//  - Weights: the AVX-512 implementations' packed panels, read in place: a panel row [64][G] is 256
//    bytes, so a weight tile is 64 bytes of each of 16 consecutive group rows (stride 256). Only a
//    partial last k step (k not a multiple of 32 / 64) is copied into a zero-padded 16-row block, so no
//    tile reads past the panel.
//  - Source: packed per 32-row micro-panel as [k step][32 rows][64 bytes], zero-filled past the last
//    row and the last k, so every tile load is a full, aligned 16 x 64-byte block.
//  - Accumulators: a whole 32 x 64 tile loads the earlier k blocks' sums from dst and stores back into it
//    (int8 keeps int32 partial sums there and applies the scales in the last k block, through a buffer);
//    partial tiles go through a 32 x 64 buffer.
// Rows and columns past mr / nr cost no tile products: a call with mr <= 16 (decode) uses one row of up
// to four accumulator tiles across the panel, and a half with <= 16 valid columns one column of tiles.
// amx:fp8 (amx_fp8 below) converts e4m3 weights to bf16 panels and runs the bf16 products. Up to
// kVectorRows rows every format runs the AVX-512 microkernel on the same packed panels instead.
#include <immintrin.h>

#include "kernels/common/amx_tiles.hpp"
#include "kernels/gemm/gemm_fp8_vbmi.hpp"

// GCC 12 false positive (bug 105593) on the masked AVX-512 loads' internal undefined operand.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace infermark::gemm_detail {
namespace {

// One tile product: accumulator tile c += source tile a x weight tile b (tile numbers are immediates).
#define INFERMARK_AMX_DP(c, a, b)                 \
  do {                                            \
    if constexpr (kBf16) _tile_dpbf16ps(c, a, b); \
    else _tile_dpbssd(c, a, b);                   \
  } while (0)

template <dtype DT>
struct amx_kernel {
  static_assert(DT == dtype::bf16 || DT == dtype::int8);
  static constexpr bool kBf16 = DT == dtype::bf16;
  using a_t = std::conditional_t<kBf16, bf16_t, std::int8_t>;
  using acc_t = std::conditional_t<kBf16, float, std::int32_t>;
  static constexpr lowp_layout L = kBf16 ? bf16_avx512_layout : int8_avx512_layout;
  static constexpr std::int64_t G = L.group;                       // k values per 32-bit tile element
  static constexpr std::int64_t KS = 64 / sizeof(a_t);             // k per tile step
  static constexpr std::int64_t MR = 32, NR = L.nr;                // NR = 64: one packed panel
  static constexpr std::int64_t kRowBytes = NR * G * sizeof(a_t);  // one packed group row: 256 bytes
  static_assert(NR == 64 && kRowBytes == 256);
  // k block: a multiple of the step (bf16 32, int8 64). Fewer k blocks mean fewer passes over dst:
  // m256n2048k7168 bf16, 2 threads, on a 2-core Sapphire-Rapids-class VM, KC 256 / 512 / 1024 / 2048 /
  // 3584: 2021-2327 / 2000-2284 / 2088-2148 / 2233-2411 / 1757-1949 GFLOP/s (single runs with MC
  // 128-512; the smaller blocks partly before whole tiles accumulated in dst).
  static constexpr std::int64_t KC = 2048;
  static constexpr std::int64_t MC = 256;
  static_assert(KC % KS == 0 && MC % MR == 0);
  static constexpr bool packs_a = true;

  static std::int64_t a_panel_elems(std::int64_t kc) { return MR * round_up(kc, KS); }
  static std::int64_t round_up(std::int64_t v, std::int64_t m) { return ceil_div(v, m) * m; }
  static std::int64_t b_panel_bytes(std::int64_t kc) { return ceil_div(kc, G) * kRowBytes; }
  static const a_t* b_panel(const gemm_desc& d, const void* packed, std::int64_t jp, std::int64_t p0) {
    return static_cast<const a_t*>(packed) + lowp_offset(d, NR, G, jp, p0);
  }

  // Rows [i0, i0 + mc) x k [p0, p0 + kc) into 32-row micro-panels [k step][32][KS], zero-filled.
  static void pack_a(const gemm_desc& d, const gemm_args& args, std::int64_t i0, std::int64_t mc, std::int64_t p0, std::int64_t kc,
                     a_t* buf) {
    const auto* src = static_cast<const a_t*>(args.src);
    const std::int64_t steps = ceil_div(kc, KS);
    for (std::int64_t ir = 0; ir < mc; ir += MR) {
      a_t* out = buf + (ir / MR) * a_panel_elems(kc);
      const std::int64_t mr = std::min(MR, mc - ir);
      for (std::int64_t s = 0; s < steps; ++s) {
        const std::int64_t k0 = s * KS, kn = std::min(KS, kc - k0);
        a_t* blk = out + s * MR * KS;
        for (std::int64_t i = 0; i < MR; ++i) {
          a_t* row = blk + i * KS;
          const std::int64_t copied = i < mr ? kn : 0;
          if (copied > 0) std::memcpy(row, src + (i0 + ir + i) * d.k + p0 + k0, static_cast<std::size_t>(copied) * sizeof(a_t));
          if (copied < KS) std::memset(row + copied, 0, static_cast<std::size_t>(KS - copied) * sizeof(a_t));
        }
      }
    }
  }

  // One 32 x 32 half: RT row tiles x CT column tiles over `steps` k steps.
  // `b` points at the half's first column in the panel; step s reads group rows [16 s, 16 s + 16) of it,
  // except a partial last step, which reads the same columns of `tail` (16 zero-padded group rows).
  // The accumulators start from init (stride ld_init bytes: earlier k blocks' sums in dst) or zero, and
  // end in out (stride ld_out bytes).
  template <int RT, int CT>
  static void half(const a_t* a, const a_t* b, const a_t* tail, std::int64_t steps, bool partial_last, const acc_t* init,
                   std::int64_t ld_init, acc_t* out, std::int64_t ld_out) {
    if (init != nullptr) {
      const std::int64_t rows16 = 16 * (ld_init / static_cast<std::int64_t>(sizeof(acc_t)));
      _tile_loadd(0, init, ld_init);
      if constexpr (CT > 1) _tile_loadd(1, init + 16, ld_init);
      if constexpr (RT > 1) _tile_loadd(2, init + rows16, ld_init);
      if constexpr (RT > 1 && CT > 1) _tile_loadd(3, init + rows16 + 16, ld_init);
    } else {
      _tile_zero(0);
      if constexpr (CT > 1) _tile_zero(1);
      if constexpr (RT > 1) _tile_zero(2);
      if constexpr (RT > 1 && CT > 1) _tile_zero(3);
    }
    for (std::int64_t s = 0; s < steps; ++s) {
      const a_t* as = a + s * MR * KS;
      const a_t* bs = (partial_last && s + 1 == steps) ? tail : b + s * 16 * NR * G;
      _tile_loadd(4, as, 64);
      if constexpr (RT > 1) _tile_loadd(5, as + 16 * KS, 64);
      _tile_loadd(6, bs, kRowBytes);
      if constexpr (CT > 1) _tile_loadd(7, bs + 16 * G, kRowBytes);
      INFERMARK_AMX_DP(0, 4, 6);
      if constexpr (CT > 1) INFERMARK_AMX_DP(1, 4, 7);
      if constexpr (RT > 1) INFERMARK_AMX_DP(2, 5, 6);
      if constexpr (RT > 1 && CT > 1) INFERMARK_AMX_DP(3, 5, 7);
    }
    const std::int64_t rows16 = 16 * (ld_out / static_cast<std::int64_t>(sizeof(acc_t)));
    _tile_stored(0, out, ld_out);
    if constexpr (CT > 1) _tile_stored(1, out + 16, ld_out);
    if constexpr (RT > 1) _tile_stored(2, out + rows16, ld_out);
    if constexpr (RT > 1 && CT > 1) _tile_stored(3, out + rows16 + 16, ld_out);
  }

  // mr <= 16: one row of CT (= ceil(nr / 16)) accumulator tiles across the whole panel, tiles 5-7 holding
  // the weights (5 twice). Each step reads its 16 group rows whole, one contiguous 4 KiB piece: two
  // halves would read every row in two passes a k block apart, which streamed cold weights from memory
  // at 72% of the probe's read bandwidth (m1n2048k7168 bf16 / int8, 2 threads).
  template <int CT>
  static void row(const a_t* a, const a_t* b, const a_t* tail, std::int64_t steps, bool partial_last, acc_t* out, std::int64_t ld) {
    _tile_zero(0);
    if constexpr (CT > 1) _tile_zero(1);
    if constexpr (CT > 2) _tile_zero(2);
    if constexpr (CT > 3) _tile_zero(3);
    for (std::int64_t s = 0; s < steps; ++s) {
      const a_t* bs = (partial_last && s + 1 == steps) ? tail : b + s * 16 * NR * G;
      _tile_loadd(4, a + s * MR * KS, 64);
      _tile_loadd(5, bs, kRowBytes);
      if constexpr (CT > 1) _tile_loadd(6, bs + 16 * G, kRowBytes);
      if constexpr (CT > 2) _tile_loadd(7, bs + 32 * G, kRowBytes);
      INFERMARK_AMX_DP(0, 4, 5);
      if constexpr (CT > 1) INFERMARK_AMX_DP(1, 4, 6);
      if constexpr (CT > 2) INFERMARK_AMX_DP(2, 4, 7);
      if constexpr (CT > 3) {
        _tile_loadd(5, bs + 48 * G, kRowBytes);
        INFERMARK_AMX_DP(3, 4, 5);
      }
    }
    _tile_stored(0, out, ld);
    if constexpr (CT > 1) _tile_stored(1, out + 16, ld);
    if constexpr (CT > 2) _tile_stored(2, out + 32, ld);
    if constexpr (CT > 3) _tile_stored(3, out + 48, ld);
  }

  // The tile products of one call: rows x columns [mr][nr] over kc into out (stride ld_out bytes),
  // starting from init (stride ld_init bytes) or zero. Rows <= 16 take one row of tiles and always start
  // from zero (init must be null).
  static void products(int mr, std::int64_t kc, const a_t* a, const a_t* b, int nr, const acc_t* init, std::int64_t ld_init,
                       acc_t* out, std::int64_t ld_out) {
    alignas(64) a_t tail[16 * NR * G];
    const std::int64_t steps = ceil_div(kc, KS), groups = ceil_div(kc, G);
    const bool partial_last = groups < steps * 16;
    if (partial_last) {  // the group rows of the last step that exist, then zeros
      const std::int64_t have = groups - (steps - 1) * 16;
      std::memcpy(tail, b + (steps - 1) * 16 * NR * G, static_cast<std::size_t>(have * kRowBytes));
      std::memset(tail + have * NR * G, 0, static_cast<std::size_t>((16 - have) * kRowBytes));
    }
    if (mr <= 16) {
      switch (ceil_div(nr, 16)) {
        case 4: return row<4>(a, b, tail, steps, partial_last, out, ld_out);
        case 3: return row<3>(a, b, tail, steps, partial_last, out, ld_out);
        case 2: return row<2>(a, b, tail, steps, partial_last, out, ld_out);
        default: return row<1>(a, b, tail, steps, partial_last, out, ld_out);
      }
    }
    for (int h = 0; h < 2 && 32 * h < nr; ++h) {
      const a_t* bh = b + 32 * h * G;
      const a_t* th = tail + 32 * h * G;
      const acc_t* ih = init != nullptr ? init + 32 * h : nullptr;
      const bool two_rows = mr > 16, two_cols = nr - 32 * h > 16;
      if (two_rows && two_cols) half<2, 2>(a, bh, th, steps, partial_last, ih, ld_init, out + 32 * h, ld_out);
      else if (two_rows) half<2, 1>(a, bh, th, steps, partial_last, ih, ld_init, out + 32 * h, ld_out);
      else if (two_cols) half<1, 2>(a, bh, th, steps, partial_last, ih, ld_init, out + 32 * h, ld_out);
      else half<1, 1>(a, bh, th, steps, partial_last, ih, ld_init, out + 32 * h, ld_out);
    }
  }

  static void ukr(int mr, std::int64_t kc, const a_t* a, const a_t* b, float* c, std::int64_t ldc, int nr, const gemm_desc&,
                  const gemm_args& args, const tile_pos& t) {
    // A whole 32 x 64 tile works on dst itself: the accumulators load the earlier k blocks' sums from it
    // and store back into it, except int8's last block, which goes through buf to apply the scales.
    // Partial tiles go through buf (tile loads and stores are whole 16-row blocks).
    alignas(64) acc_t buf[MR * NR];
    const bool whole = mr == MR && nr == NR;
    auto* dst = reinterpret_cast<acc_t*>(c);
    const std::int64_t ld_dst = ldc * static_cast<std::int64_t>(sizeof(float));
    const acc_t* init = whole && !t.first ? dst : nullptr;
    const bool in_dst = whole && (kBf16 || !t.last);
    products(mr, kc, a, b, nr, init, ld_dst, in_dst ? dst : buf, in_dst ? ld_dst : kBufLd);
    if (!in_dst) write_out(mr, nr, buf, c, ldc, args, t, init == nullptr && !t.first);
  }
  static constexpr std::int64_t kBufLd = NR * sizeof(acc_t);  // bytes per row of a 32 x 64 buffer

  // buf[mr][nr] (stride 64) into dst: bf16 stores fp32 (adding dst's earlier sums when add_dst); int8
  // likewise with int32 partial sums and, in the last k block, the per-token and per-channel scales.
  static void write_out(int mr, int nr, const acc_t* buf, float* c, std::int64_t ldc, const gemm_args& args, const tile_pos& t,
                        bool add_dst) {
    __mmask16 mask[NV];
    col_masks(nr, mask);
    for (int i = 0; i < mr; ++i)
      for (int v = 0; v < NV && 16 * v < nr; ++v) {
        const __mmask16 k = mask[v];
        float* ci = c + i * ldc + 16 * v;
        if constexpr (kBf16) {
          __m512 x = _mm512_load_ps(buf + i * NR + 16 * v);
          if (add_dst) x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(k, ci));
          _mm512_mask_storeu_ps(ci, k, x);
        } else {
          __m512i x = _mm512_load_si512(buf + i * NR + 16 * v);
          if (add_dst) x = _mm512_add_epi32(x, _mm512_maskz_loadu_epi32(k, reinterpret_cast<const std::int32_t*>(ci)));
          if (t.last) {
            const __m512 ws = _mm512_maskz_loadu_ps(k, args.wei_scale + t.j0 + 16 * v);
            const __m512 y = _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(x), _mm512_set1_ps(args.src_scale[t.i0 + i])), ws);
            _mm512_mask_storeu_ps(ci, k, y);
          } else {
            _mm512_mask_storeu_epi32(reinterpret_cast<std::int32_t*>(ci), k, x);
          }
        }
      }
  }
};

// fp8 e4m3 with DeepGEMM block scales on the tile unit. Weights: each 128 x 64 micro-panel (one scale
// block) is converted to bf16 pair rows (the layout amx:bf16 reads; e4m3 -> bf16 is exact) once per row
// block into the worker's workspace, by the byte lookups of gemm_fp8_vbmi.hpp; source rows are
// converted when packed. k blocks are one scale block (128), so every call's tile sums go through a
// buffer and are scaled into dst.
struct amx_fp8 {
  using T = amx_kernel<dtype::bf16>;  // the bf16 tile products
  static constexpr std::int64_t MR = T::MR, NR = fp8_avx512_layout.nr, KC = fp8_kc, MC = T::MC;
  static_assert(NR == T::NR && fp8_avx512_layout.unpack_order, "converted panels are amx:bf16 panels");
  using a_t = bf16_t;
  using bk_t = bf16_t;
  static constexpr bool packs_a = true;
  static constexpr bool converts_b = true;
  static std::int64_t a_panel_elems(std::int64_t kc) { return T::a_panel_elems(kc); }
  static std::int64_t b_panel_bytes(std::int64_t kc) { return ceil_div(kc, 2) * 2 * NR; }
  static std::int64_t b_scratch_bytes(std::int64_t kc) { return ceil_div(kc, 2) * 2 * NR * 2; }
  static const fp8_t* b_panel(const gemm_desc& d, const void* packed, std::int64_t jp, std::int64_t p0) {
    return static_cast<const fp8_t*>(packed) + lowp_offset(d, NR, 2, jp, p0);
  }
  // (The conversion's prefetch left cold decode at 3-16 rows at 42-47% of DRAM read here: conversion and
  // tile products alternate instead of overlapping.)
  static void convert_b(const fp8_t* b, std::int64_t kc, bf16_t* out) { e4m3_panel_to_bf16(b, kc, out); }
  // Rows [i0, i0 + mc) x k [p0, p0 + kc) as bf16 in amx:bf16's source layout [k step][32][32].
  static void pack_a(const gemm_desc& d, const gemm_args& args, std::int64_t i0, std::int64_t mc, std::int64_t p0, std::int64_t kc,
                     bf16_t* buf) {
    const auto* src = static_cast<const fp8_t*>(args.src);
    const e4m3_luts lut;
    const std::int64_t steps = ceil_div(kc, T::KS);
    alignas(64) std::uint16_t row[KC + 64];
    for (std::int64_t ir = 0; ir < mc; ir += MR) {
      bf16_t* out = buf + (ir / MR) * a_panel_elems(kc);
      const std::int64_t mr = std::min(MR, mc - ir);
      for (std::int64_t i = 0; i < MR; ++i) {
        std::int64_t words = 0;
        if (i < mr) fp8_row_to_bf16(lut, src + (i0 + ir + i) * d.k + p0, kc, row), words = kc + (kc & 1);
        std::memset(row + words, 0, static_cast<std::size_t>(steps * T::KS - words) * 2);
        for (std::int64_t s = 0; s < steps; ++s) std::memcpy(out + (s * MR + i) * T::KS, row + s * T::KS, 64);
      }
    }
  }
  static void ukr(int mr, std::int64_t kc, const bf16_t* a, const bf16_t* b, float* c, std::int64_t ldc, int nr, const gemm_desc& d,
                  const gemm_args& args, const tile_pos& t) {
    alignas(64) float buf[MR * NR];
    T::products(mr, kc, a, b, nr, nullptr, 0, buf, T::kBufLd);
    // dst (+)= sum * src_scale[row][k block] * wei_scale[column block][k block]; a 64-column panel lies in
    // one 128-column scale block.
    const std::int64_t kb = ceil_div(d.k, gemm_fp8_block), b_idx = t.p0 / gemm_fp8_block;
    const float ws = args.wei_scale[(t.j0 / gemm_fp8_block) * kb + b_idx];
    __mmask16 mask[NV];
    col_masks(nr, mask);
    for (int i = 0; i < mr; ++i) {
      const __m512 sv = _mm512_set1_ps(args.src_scale[(t.i0 + i) * kb + b_idx] * ws);
      for (int v = 0; v < NV && 16 * v < nr; ++v) {
        const __mmask16 k = mask[v];
        float* ci = c + i * ldc + 16 * v;
        __m512 x = _mm512_mul_ps(_mm512_load_ps(buf + i * NR + 16 * v), sv);
        if (!t.first) x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(k, ci));
        _mm512_mask_storeu_ps(ci, k, x);
      }
    }
  }
};

// Up to this many rows the AVX-512 microkernel (same packed panels) runs instead: a tile product would use
// at most 2 of its 16 rows, and the vector kernel streams the weights closer to the read bandwidth.
// Measured (2 threads, cold weights, % of the probe's DRAM read beside each case): m1n2048k7168 bf16
// 78-79 (tiles) vs 84-85 (vectors), int8 79-80 vs 87; the MoE decode layers t8 Qwen3-30B / t1 DeepSeek-V3
// with tiles for every sub-problem 71-77, with vectors up to 2 rows 88-90. From 4 rows the tiles win
// (bf16 m4 / m6 / m8: 77 / 77 / 74 vs 68 / 61 / 51).
constexpr std::int64_t kVectorRows = 2;

template <dtype DT>
void amx_execute(const gemm_desc& d, const gemm_args& a, int ithr, int nthr) {
  if (d.m <= kVectorRows) {
    if constexpr (DT == dtype::bf16) return bf16_execute_avx512(d, a, ithr, nthr);
    else if constexpr (DT == dtype::int8) return int8_execute_avx512(d, a, ithr, nthr);
    else return fp8_execute_avx512(d, a, ithr, nthr);
  }
  amx_configure_tiles();
  if constexpr (DT == dtype::fp8) drive<amx_fp8>(d, a, ithr, nthr);
  else drive<amx_kernel<DT>>(d, a, ithr, nthr);
  _tile_release();
}

}  // namespace

void bf16_execute_amx(const gemm_desc& d, const gemm_args& a, int ithr, int nthr) { amx_execute<dtype::bf16>(d, a, ithr, nthr); }
// Workspaces cover both kernels (the larger of the two), so the size never shrinks as m grows.
std::size_t bf16_workspace_amx(const gemm_desc& d, int nthr) {
  return std::max(bf16_workspace_avx512(d, nthr), drive_workspace<amx_kernel<dtype::bf16>>(d, nthr));
}
void fp8_execute_amx(const gemm_desc& d, const gemm_args& a, int ithr, int nthr) { amx_execute<dtype::fp8>(d, a, ithr, nthr); }
std::size_t fp8_workspace_amx(const gemm_desc& d, int nthr) {
  return std::max(fp8_workspace_avx512(d, nthr), drive_workspace<amx_fp8>(d, nthr));
}
void int8_execute_amx(const gemm_desc& d, const gemm_args& a, int ithr, int nthr) { amx_execute<dtype::int8>(d, a, ithr, nthr); }
std::size_t int8_workspace_amx(const gemm_desc& d, int nthr) {
  return std::max(int8_workspace_avx512(d, nthr), drive_workspace<amx_kernel<dtype::int8>>(d, nthr));
}

}  // namespace infermark::gemm_detail
