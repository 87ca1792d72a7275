// bf16 / int8 / fp8 GEMM microkernels for AVX-512, 6 rows x 64 columns like the fp32 kernel:
//  bf16: vdpbf16ps on k pairs; the source pair is one dword broadcast straight from the src row.
//  int8: vpdpbusd on k quads; vpdpbusd wants unsigned x signed bytes, so the broadcast source quad is
//        flipped to src + 128 (xor 0x80) and the packed compensation 128 * sum_k wei is subtracted at
//        the end. Partial int32 sums live in dst between k blocks; the last block applies the scales.
//  fp8-fma: e4m3 weights dequantized in registers to fp32 FMAs (for CPUs without AVX512_BF16 or VBMI;
//        avx512:fp8, through bf16 dot products, is in gemm_fp8_avx512vbmi.cpp). One k block is one
//        128-wide scale block, so each block's sum is scaled once.
#include "kernels/gemm/gemm_lowp_avx512.hpp"

namespace infermark::gemm_detail {
namespace {

struct bf16_avx512 {
  static constexpr std::int64_t MR = 6, NR = bf16_avx512_layout.nr;
  // Even, so pairs never straddle k blocks. A 128 KiB weight micro-panel (L2) and few passes over dst;
  // it divides the expert reductions (2048, 7168) into equal blocks, where 768 left a short tail block.
  // Measured side by side (2 threads, Zen 4, two runs each; KC 384 / 512 / 768 / 1024 GFLOP/s):
  // m256n7168k2048 361-363 / 370-376 / 382-394 / 398-408, m2048n2048k7168 383-384 / 368-401 / 394-417 /
  // 408-420 (oneDNN 399-414 and 429-438 in the same runs); MC 192 instead of 384 was no better.
  static constexpr std::int64_t KC = 1024;
  static constexpr std::int64_t MC = 384;
  using a_t = bf16_t;
  static constexpr bool packs_a = false;
  static std::int64_t b_panel_bytes(std::int64_t kc) { return kc * NR * 2; }
  static const bf16_t* b_panel(const gemm_desc& d, const void* packed, std::int64_t jp, std::int64_t p0) {
    return static_cast<const bf16_t*>(packed) + lowp_offset(d, NR, 2, jp, p0);
  }

  template <int mr>
  static void tile(std::int64_t kc, const bf16_t* a, std::int64_t lda, const bf16_t* b, float* c,
                   std::int64_t ldc, int nr, bool first) {
    __m512 acc[mr][NV];
    for (int i = 0; i < mr; ++i)
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_ps();
    prefetch_dst<mr>(c, ldc, first);
    const std::int64_t pairs = kc / 2;
    bf16_pair_dots<mr>(acc, pairs, [&](int i, std::int64_t q) INFERMARK_ROW_INLINE { return load_u32(a + i * lda + 2 * q); }, bf16_rows(b));
    b += pairs * 2 * NR;
    if (kc & 1) {  // odd k: the last pair has one real element; its partner is zero in src and weights
      __m512i bv[NV];
      for (int v = 0; v < NV; ++v) bv[v] = _mm512_loadu_si512(b + 32 * v);
      for (int i = 0; i < mr; ++i) {
        const __m512i av = _mm512_set1_epi32(static_cast<int>(a[i * lda + kc - 1]));
        for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_dpbf16_ps(acc[i][v], (__m512bh)av, (__m512bh)bv[v]);
      }
    }
    store_f32<mr>(acc, c, ldc, nr, first);
  }
  static void ukr(int mr, std::int64_t kc, const bf16_t* a, const bf16_t* b, float* c, std::int64_t ldc,
                  int nr, const gemm_desc& d, const gemm_args&, const tile_pos& t) {
    INFERMARK_MR_SWITCH(kc, a, d.k, b, c, ldc, nr, t.first)
  }
};

struct int8_avx512 {
  static constexpr std::int64_t MR = 6, NR = int8_avx512_layout.nr;
  // Multiple of 4: quads never straddle k blocks. Partial int32 sums go through dst between k blocks,
  // so fewer, longer blocks win: m256n2048k7168 on one Zen 4 core, KC 256/512/1024/2048 = 251-279 /
  // 247-264 / 284-291 / 289-297 GOP/s (two runs each). Packing the flipped source quads contiguously
  // (no xor in the loop) measured no gain and was not kept.
  static constexpr std::int64_t KC = 2048;
  static constexpr std::int64_t MC = 384;
  using a_t = std::int8_t;
  static constexpr bool packs_a = false;
  static std::int64_t b_panel_bytes(std::int64_t kc) { return kc * NR; }
  static const std::int8_t* b_panel(const gemm_desc& d, const void* packed, std::int64_t jp, std::int64_t p0) {
    return static_cast<const std::int8_t*>(packed) + lowp_offset(d, NR, 4, jp, p0);
  }

