// bf16 / int8 / fp8 GEMM microkernels for AVX2+FMA, 6 rows x 16 columns like the fp32 kernel. AVX2
// has no bf16/fp8 arithmetic: weights are widened to fp32 in registers (bf16: a shift and a mask; e4m3: a
// sign extension, a shift and a mask, see fp8x8_framed) and the source rows are converted to fp32 once
// when packed. int8 sign-extends k pairs to 16 bits and uses vpmaddwd (exact: |pair sum| <= 2 * 128 *
// 128), int32 accumulation; partial sums live in dst between k blocks and the last block applies the
// scales.
#include <immintrin.h>

#include <type_traits>
#include <utility>

#include "kernels/gemm/gemm_driver.hpp"
#include "kernels/gemm/gemm_kernels.hpp"

namespace infermark::gemm_detail {
namespace {

inline __m256i lane_mask(int nr) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(nr), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// Decode tiles (tile_pos::streamed) read each weight panel once, straight from memory, and ask for the
// bytes kStreamAhead past those they are about to read into L2 first: the hardware prefetchers alone
// left the DRAM read idle while the core converted (measured: see README).
inline constexpr std::int64_t kStreamAhead = 4096;
// Called once per `bytes` of the panel read in order from `at`: one prefetch per 64-byte line, on the
// calls that start a line. Straight-line code: a loop here (its trip count unknown to the compiler)
// cost GCC a register, and an accumulator went through the stack on every k step (hot fp8 m1, one
// core: 1.75x slower); out of line, GCC 12 took it for a function without side effects and dropped it.
template <std::int64_t bytes>
__attribute__((always_inline)) inline void stream_prefetch(const void* at) {
  const auto* q = static_cast<const char*>(at) + kStreamAhead;
  if constexpr (bytes >= 64) {
    for (std::int64_t o = 0; o < bytes; o += 64) _mm_prefetch(q + o, _MM_HINT_T1);
  } else {
    if ((reinterpret_cast<std::uintptr_t>(q) & 63) < bytes) _mm_prefetch(q, _MM_HINT_T1);
  }
}

// 16 bf16 (one k step of a panel) -> the even columns (0, 2, .., 14) in w0 and the odd ones in w1: one
// load, a shift and a mask, where widening each half by vpmovzxwd took two shuffles and two shifts (the
// shuffle/shift ports are the conversion's limit). The sums come out in that order too (bf16_natural).
inline void bf16x16_to_f32_split(const bf16_t* p, __m256& w0, __m256& w1) {
  const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  w0 = _mm256_castsi256_ps(_mm256_slli_epi32(x, 16));
  w1 = _mm256_castsi256_ps(_mm256_and_si256(x, _mm256_set1_epi32(static_cast<int>(0xffff0000u))));
}
// Even / odd column sums -> columns 0-7 (s0) and 8-15 (s1).
inline void bf16_natural(__m256& s0, __m256& s1) {
  const __m256 lo = _mm256_unpacklo_ps(s0, s1), hi = _mm256_unpackhi_ps(s0, s1);  // [0-3 | 8-11], [4-7 | 12-15]
  s0 = _mm256_permute2f128_ps(lo, hi, 0x20);
  s1 = _mm256_permute2f128_ps(lo, hi, 0x31);
}
// 8 e4m3 bytes -> 8 floats of value x 2^-120: sign-extended to 32 bits and shifted left by 20, a code
// has its sign in bit 31 (and 27-30) and its 7 exponent+mantissa bits in fp32's bits 20-26; the mask
// keeps those. Exact for every non-NaN code: a normal code lands on a normal fp32 (exponent field 1-15),
// a subnormal one (m x 2^-9) on the fp32 denormal m x 2^-129. No multiply restores the bias: the source
// is packed x 2^119 (kFp8SrcFrame) and the scale doubles the sums (kFp8SumFrame), so every product
// src x wei / 2 is formed exactly and normal (>= 2^-19) and the sums are those of the unscaled values.
inline __m256 fp8x8_framed(const fp8_t* p) {
  const __m256i x = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_and_si256(_mm256_slli_epi32(x, 20), _mm256_set1_epi32(static_cast<int>(0x87f00000u))));
}
constexpr float kFp8SrcFrame = 0x1p119f, kFp8SumFrame = 2.0f;
static_assert(fp8_to_f32_fast(0x7e) * kFp8SrcFrame == 0x1.cp127f, "the largest source code stays finite");

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
  // fp8: a row block of more than direct_tiles row tiles reads its weight micro-panels widened once into
  // the worker's workspace (fp32, [kc][16] in column order), not widened again by every row tile; up to
  // two tiles (decode) widen in registers, reading the packed weights once, straight from memory.
  // m256n2048k7168, 2 threads, alternating: 93.6-94.0 -> 109.3-112.6 GFLOP/s. bf16 (one load, a shift and
  // a mask per k step) measured no gain (108-127 against 123-136) and keeps widening in the tiles.
  using bk_t = float;
  static constexpr bool converts_b = DT == dtype::fp8;
  static constexpr std::int64_t direct_tiles = 2;
  static std::int64_t b_scratch_bytes(std::int64_t kc) { return kc * NR * 4; }
  static void convert_b(const b_t* b, std::int64_t kc, float* out) {
    for (std::int64_t p = 0; p < kc; ++p) {
      __m256 w0, w1;
      widen(b + p * NR, w0, w1);
      if constexpr (DT == dtype::bf16) bf16_natural(w0, w1);
      _mm256_storeu_ps(out + p * NR, w0);
      _mm256_storeu_ps(out + p * NR + 8, w1);
    }
  }
  static float cvt(b_t v) {
    if constexpr (DT == dtype::bf16) return bf16_to_f32(v);
    else return fp8_to_f32_fast(v) * kFp8SrcFrame;
  }
  static void pack_a(const gemm_desc& d, const gemm_args& a, std::int64_t i0, std::int64_t mc,
                     std::int64_t p0, std::int64_t kc, float* buf) {
    pack_rows_f32<MR>(static_cast<const b_t*>(a.src), d.k, i0, mc, p0, kc, buf, cvt);
  }
  static const b_t* b_panel(const gemm_desc& d, const void* packed, std::int64_t jp, std::int64_t p0) {
    return static_cast<const b_t*>(packed) + lowp_offset(d, NR, 1, jp, p0);
  }
  // One k step of the panel (16 columns) -> two vectors: columns 0-7 and 8-15 (fp8), or the even and
  // the odd columns (bf16, put back in order per k block by bf16_natural).
  static void widen(const b_t* p, __m256& w0, __m256& w1) {
    if constexpr (DT == dtype::bf16) bf16x16_to_f32_split(p, w0, w1);
    else w0 = fp8x8_framed(p), w1 = fp8x8_framed(p + 8);
  }
  // A micro-panel convert_b widened (column order; fp8 in the same 2^-120 frame).
  static void widen(const float* p, __m256& w0, __m256& w1) { w0 = _mm256_loadu_ps(p), w1 = _mm256_loadu_ps(p + 8); }

