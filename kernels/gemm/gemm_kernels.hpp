// Internal: the per-ISA GEMM entry points behind gemm_impls(). Each *_avx512/_avx2/_neon.cpp file is
// compiled with its ISA's flags and may only be called after check() has confirmed the CPU (and cap).
#pragma once
#include <cstdint>

#include "kernels/gemm/gemm.hpp"

namespace infermark::gemm_detail {

// Weight panel widths (output channels per packed panel) of each fp32 microkernel; pack() and
// execute() of one implementation must agree on it.
inline constexpr std::int64_t fp32_nr_avx512 = 64;
inline constexpr std::int64_t fp32_nr_avx2 = 16;
inline constexpr std::int64_t fp32_nr_generic = 8;
inline constexpr std::int64_t fp32_nr_neon = 12;

// The fp32 implementations (x86 ones only on x86-64, the NEON one only on AArch64).
extern const gemm_impl fp32_avx512_impl, fp32_avx2_impl, fp32_neon_impl, fp32_generic_impl;

void fp32_execute_avx512(const gemm_desc& d, const gemm_args& a, int ithr, int nthr);
std::size_t fp32_workspace_avx512(const gemm_desc& d, int nthr);
void fp32_execute_avx2(const gemm_desc& d, const gemm_args& a, int ithr, int nthr);
std::size_t fp32_workspace_avx2(const gemm_desc& d, int nthr);
void fp32_execute_generic(const gemm_desc& d, const gemm_args& a, int ithr, int nthr);
std::size_t fp32_workspace_generic(const gemm_desc& d, int nthr);
void fp32_execute_neon(const gemm_desc& d, const gemm_args& a, int ithr, int nthr);
std::size_t fp32_workspace_neon(const gemm_desc& d, int nthr);

}  // namespace infermark::gemm_detail

namespace infermark::gemm_detail {

// Low-precision formats (bf16, int8, fp8). Packed weights: panels of NR output channels, k grouped by
// G consecutive values per column ([panel][ceil(k/G)][NR][G], zero-padded in n and k) so that one
// vector load feeds a dot-product instruction (G=2 for vdpbf16ps / vpmaddwd, G=4 for vpdpbusd).
// int8 VNNI panels are followed by int32 comp[n_panels*NR] = 128 * sum_k wei[j][k] (see int8 kernel).
// With `unpack_order`, the bytes of every 128-byte row [NR=64][G=2] of a panel are stored in the order
// that two 64-byte loads, widened to 16 bits by vpunpck{l,h}bw (which interleave within 128-bit lanes),
// give back as four 32-element vectors in [NR][G] order (see lowp_unpack_pos).
// With `subnormal_blocks` (fp8 rows of 64 x 2, k blocks of 128 = 64 rows), the panels are followed by
// uint8 flags[n_panels][ceil(k/128)]: 1 when that k block of the panel holds an e4m3 subnormal (see
// gemm_fp8_avx512vbmi.cpp: such blocks take the table conversion).
struct lowp_layout {
  std::int64_t nr, group;  // panel width, k group
  bool comp;               // int32 compensation after the panels
  bool unpack_order = false;
  bool subnormal_blocks = false;
};

// Stored position of element s (= column * 2 + k parity) of a 128-byte [64][2] row in unpack order:
// element s belongs to vector v = s / 32, word w = s % 32; vectors 0, 1 come from the low / high
// unpack of the first 64 bytes, vectors 2, 3 from the second, and an unpack takes bytes 0-7 (low) or
// 8-15 (high) of each 16-byte lane.
constexpr std::int64_t lowp_unpack_pos(std::int64_t s) {
  const std::int64_t v = s / 32, w = s % 32;
  return (v / 2) * 64 + 16 * (w / 8) + 8 * (v % 2) + w % 8;
}
inline constexpr lowp_layout bf16_avx512_layout{64, 2, false};
inline constexpr lowp_layout int8_avx512_layout{64, 4, true};
inline constexpr lowp_layout fp8_avx512_layout{64, 2, false, true, true};  // bf16 dot products on k pairs
inline constexpr lowp_layout fp8_fma_avx512_layout{64, 1, false};  // fp32 FMAs
inline constexpr lowp_layout bf16_avx2_layout{16, 1, false};
inline constexpr lowp_layout int8_avx2_layout{16, 2, false};
inline constexpr lowp_layout fp8_avx2_layout{16, 1, false};
inline constexpr lowp_layout lowp_generic_layout{8, 1, false};

// fp8 kernels use k blocks of exactly one scale block, so each block's sum is scaled once.
inline constexpr std::int64_t fp8_kc = 128;

void bf16_execute_avx512(const gemm_desc& d, const gemm_args& a, int ithr, int nthr);
std::size_t bf16_workspace_avx512(const gemm_desc& d, int nthr);
void int8_execute_avx512(const gemm_desc& d, const gemm_args& a, int ithr, int nthr);
std::size_t int8_workspace_avx512(const gemm_desc& d, int nthr);
void fp8_execute_avx512(const gemm_desc& d, const gemm_args& a, int ithr, int nthr);
std::size_t fp8_workspace_avx512(const gemm_desc& d, int nthr);
void fp8_fma_execute_avx512(const gemm_desc& d, const gemm_args& a, int ithr, int nthr);
std::size_t fp8_fma_workspace_avx512(const gemm_desc& d, int nthr);
void bf16_execute_avx2(const gemm_desc& d, const gemm_args& a, int ithr, int nthr);
std::size_t bf16_workspace_avx2(const gemm_desc& d, int nthr);
void int8_execute_avx2(const gemm_desc& d, const gemm_args& a, int ithr, int nthr);
std::size_t int8_workspace_avx2(const gemm_desc& d, int nthr);
void fp8_execute_avx2(const gemm_desc& d, const gemm_args& a, int ithr, int nthr);
std::size_t fp8_workspace_avx2(const gemm_desc& d, int nthr);

// AMX tile kernels on the AVX-512 packed panels (gemm_amx.cpp).
void bf16_execute_amx(const gemm_desc& d, const gemm_args& a, int ithr, int nthr);
std::size_t bf16_workspace_amx(const gemm_desc& d, int nthr);
void int8_execute_amx(const gemm_desc& d, const gemm_args& a, int ithr, int nthr);
std::size_t int8_workspace_amx(const gemm_desc& d, int nthr);
void fp8_execute_amx(const gemm_desc& d, const gemm_args& a, int ithr, int nthr);
std::size_t fp8_workspace_amx(const gemm_desc& d, int nthr);

extern const gemm_impl bf16_amx_impl, int8_amx_impl, fp8_amx_impl;
extern const gemm_impl bf16_avx512_impl, int8_avx512_impl, fp8_avx512_impl, fp8_fma_avx512_impl;
extern const gemm_impl bf16_avx2_impl, int8_avx2_impl, fp8_avx2_impl;
extern const gemm_impl bf16_generic_impl, int8_generic_impl, fp8_generic_impl;

}  // namespace infermark::gemm_detail