  template <int mr>
  static void tile(std::int64_t kc, const std::int8_t* a, const std::int8_t* b, float* c, std::int64_t ldc,
                   int nr, const gemm_desc& d, const gemm_args& args, const tile_pos& t) {
    const std::int64_t lda = d.k;
    const __m512i flip = _mm512_set1_epi32(static_cast<int>(0x80808080u));
    __m512i acc[mr][NV];
    for (int i = 0; i < mr; ++i)
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_si512();
    prefetch_dst<mr>(c, ldc, t.first);
    const std::int64_t quads = kc / 4, rem = kc % 4;
#pragma GCC unroll 2
    for (std::int64_t q = 0; q < quads; ++q) {
      __m512i bv[NV];
      for (int v = 0; v < NV; ++v) bv[v] = _mm512_loadu_si512(b + 64 * v);
#pragma GCC unroll 8
      for (int i = 0; i < mr; ++i) {
        const __m512i av =
            _mm512_xor_si512(_mm512_set1_epi32(static_cast<int>(load_u32(a + i * lda + 4 * q))), flip);
        for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_dpbusd_epi32(acc[i][v], av, bv[v]);
      }
      b += 4 * NR;
    }
    if (rem) {  // the last quad is partial; its missing weights are zero, so any source byte works
      __m512i bv[NV];
      for (int v = 0; v < NV; ++v) bv[v] = _mm512_loadu_si512(b + 64 * v);
      for (int i = 0; i < mr; ++i) {
        std::uint32_t quad = 0;
        std::memcpy(&quad, a + i * lda + 4 * quads, static_cast<std::size_t>(rem));
        const __m512i av = _mm512_xor_si512(_mm512_set1_epi32(static_cast<int>(quad)), flip);
        for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_dpbusd_epi32(acc[i][v], av, bv[v]);
      }
    }
    __mmask16 mask[NV];
    col_masks(nr, mask);
    const std::int64_t panels = ceil_div(d.n, NR);
    const auto* comp = reinterpret_cast<const std::int32_t*>(static_cast<const std::int8_t*>(args.packed_wei) +
                                                             panels * NR * ceil_div(d.k, 4) * 4) + t.j0;
    for (int i = 0; i < mr; ++i)
      for (int v = 0; v < NV; ++v) {
        float* ci = c + i * ldc + 16 * v;
        __m512i sum = acc[i][v];
        if (!t.first) sum = _mm512_add_epi32(sum, _mm512_maskz_loadu_epi32(mask[v], ci));
        if (t.last) {
          sum = _mm512_sub_epi32(sum, _mm512_loadu_si512(comp + 16 * v));
          const __m512 ws = _mm512_maskz_loadu_ps(mask[v], args.wei_scale + t.j0 + 16 * v);
          const __m512 r = _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(sum),
                                                       _mm512_set1_ps(args.src_scale[t.i0 + i])), ws);
          _mm512_mask_storeu_ps(ci, mask[v], r);
        } else {
          _mm512_mask_storeu_epi32(ci, mask[v], sum);
        }
      }
  }
  static void ukr(int mr, std::int64_t kc, const std::int8_t* a, const std::int8_t* b, float* c,
                  std::int64_t ldc, int nr, const gemm_desc& d, const gemm_args& args, const tile_pos& t) {
    INFERMARK_MR_SWITCH(kc, a, b, c, ldc, nr, d, args, t)
  }
};

