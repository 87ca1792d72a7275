// avx512:fp8 -- fp8 e4m3 GEMM through bf16 dot products (AVX512_BF16), with e4m3 -> bf16 by byte table
// lookups (AVX512_VBMI). Compiled with AVX-512 + VBMI flags, called only when both are detected.
//
// Every e4m3 value is exactly a bf16 value, so vdpbf16ps forms the same products as fp32 FMAs at twice
// the rate. The conversion of 64 weights is two vpermi2b lookups (low and high byte of the bf16 code
// of the 7 exponent+mantissa bits, subnormals included), one ternary-logic op for the sign and two
// vpunpck{l,h}bw; the packed weights are stored in the matching byte order (lowp_layout::unpack_order),
// so the unpacked words come out as the [64][2] pair rows vdpbf16ps takes.
//
// Weights are used in one of two ways, chosen per row block by the driver (direct_tiles):
//  - few rows (decode: one row tile per block): every tile converts its micro-panel in registers and
//    nothing else touches it; the weights stream from memory once, at DRAM speed;
//  - more rows: each 128 x 64 micro-panel (one scale block) is converted once per row block into the
//    worker's workspace (converts_b) and read by every row tile.
// The source row block is packed as bf16 pairs, [MR][pairs] per micro-panel, converted by the same
// lookups. One k block is one 128-wide scale block, so each block's sum is scaled once.
#include "kernels/gemm/gemm_lowp_avx512.hpp"

#include <bit>

namespace infermark::gemm_detail {
namespace {

// bf16 bits of the e4m3 code `c` (sign included): its fp32 value has at most 4 significant bits, so the
// upper half of the fp32 bits is exact.
constexpr std::uint16_t e4m3_bf16_bits(int c) {
  return static_cast<std::uint16_t>(std::bit_cast<std::uint32_t>(fp8_to_f32_fast(static_cast<std::uint8_t>(c))) >> 16);
}

struct bf16_byte_tables {
  alignas(64) std::uint8_t lo[128];
  alignas(64) std::uint8_t hi[128];
};
constexpr bf16_byte_tables make_tables() {
  bf16_byte_tables t{};
  for (int em = 0; em < 128; ++em) {
    t.lo[em] = static_cast<std::uint8_t>(e4m3_bf16_bits(em) & 0xff);
    t.hi[em] = static_cast<std::uint8_t>(e4m3_bf16_bits(em) >> 8);
  }
  return t;
}
alignas(64) constexpr bf16_byte_tables kE4m3Bf16 = make_tables();
static_assert(e4m3_bf16_bits(0x38) == 0x3f80, "1.0");
static_assert(e4m3_bf16_bits(0x7e) == 0x43e0, "448, the largest finite e4m3");
static_assert(e4m3_bf16_bits(0x01) == 0x3b00 && e4m3_bf16_bits(0x07) == 0x3c60, "subnormals 2^-9, 7 x 2^-9");

// The four table registers, loaded once per tile.
struct e4m3_luts {
  __m512i lo0, lo1, hi0, hi1, sign;
  e4m3_luts()
      : lo0(_mm512_load_si512(kE4m3Bf16.lo)),
        lo1(_mm512_load_si512(kE4m3Bf16.lo + 64)),
        hi0(_mm512_load_si512(kE4m3Bf16.hi)),
        hi1(_mm512_load_si512(kE4m3Bf16.hi + 64)),
        sign(_mm512_set1_epi8(static_cast<char>(0x80))) {}
  // 64 e4m3 bytes (unpack order) -> two vectors of 32 bf16 ([NR][2] order).
  void convert(__m512i x, __m512i& v0, __m512i& v1) const {
    const __m512i lo = _mm512_permutex2var_epi8(lo0, x, lo1);  // index bits 0-6; bit 7 (sign) ignored
    __m512i hi = _mm512_permutex2var_epi8(hi0, x, hi1);
    hi = _mm512_ternarylogic_epi32(hi, x, sign, 0xf8);  // hi | (x & 0x80)
    v0 = _mm512_unpacklo_epi8(lo, hi);
    v1 = _mm512_unpackhi_epi8(lo, hi);
  }
  // One 128-byte packed pair row -> bv[0..3].
  void row(const fp8_t* b, __m512i (&bv)[NV]) const {
    convert(_mm512_loadu_si512(b), bv[0], bv[1]);
    convert(_mm512_loadu_si512(b + 64), bv[2], bv[3]);
  }
};

// `bytes` e4m3 values in natural order -> bf16 words, zero-padded to an even count (source rows: the
// lookups' lane-interleaved words are put back in order by two qword permutes).
inline void fp8_row_to_bf16(const e4m3_luts& lut, const fp8_t* p, std::int64_t bytes, std::uint16_t* out) {
  const __m512i first = _mm512_set_epi64(11, 10, 3, 2, 9, 8, 1, 0), second = _mm512_set_epi64(15, 14, 7, 6, 13, 12, 5, 4);
  const std::int64_t words = bytes + (bytes & 1);
  for (std::int64_t o = 0; o < bytes; o += 64) {
    const std::int64_t left = bytes - o, wleft = words - o;
    const __m512i x = _mm512_maskz_loadu_epi8(left >= 64 ? ~__mmask64{0} : (__mmask64{1} << left) - 1, p + o);
    __m512i v0, v1;
    lut.convert(x, v0, v1);
    const __mmask32 m0 = wleft >= 32 ? ~__mmask32{0} : static_cast<__mmask32>((1ull << wleft) - 1);
    const __mmask32 m1 = wleft >= 64 ? ~__mmask32{0} : wleft <= 32 ? 0 : static_cast<__mmask32>((1ull << (wleft - 32)) - 1);
    _mm512_mask_storeu_epi16(out + o, m0, _mm512_permutex2var_epi64(v0, first, v1));
    _mm512_mask_storeu_epi16(out + o + 32, m1, _mm512_permutex2var_epi64(v0, second, v1));
  }
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
  static std::int64_t a_panel_elems(std::int64_t kc) { return MR * ceil_div(kc, 2); }
  static std::int64_t b_panel_bytes(std::int64_t kc) { return ceil_div(kc, 2) * 2 * NR; }
  static std::int64_t b_scratch_bytes(std::int64_t kc) { return ceil_div(kc, 2) * 2 * NR * 2; }
  static const fp8_t* b_panel(const gemm_desc& d, const void* packed, std::int64_t jp, std::int64_t p0) {
    return static_cast<const fp8_t*>(packed) + lowp_offset(d, NR, 2, jp, p0);
  }
  static void convert_b(const fp8_t* b, std::int64_t kc, std::uint16_t* out) {
    const e4m3_luts lut;
    const std::int64_t pairs = ceil_div(kc, 2);
    for (std::int64_t q = 0; q < pairs; ++q) {
      __m512i bv[NV];
      lut.row(b + q * 128, bv);
      for (int v = 0; v < NV; ++v) _mm512_store_si512(out + q * 128 + 32 * v, bv[v]);
    }
  }
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
    const auto a_pair = [&](int i, std::int64_t q) { return a[i * pairs + q]; };
    if constexpr (std::is_same_v<B, fp8_t>) {
      const e4m3_luts lut;
      bf16_pair_dots<mr>(acc, pairs, a_pair, [&](std::int64_t q, __m512i (&bv)[NV]) { lut.row(b + q * 128, bv); });
    } else {
      bf16_pair_dots<mr>(acc, pairs, a_pair, bf16_rows(b));
    }
    fp8_store_scaled<mr>(acc, c, ldc, nr, d, args, t);
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
