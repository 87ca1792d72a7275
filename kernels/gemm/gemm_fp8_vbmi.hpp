// e4m3 -> bf16 by byte table lookups (AVX512_VBMI), shared by the translation units compiled with VBMI:
// gemm_fp8_avx512vbmi.cpp (avx512:fp8) and gemm_amx.cpp (amx:fp8). Internal linkage.
//
// Every e4m3 value is exactly a bf16 value. The conversion of 64 values is two vpermi2b lookups (low and
// high byte of the bf16 code of the 7 exponent+mantissa bits, subnormals included), one ternary-logic op
// for the sign and two vpunpck{l,h}bw; packed weights are stored in the matching byte order
// (lowp_layout::unpack_order), so the unpacked words come out as [64][2] bf16 pair rows.
#pragma once
#include <bit>

#include "kernels/common/isa.hpp"

#include "kernels/gemm/gemm_lowp_avx512.hpp"

namespace infermark::gemm_detail {
namespace {

// bf16 bits of the e4m3 code `c` (sign included) times `factor` (a power of two that keeps every code
// in bf16's normal range or at zero): the fp32 value has at most 4 significant bits, so the upper half
// of the fp32 bits is exact.
constexpr std::uint16_t e4m3_bf16_bits(int c, float factor = 1.0f) {
  return static_cast<std::uint16_t>(std::bit_cast<std::uint32_t>(fp8_to_f32_fast(static_cast<std::uint8_t>(c)) * factor) >> 16);
}

struct bf16_byte_tables {
  alignas(64) std::uint8_t lo[128];
  alignas(64) std::uint8_t hi[128];
};
constexpr bf16_byte_tables make_tables(float factor) {
  bf16_byte_tables t{};
  for (int em = 0; em < 128; ++em) {
    t.lo[em] = static_cast<std::uint8_t>(e4m3_bf16_bits(em, factor) & 0xff);
    t.hi[em] = static_cast<std::uint8_t>(e4m3_bf16_bits(em, factor) >> 8);
  }
  return t;
}
alignas(64) constexpr bf16_byte_tables kE4m3Bf16 = make_tables(1.0f);
static_assert(e4m3_bf16_bits(0x38) == 0x3f80, "1.0");
static_assert(e4m3_bf16_bits(0x7e) == 0x43e0, "448, the largest finite e4m3");
static_assert(e4m3_bf16_bits(0x01) == 0x3b00 && e4m3_bf16_bits(0x07) == 0x3c60, "subnormals 2^-9, 7 x 2^-9");

// Software prefetch distance for streamed e4m3 panels, measured per vendor (m1n2048k7168 / m1n4096k7168
// fp8, cold, 2 threads):
//  - Sapphire-Rapids-class host: 52% of the DRAM read without, 76-84% at 1-2 KiB ahead, no gain from
//    4 KiB on nor from a second, farther L2 prefetch;
//  - Zen 5 VM, three alternating rounds at the same read bandwidth (74-76 GB/s): 54.0 / 58.5 / 55.1 GB/s
//    without, 51.7 / 49.5 / 50.0 GB/s at 1536 B ahead (no prefetch also won in a standalone loop).
// AMD cores (only Zen 5 measured) therefore go without; Intel and others keep 1536 B.
inline std::int64_t stream_prefetch() {
  static const std::int64_t bytes = cpu_is_amd() ? 0 : 1536;
  return bytes;
}

// The four table registers, loaded once per tile (from kE4m3Bf16, or another make_tables()).
struct e4m3_luts {
  __m512i lo0, lo1, hi0, hi1, sign;
  std::int64_t prefetch_bytes;  // streamed_row's distance (stream_prefetch())
  explicit e4m3_luts(const bf16_byte_tables& t = kE4m3Bf16)
      : lo0(_mm512_load_si512(t.lo)),
        lo1(_mm512_load_si512(t.lo + 64)),
        hi0(_mm512_load_si512(t.hi)),
        hi1(_mm512_load_si512(t.hi + 64)),
        sign(_mm512_set1_epi8(static_cast<char>(0x80))),
        prefetch_bytes(stream_prefetch()) {}
  // 64 e4m3 bytes (unpack order) -> two vectors of 32 bf16 ([NR][2] order).
  INFERMARK_ROW_INLINE void convert(__m512i x, __m512i& v0, __m512i& v1) const {
    const __m512i lo = _mm512_permutex2var_epi8(lo0, x, lo1);  // index bits 0-6; bit 7 (sign) ignored
    __m512i hi = _mm512_permutex2var_epi8(hi0, x, hi1);
    hi = _mm512_ternarylogic_epi32(hi, x, sign, 0xf8);  // hi | (x & 0x80)
    v0 = _mm512_unpacklo_epi8(lo, hi);
    v1 = _mm512_unpackhi_epi8(lo, hi);
  }
  // One 128-byte packed pair row -> bv[0..3].
  INFERMARK_ROW_INLINE void row(const fp8_t* b, __m512i (&bv)[NV]) const {
    convert(_mm512_loadu_si512(b), bv[0], bv[1]);
    convert(_mm512_loadu_si512(b + 64), bv[2], bv[3]);
  }
  // row() of a panel streamed from memory: converting leaves too few loads in flight to stream at the
  // read bandwidth on some cores, so the rows prefetch_bytes ahead are prefetched there (stream_prefetch).
  INFERMARK_ROW_INLINE void streamed_row(const fp8_t* b, __m512i (&bv)[NV]) const {
    if (prefetch_bytes != 0) {
      _mm_prefetch(reinterpret_cast<const char*>(b) + prefetch_bytes, _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(b) + prefetch_bytes + 64, _MM_HINT_T0);
    }
    row(b, bv);
  }
};

// A packed e4m3 micro-panel of kc values per column -> bf16 pair rows [ceil(kc/2)][64][2] (the layout the
// bf16 kernels read; out 64-byte aligned).
inline void e4m3_panel_to_bf16(const fp8_t* b, std::int64_t kc, std::uint16_t* out) {
  const e4m3_luts lut;
  for (std::int64_t q = 0; q < ceil_div(kc, 2); ++q) {
    __m512i bv[NV];
    lut.streamed_row(b + q * 128, bv);
    for (int v = 0; v < NV; ++v) _mm512_store_si512(out + q * 128 + 32 * v, bv[v]);
  }
}

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

}  // namespace
}  // namespace infermark::gemm_detail
