// bf16 / int8 / fp8 GEMM microkernels for AVX2+FMA, 6 rows x 16 columns like the fp32 kernel. AVX2
// has no bf16/fp8 arithmetic: weights are widened to fp32 in registers (bf16: a shift and a mask; e4m3: a
// sign extension, two shifts and two masks per 16 weights, see fp8x16_framed_split) and the source rows
// are converted to fp32 once when packed. int8 sign-extends k pairs to 16 bits and uses vpmaddwd
// (exact: |pair sum| <= 2 * 128 * 128), int32 accumulation; partial sums live in dst between k blocks and
// the last block applies the scales.
#include <immintrin.h>

#include <algorithm>
#include <type_traits>
#include <utility>

#include "kernels/gemm/gemm_driver.hpp"
#include "kernels/gemm/gemm_kernels.hpp"

namespace infermark::gemm_detail {
namespace {

inline __m256i lane_mask(int nr) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(nr), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// One-panel decode tiles (tile_pos::streamed: three or more rows, or a leftover panel beside the
// lockstep ones, see decode_streams) read each weight panel once, straight from memory, and ask for the
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
// 16 e4m3 bytes (one k step of a panel) -> floats of value x 2^-120, the even columns in w0 and the odd
// ones in w1 (the order bf16x16_to_f32_split has). Sign-extended to 16 bits, a code has its sign in bits
// 7-15 and its 7 exponent+mantissa bits in 0-6. Shifted left by 20 (32-bit lanes: the even column's
// word) or by 4 (16-bit lanes: the odd column's, the high word), the sign lands in bit 31 (and 27-30)
// and the 7 bits in fp32's bits 20-26; the mask keeps those. One widening and two shifts per 16 weights,
// where sign-extending each half to 32 bits took two and two (hot m1n2048k1024, one core: 15.5 -> 18.2
// GB/s, best of 31). Exact for every non-NaN code: a normal code lands on a normal fp32 (exponent field
// 1-15), a subnormal one (m x 2^-9) on the fp32 denormal m x 2^-129. No multiply restores the bias: the
// source is packed x 2^119 (kFp8SrcFrame) and the scale doubles the sums (kFp8SumFrame), so every
// product src x wei / 2 is formed exactly and normal (>= 2^-19) and the sums are those of the unscaled
// values.
inline void fp8x16_framed_split(const fp8_t* p, __m256& w0, __m256& w1) {
  const __m256i y = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  const __m256i m = _mm256_set1_epi32(static_cast<int>(0x87f00000u));
  w0 = _mm256_castsi256_ps(_mm256_and_si256(_mm256_slli_epi32(y, 20), m));
  w1 = _mm256_castsi256_ps(_mm256_and_si256(_mm256_slli_epi16(y, 4), m));
}
// 8 e4m3 codes -> 8 floats in the same frame (fp8x16_framed_split) and in column order (sign-extended to 32 bits).
inline __m256 fp8x8_framed(const fp8_t* p) {
  const __m256i x = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_and_si256(_mm256_slli_epi32(x, 20), _mm256_set1_epi32(static_cast<int>(0x87f00000u))));
}
constexpr float kFp8SrcFrame = 0x1p119f, kFp8SumFrame = 2.0f;
static_assert(fp8_to_f32_fast(0x7e) * kFp8SrcFrame == 0x1.cp127f, "the largest source code stays finite");

// Source conversions, 8 elements at a time (pack_rows_f32_avx2): bf16 -> fp32; e4m3 -> fp32 x 2^119,
// through the weights' 2^-120 frame and two exact power-of-two products (the result is normal for every
// code), so bit-identical to fp8_to_f32_fast(v) * kFp8SrcFrame.
inline __m256 bf16x8_to_f32(const bf16_t* p) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16));
}
inline __m256 fp8x8_to_src_frame(const fp8_t* p) {
  return _mm256_mul_ps(_mm256_mul_ps(fp8x8_framed(p), _mm256_set1_ps(0x1p120f)), _mm256_set1_ps(kFp8SrcFrame));
}