  // Independent partial sums per row: with one or two rows, 2 x mr accumulator chains would leave the
  // FMA latency exposed (4 cycles per k step, ~4 bytes of fp8 weights per cycle: less than one core's
  // share of the DRAM read), so k steps rotate over `na` sets, added up at the end (a fixed order, the
  // same for every thread count).
  template <int mr>
  static constexpr int na = mr == 1 ? 4 : mr == 2 ? 2 : 1;

  // One or two rows (decode): a call covers 16 k blocks (the driver's decode loop, one row tile), each
  // block's sum scaled (fp8) or added (bf16) into the tile's totals in registers, so dst is read and
  // written once per 16 blocks and the call's set-up is paid once per 32-64 KiB of weights instead of
  // per 2-8 KiB. More rows keep one block per call.
  static constexpr std::int64_t kMultiBlockRows = 2;
  static std::int64_t decode_kc(const gemm_desc& d) { return d.m <= kMultiBlockRows ? 16 * KC : KC; }

  // kc spans whole k blocks of KC (decode_kc) or one; the source of block j is at a + j *
  // a_panel_elems(KC) (the driver packs the source per KC block; a multi-block call has one row tile).
  // The totals start from dst (or zero) and take each block's sum by one fused multiply-add, so a
  // single-block call rounds exactly as a store of sum x scale + dst.
  // b: packed weights (widened here) or a convert_b micro-panel.
  template <int mr, class B>
  static void tile(std::int64_t kc, const float* a, const B* b, float* c, std::int64_t ldc, int nr,
                   const gemm_desc& d, const gemm_args& args, const tile_pos& t) {
    constexpr int sets = na<mr>;
    // (the lane masks are made again for the store: kept live across the loop they cost two registers)
    __m256 tot[mr][2];
    for (int i = 0; i < mr; ++i) {
      tot[i][0] = t.first ? _mm256_setzero_ps() : _mm256_maskload_ps(c + i * ldc, lane_mask(nr < 8 ? nr : 8));
      tot[i][1] = t.first ? _mm256_setzero_ps() : _mm256_maskload_ps(c + i * ldc + 8, lane_mask(nr > 8 ? nr - 8 : 0));
    }
    const std::int64_t kb = ceil_div(d.k, gemm_fp8_block);
    for (std::int64_t b0 = 0; b0 < kc; b0 += KC) {
      const std::int64_t bk = std::min(KC, kc - b0);
      const float* ab = a + (b0 / KC) * a_panel_elems(KC);
      __m256 acc[sets][mr][2];
      for (int u = 0; u < sets; ++u)
        for (int i = 0; i < mr; ++i) acc[u][i][0] = acc[u][i][1] = _mm256_setzero_ps();
      // k step p into set U. The set is a template argument (integer_sequence below): indexed by a loop
      // variable, GCC kept the sets in memory and stored them on every step.
      const auto step = [&]<int U>(std::integral_constant<int, U>, std::int64_t p) __attribute__((always_inline)) {
        __m256 w0, w1;
        widen(b + p * NR, w0, w1);
#pragma GCC unroll 8
        for (int i = 0; i < mr; ++i) {
          const __m256 av = _mm256_broadcast_ss(ab + (p - b0) * mr + i);  // [p][mr] (pack_rows_f32)
          acc[U][i][0] = _mm256_fmadd_ps(av, w0, acc[U][i][0]);
          acc[U][i][1] = _mm256_fmadd_ps(av, w1, acc[U][i][1]);
        }
      };
      std::int64_t p = b0;
      // The prefetches are compiled in or out (`streamed`), not tested per step.
      const auto run = [&]<bool streamed, int... U>(std::bool_constant<streamed>, std::integer_sequence<int, U...>)
                           __attribute__((always_inline)) {
        for (; p + sets <= b0 + bk; p += sets) {
          if constexpr (streamed) stream_prefetch<sets * NR * std::int64_t{sizeof(B)}>(b + p * NR);
          (step(std::integral_constant<int, U>{}, p + U), ...);
        }
        for (; p < b0 + bk; ++p) step(std::integral_constant<int, 0>{}, p);
#pragma GCC unroll 8
        for (int i = 0; i < mr; ++i)
          for (int h = 0; h < 2; ++h) ((acc[0][i][h] = U == 0 ? acc[0][i][h] : _mm256_add_ps(acc[0][i][h], acc[U][i][h])), ...);
      };
      if (t.streamed) run(std::true_type{}, std::make_integer_sequence<int, sets>{});
      else run(std::false_type{}, std::make_integer_sequence<int, sets>{});
      if constexpr (std::is_same_v<B, bf16_t>)
        for (int i = 0; i < mr; ++i) bf16_natural(acc[0][i][0], acc[0][i][1]);
      for (int i = 0; i < mr; ++i) {
        __m256 s = _mm256_set1_ps(1.0f);
        if constexpr (DT == dtype::fp8) {
          const std::int64_t blk = (t.p0 + b0) / gemm_fp8_block;  // NR divides the block
          s = _mm256_set1_ps(args.src_scale[(t.i0 + i) * kb + blk] * args.wei_scale[(t.j0 / gemm_fp8_block) * kb + blk] *
                             kFp8SumFrame);
        }
        for (int h = 0; h < 2; ++h) tot[i][h] = _mm256_fmadd_ps(acc[0][i][h], s, tot[i][h]);
      }
    }
    const __m256i k0 = lane_mask(nr < 8 ? nr : 8), k1 = lane_mask(nr > 8 ? nr - 8 : 0);
    for (int i = 0; i < mr; ++i) {
      _mm256_maskstore_ps(c + i * ldc, k0, tot[i][0]);
      _mm256_maskstore_ps(c + i * ldc + 8, k1, tot[i][1]);
    }
  }
  template <class B>
  static void ukr(int mr, std::int64_t kc, const float* a, const B* b, float* c, std::int64_t ldc, int nr,
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
      std::int32_t* out = buf + (ir / MR) * MR * pairs;  // [q][mr], dense as pack_rows_f32's panels
      for (std::int64_t i = 0; i < mr; ++i) {
        const std::int8_t* row = src + (i0 + ir + i) * d.k + p0;
        for (std::int64_t q = 0; q < pairs; ++q) {
          const std::int16_t lo = row[2 * q];
          const std::int16_t hi = 2 * q + 1 < kc ? row[2 * q + 1] : 0;
          out[q * mr + i] = static_cast<std::int32_t>(static_cast<std::uint16_t>(lo) |
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
      if (t.streamed) stream_prefetch<2 * NR>(b);
      // 32 bytes = 16 columns x (k, k+1): columns 0-7 then 8-15, widened to int16 pairs.
      const __m256i b0 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b)));
      const __m256i b1 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 16)));
#pragma GCC unroll 8
      for (int i = 0; i < mr; ++i) {
        const __m256i av = _mm256_set1_epi32(a[i]);
        acc0[i] = _mm256_add_epi32(acc0[i], _mm256_madd_epi16(av, b0));
        acc1[i] = _mm256_add_epi32(acc1[i], _mm256_madd_epi16(av, b1));
      }
      a += mr;
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
