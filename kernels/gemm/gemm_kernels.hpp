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
void fp32_execute_avx2(const gemm_desc& d, const gemm_args& a, int ithr, int nthr);
void fp32_execute_generic(const gemm_desc& d, const gemm_args& a, int ithr, int nthr);
void fp32_execute_neon(const gemm_desc& d, const gemm_args& a, int ithr, int nthr);

}  // namespace infermark::gemm_detail