// pack_rows_f32 (same layout) converting 8 k at a time with cvt8, the tail with cvt. The decode loop
// packs its rows on every call, and a MoE expert's sub-GEMMs each pack the same rows again: one element
// at a time, random e4m3 rows took 0.50 ns (one row) / 0.85-0.92 ns (two, interleaved) per element on
// one Zen 3 core, 4-13% of a cold 128-column gate chunk; 8 at a time 0.23-0.25 / 0.30-0.32 ns.
template <std::int64_t MR, class S, class Cvt8, class Cvt>
void pack_rows_f32_avx2(const S* src, std::int64_t ld, std::int64_t i0, std::int64_t mc, std::int64_t p0, std::int64_t kc,
                        float* buf, Cvt8 cvt8, Cvt cvt) {
  for (std::int64_t ir = 0; ir < mc; ir += MR) {
    const std::int64_t mr = std::min(MR, mc - ir);
    float* out = buf + ir * kc;
    const S* r0 = src + (i0 + ir) * ld + p0;
    std::int64_t p = 0;
    if (mr == 1) {
      for (; p + 8 <= kc; p += 8) _mm256_storeu_ps(out + p, cvt8(r0 + p));
    } else if (mr == 2) {
      for (; p + 8 <= kc; p += 8) {
        const __m256 v0 = cvt8(r0 + p), v1 = cvt8(r0 + ld + p);
        const __m256 lo = _mm256_unpacklo_ps(v0, v1), hi = _mm256_unpackhi_ps(v0, v1);  // k [0,1 | 4,5], [2,3 | 6,7]
        _mm256_storeu_ps(out + 2 * p, _mm256_permute2f128_ps(lo, hi, 0x20));
        _mm256_storeu_ps(out + 2 * p + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
      }
    } else {
      for (; p + 8 <= kc; p += 8)
        for (std::int64_t i = 0; i < mr; ++i) {
          alignas(32) float v[8];
          _mm256_store_ps(v, cvt8(r0 + i * ld + p));
          for (int l = 0; l < 8; ++l) out[(p + l) * mr + i] = v[l];
        }
    }
    for (; p < kc; ++p)
      for (std::int64_t i = 0; i < mr; ++i) out[p * mr + i] = cvt(r0[i * ld + p]);
  }
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
  // fp8: a row block of more than direct_tiles row tiles reads its weight micro-panels widened once into
  // the worker's workspace (fp32, [kc][16] in column order), not widened again by every row tile; up to
  // two tiles (decode) widen in registers, reading the packed weights once, straight from memory.
  // m256n2048k7168, 2 threads, alternating: 93.6-94.0 -> 109.3-112.6 GFLOP/s. bf16 (one load, a shift and
  // a mask per k step) measured no gain (108-127 against 123-136) and keeps widening in the tiles.
  using bk_t = float;
  static constexpr bool converts_b = DT == dtype::fp8;
  static constexpr std::int64_t direct_tiles = 2;
  static std::int64_t b_scratch_bytes(std::int64_t kc) { return kc * NR * 4; }
  // (column order straight away: 8 codes at a time, no even/odd split to undo per k step)
  static void convert_b(const b_t* b, std::int64_t kc, float* out) {
    for (std::int64_t p = 0; p < kc; ++p) {
      _mm256_storeu_ps(out + p * NR, fp8x8_framed(b + p * NR));
      _mm256_storeu_ps(out + p * NR + 8, fp8x8_framed(b + p * NR + 8));
    }
  }
  static float cvt(b_t v) {
    if constexpr (DT == dtype::bf16) return bf16_to_f32(v);
    else return fp8_to_f32_fast(v) * kFp8SrcFrame;
  }
  static void pack_a(const gemm_desc& d, const gemm_args& a, std::int64_t i0, std::int64_t mc,
                     std::int64_t p0, std::int64_t kc, float* buf) {
    const auto cvt8 = [](const b_t* p) {
      if constexpr (DT == dtype::bf16) return bf16x8_to_f32(p);
      else return fp8x8_to_src_frame(p);
    };
    pack_rows_f32_avx2<MR>(static_cast<const b_t*>(a.src), d.k, i0, mc, p0, kc, buf, cvt8, cvt);
  }
  static const b_t* b_panel(const gemm_desc& d, const void* packed, std::int64_t jp, std::int64_t p0) {
    return static_cast<const b_t*>(packed) + lowp_offset(d, NR, 1, jp, p0);
  }
  // One k step of the panel (16 columns) -> two vectors: the even and the odd columns (put back in order
  // per k block by bf16_natural).
  static void widen(const b_t* p, __m256& w0, __m256& w1) {
    if constexpr (DT == dtype::bf16) bf16x16_to_f32_split(p, w0, w1);
    else fp8x16_framed_split(p, w0, w1);
  }
  // A micro-panel convert_b widened (column order; fp8 in the same 2^-120 frame).
  static void widen(const float* p, __m256& w0, __m256& w1) { w0 = _mm256_loadu_ps(p), w1 = _mm256_loadu_ps(p + 8); }

  // Decode with one row tile of one or two rows reads decode_streams(mr) weight panels in lockstep
  // (the driver's decode loop, ukr_streams): one sequential stream per core kept too few lines in
  // flight to reach the read bandwidth (a plain read on the Zen 3 VM: one stream per core 0.70-0.75 of
  // the probe's four, two 0.85-0.97). The panels also give the FMA chains their independence: every
  // panel has one accumulator pair per row whatever S is, so a panel sums in the same order alone
  // (a leftover panel, S = 1) as beside others.
  static constexpr int decode_streams(int mr) { return lockstep_panels_16_regs(mr); }

  // One or two rows (decode): a call covers 16 k blocks (the driver's decode loop, one row tile), each
  // block's sum scaled (fp8) or added (bf16) into the tile's totals in registers, so dst is read and
  // written once per 16 blocks and the call's set-up is paid once per 32-64 KiB of weights instead of
  // per 2-8 KiB. More rows keep one block per call.
  static constexpr std::int64_t kMultiBlockRows = 2;
  static std::int64_t decode_kc(const gemm_desc& d) { return d.m <= kMultiBlockRows ? 16 * KC : KC; }

  // S weight panels at b[s] (all NR wide when S > 1), their dst columns at c[s] and first column j0[s].
  // kc spans whole k blocks of KC (decode_kc) or one; the source of block j is at a + j *
  // a_panel_elems(KC) (the driver packs the source per KC block; a multi-block call has one row tile).
  // The totals start from dst (or zero) and take each block's sum by one fused multiply-add, so a
  // single-block call rounds exactly as a store of sum x scale + dst.
  // b: packed weights (widened here) or a convert_b micro-panel.
  // prefetch: a streamed one-panel call (tile_pos::streamed, S = 1); several panels in lockstep keep
  // enough lines in flight without (hot m1n2048k2048 fp8, 2 threads: 19 GB/s with the prefetches, 28.8
  // without).
  template <int mr, int S, bool prefetch, class B>
  static void tile(std::int64_t kc, const float* a, const B* const* b, float* const* c, std::int64_t ldc, int nr,
                   const gemm_desc& d, const gemm_args& args, const tile_pos& t, const std::int64_t* j0) {
    // (the lane masks are made again for the store: kept live across the loop they cost two registers)
    __m256 tot[S][mr][2];
    for (int s = 0; s < S; ++s)
      for (int i = 0; i < mr; ++i) {
        tot[s][i][0] = t.first ? _mm256_setzero_ps() : _mm256_maskload_ps(c[s] + i * ldc, lane_mask(nr < 8 ? nr : 8));
        tot[s][i][1] = t.first ? _mm256_setzero_ps() : _mm256_maskload_ps(c[s] + i * ldc + 8, lane_mask(nr > 8 ? nr - 8 : 0));
      }
    const std::int64_t kb = ceil_div(d.k, gemm_fp8_block);
    for (std::int64_t b0 = 0; b0 < kc; b0 += KC) {
      const std::int64_t bk = std::min(KC, kc - b0);
      const float* ab = a + (b0 / KC) * a_panel_elems(KC);
      __m256 acc[S][mr][2];
      for (int s = 0; s < S; ++s)
        for (int i = 0; i < mr; ++i) acc[s][i][0] = acc[s][i][1] = _mm256_setzero_ps();
      const auto step = [&](std::int64_t p) __attribute__((always_inline)) {
        // Source broadcasts: per row as used with one panel (six rows leave no register for more);
        // shared by the panels with several (one or two rows).
        const auto src = [&](int i) __attribute__((always_inline)) { return _mm256_broadcast_ss(ab + (p - b0) * mr + i); };
        __m256 av[S > 1 ? mr : 1];
        if constexpr (S > 1)
          for (int i = 0; i < mr; ++i) av[i] = src(i);  // [p][mr] (pack_rows_f32)
#pragma GCC unroll 4
        for (int s = 0; s < S; ++s) {
          if constexpr (prefetch) stream_prefetch<NR * std::int64_t{sizeof(B)}>(b[s] + p * NR);
          __m256 w0, w1;
          widen(b[s] + p * NR, w0, w1);
#pragma GCC unroll 8
          for (int i = 0; i < mr; ++i) {
            const __m256 ai = S > 1 ? av[i] : src(i);
            acc[s][i][0] = _mm256_fmadd_ps(ai, w0, acc[s][i][0]);
            acc[s][i][1] = _mm256_fmadd_ps(ai, w1, acc[s][i][1]);
          }
        }
      };
#pragma GCC unroll 2
      for (std::int64_t p = b0; p < b0 + bk; ++p) step(p);
      for (int s = 0; s < S; ++s) {
        if constexpr (!std::is_same_v<B, float>)
          for (int i = 0; i < mr; ++i) bf16_natural(acc[s][i][0], acc[s][i][1]);
        for (int i = 0; i < mr; ++i) {
          __m256 sc = _mm256_set1_ps(1.0f);
          if constexpr (DT == dtype::fp8) {
            const std::int64_t blk = (t.p0 + b0) / gemm_fp8_block;  // NR divides the block
            sc = _mm256_set1_ps(args.src_scale[(t.i0 + i) * kb + blk] * args.wei_scale[(j0[s] / gemm_fp8_block) * kb + blk] *
                                kFp8SumFrame);
          }
          for (int h = 0; h < 2; ++h) tot[s][i][h] = _mm256_fmadd_ps(acc[s][i][h], sc, tot[s][i][h]);
        }
      }
    }
    const __m256i k0 = lane_mask(nr < 8 ? nr : 8), k1 = lane_mask(nr > 8 ? nr - 8 : 0);
    for (int s = 0; s < S; ++s)
      for (int i = 0; i < mr; ++i) {
        _mm256_maskstore_ps(c[s] + i * ldc, k0, tot[s][i][0]);
        _mm256_maskstore_ps(c[s] + i * ldc + 8, k1, tot[s][i][1]);
      }
  }
  template <int mr, class B>
  static void tile(std::int64_t kc, const float* a, const B* b, float* c, std::int64_t ldc, int nr,
                   const gemm_desc& d, const gemm_args& args, const tile_pos& t) {
    if (t.streamed) tile<mr, 1, true>(kc, a, &b, &c, ldc, nr, d, args, t, &t.j0);
    else tile<mr, 1, false>(kc, a, &b, &c, ldc, nr, d, args, t, &t.j0);
  }
  template <class B>
  static void ukr(int mr, std::int64_t kc, const float* a, const B* b, float* c, std::int64_t ldc, int nr,
                  const gemm_desc& d, const gemm_args& args, const tile_pos& t) {
    INFERMARK_MR_SWITCH(kc, a, b, c, ldc, nr, d, args, t)
  }
  static void ukr_streams(int mr, std::int64_t kc, const float* a, const b_t* const* b, float* const* c, std::int64_t ldc,
                          const gemm_desc& d, const gemm_args& args, const tile_pos& t, const std::int64_t* j0) {
    if (mr == 1) return tile<1, decode_streams(1), false>(kc, a, b, c, ldc, NR, d, args, t, j0);
    return tile<2, decode_streams(2), false>(kc, a, b, c, ldc, NR, d, args, t, j0);
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
      // One or two rows (decode, packed on every call): 8 pairs at a time, the sign-extended int16 of 16
      // consecutive codes being 8 pairs already; two rows interleaved as pack_rows_f32_avx2 does.
      std::int64_t q0 = 0;
      const std::int8_t* r0 = src + (i0 + ir) * d.k + p0;
      const auto pairs8 = [](const std::int8_t* p) {
        return _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
      };
      if (mr == 1) {
        for (; 2 * q0 + 16 <= kc; q0 += 8) _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + q0), pairs8(r0 + 2 * q0));
      } else if (mr == 2) {
        for (; 2 * q0 + 16 <= kc; q0 += 8) {
          const __m256i v0 = pairs8(r0 + 2 * q0), v1 = pairs8(r0 + d.k + 2 * q0);
          const __m256i lo = _mm256_unpacklo_epi32(v0, v1), hi = _mm256_unpackhi_epi32(v0, v1);
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 2 * q0), _mm256_permute2x128_si256(lo, hi, 0x20));
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 2 * q0 + 8), _mm256_permute2x128_si256(lo, hi, 0x31));
        }
      }
      for (std::int64_t i = 0; i < mr; ++i) {
        const std::int8_t* row = src + (i0 + ir + i) * d.k + p0;
        for (std::int64_t q = q0; q < pairs; ++q) {
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

  // Decode: panels in lockstep as widen_avx2::decode_streams (one accumulator pair per row and panel).
  static constexpr int decode_streams(int mr) { return lockstep_panels_16_regs(mr); }

  // S panels at b[s] (all NR wide when S > 1), dst columns at c[s], first column j0[s].
  template <int mr, int S, bool prefetch>
  static void tile(std::int64_t kc, const std::int32_t* a, const std::int8_t* const* b, float* const* c, std::int64_t ldc,
                   int nr, const gemm_args& args, const tile_pos& t, const std::int64_t* j0) {
    __m256i acc[S][mr][2];
    for (int s = 0; s < S; ++s)
      for (int i = 0; i < mr; ++i) acc[s][i][0] = acc[s][i][1] = _mm256_setzero_si256();
    const std::int64_t pairs = ceil_div(kc, 2);
#pragma GCC unroll 2
    for (std::int64_t q = 0; q < pairs; ++q) {
      __m256i av[S > 1 ? mr : 1];
      if constexpr (S > 1)
        for (int i = 0; i < mr; ++i) av[i] = _mm256_set1_epi32(a[q * mr + i]);
#pragma GCC unroll 4
      for (int s = 0; s < S; ++s) {
        const std::int8_t* bq = b[s] + q * 2 * NR;
        if constexpr (prefetch) stream_prefetch<2 * NR>(bq);
        // 32 bytes = 16 columns x (k, k+1): columns 0-7 then 8-15, widened to int16 pairs.
        const __m256i b0 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(bq)));
        const __m256i b1 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(bq + 16)));
#pragma GCC unroll 8
        for (int i = 0; i < mr; ++i) {
          const __m256i ai = S > 1 ? av[i] : _mm256_set1_epi32(a[q * mr + i]);
          acc[s][i][0] = _mm256_add_epi32(acc[s][i][0], _mm256_madd_epi16(ai, b0));
          acc[s][i][1] = _mm256_add_epi32(acc[s][i][1], _mm256_madd_epi16(ai, b1));
        }
      }
    }
    const __m256i k0 = lane_mask(nr < 8 ? nr : 8), k1 = lane_mask(nr > 8 ? nr - 8 : 0);
    for (int s = 0; s < S; ++s)
      for (int i = 0; i < mr; ++i) {
        float* ci = c[s] + i * ldc;
        __m256i s0 = acc[s][i][0], s1 = acc[s][i][1];
        if (!t.first) {
          s0 = _mm256_add_epi32(s0, _mm256_maskload_epi32(reinterpret_cast<const int*>(ci), k0));
          s1 = _mm256_add_epi32(s1, _mm256_maskload_epi32(reinterpret_cast<const int*>(ci + 8), k1));
        }
        if (t.last) {
          const __m256 ss = _mm256_set1_ps(args.src_scale[t.i0 + i]);
          const __m256 w0 = _mm256_maskload_ps(args.wei_scale + j0[s], k0);
          const __m256 w1 = _mm256_maskload_ps(args.wei_scale + j0[s] + 8, k1);
          _mm256_maskstore_ps(ci, k0, _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(s0), ss), w0));
          _mm256_maskstore_ps(ci + 8, k1, _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(s1), ss), w1));
        } else {
          _mm256_maskstore_epi32(reinterpret_cast<int*>(ci), k0, s0);
          _mm256_maskstore_epi32(reinterpret_cast<int*>(ci + 8), k1, s1);
        }
      }
  }
  template <int mr>
  static void tile(std::int64_t kc, const std::int32_t* a, const std::int8_t* b, float* c, std::int64_t ldc, int nr,
                   const gemm_desc&, const gemm_args& args, const tile_pos& t) {
    if (t.streamed) tile<mr, 1, true>(kc, a, &b, &c, ldc, nr, args, t, &t.j0);
    else tile<mr, 1, false>(kc, a, &b, &c, ldc, nr, args, t, &t.j0);
  }
  static void ukr(int mr, std::int64_t kc, const std::int32_t* a, const std::int8_t* b, float* c,
                  std::int64_t ldc, int nr, const gemm_desc& d, const gemm_args& args, const tile_pos& t) {
    INFERMARK_MR_SWITCH(kc, a, b, c, ldc, nr, d, args, t)
  }
  static void ukr_streams(int mr, std::int64_t kc, const std::int32_t* a, const std::int8_t* const* b, float* const* c,
                          std::int64_t ldc, const gemm_desc&, const gemm_args& args, const tile_pos& t, const std::int64_t* j0) {
    if (mr == 1) return tile<1, decode_streams(1), false>(kc, a, b, c, ldc, NR, args, t, j0);
    return tile<2, decode_streams(2), false>(kc, a, b, c, ldc, NR, args, t, j0);
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