// 16 e4m3 bytes -> 16 floats (see fp8_to_f32_fast).
inline __m512 fp8x16_to_f32(__m128i bytes) {
  const __m512i x = _mm512_cvtepu8_epi32(bytes);
  const __m512i em = _mm512_and_si512(_mm512_slli_epi32(x, 20), _mm512_set1_epi32(0x07f00000));
  const __m512 mag = _mm512_mul_ps(_mm512_castsi512_ps(em), _mm512_set1_ps(0x1p120f));
  const __m512i sign = _mm512_slli_epi32(x, 24);  // bit 7 -> bit 31, the rest is masked off below
  // mag | (sign & 0x80000000)
  return _mm512_castsi512_ps(_mm512_ternarylogic_epi32(_mm512_castps_si512(mag), sign,
                                                       _mm512_set1_epi32(static_cast<int>(0x80000000u)), 0xf8));
}

struct fp8_fma_avx512 {
  static constexpr std::int64_t MR = 6, NR = fp8_fma_avx512_layout.nr;
  static constexpr std::int64_t KC = fp8_kc;
  static constexpr std::int64_t MC = 384;
  using a_t = float;
  static constexpr bool packs_a = true;
  static std::int64_t a_panel_elems(std::int64_t kc) { return MR * kc; }
  static std::int64_t b_panel_bytes(std::int64_t kc) { return kc * NR; }
  static void pack_a(const gemm_desc& d, const gemm_args& a, std::int64_t i0, std::int64_t mc,
                     std::int64_t p0, std::int64_t kc, float* buf) {
    pack_rows_f32<MR>(static_cast<const fp8_t*>(a.src), d.k, i0, mc, p0, kc, buf, fp8_to_f32_fast);
  }
  static const fp8_t* b_panel(const gemm_desc& d, const void* packed, std::int64_t jp, std::int64_t p0) {
    return static_cast<const fp8_t*>(packed) + lowp_offset(d, NR, 1, jp, p0);
  }

  template <int mr>
  static void tile(std::int64_t kc, const float* a, const fp8_t* b, float* c, std::int64_t ldc, int nr,
                   const gemm_desc& d, const gemm_args& args, const tile_pos& t) {
    __m512 acc[mr][NV];
    for (int i = 0; i < mr; ++i)
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_ps();
    prefetch_dst<mr>(c, ldc, t.first);
#pragma GCC unroll 2
    for (std::int64_t p = 0; p < kc; ++p) {
      __m512 bv[NV];
      for (int v = 0; v < NV; ++v)
        bv[v] = fp8x16_to_f32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 16 * v)));
#pragma GCC unroll 8
      for (int i = 0; i < mr; ++i) {
        const __m512 av = _mm512_set1_ps(a[i]);
        for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_fmadd_ps(av, bv[v], acc[i][v]);
      }
      a += mr;  // [p][mr] (pack_rows_f32)
      b += NR;
    }
    fp8_store_scaled<mr>(acc, c, ldc, nr, d, args, t);
  }
  static void ukr(int mr, std::int64_t kc, const float* a, const fp8_t* b, float* c, std::int64_t ldc,
                  int nr, const gemm_desc& d, const gemm_args& args, const tile_pos& t) {
    INFERMARK_MR_SWITCH(kc, a, b, c, ldc, nr, d, args, t)
  }
};

}  // namespace

void bf16_execute_avx512(const gemm_desc& d, const gemm_args& a, int ithr, int nthr) {
  drive<bf16_avx512>(d, a, ithr, nthr);
}
std::size_t bf16_workspace_avx512(const gemm_desc& d, int nthr) { return drive_workspace<bf16_avx512>(d, nthr); }
void int8_execute_avx512(const gemm_desc& d, const gemm_args& a, int ithr, int nthr) {
  drive<int8_avx512>(d, a, ithr, nthr);
}
std::size_t int8_workspace_avx512(const gemm_desc& d, int nthr) { return drive_workspace<int8_avx512>(d, nthr); }
void fp8_fma_execute_avx512(const gemm_desc& d, const gemm_args& a, int ithr, int nthr) {
  drive<fp8_fma_avx512>(d, a, ithr, nthr);
}
std::size_t fp8_fma_workspace_avx512(const gemm_desc& d, int nthr) { return drive_workspace<fp8_fma_avx512>(d, nthr); }

}  // namespace infermark::gemm_detail
