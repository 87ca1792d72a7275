// Per-ISA builds of norm_core.hpp.
#pragma once
#include "kernels/norm/norm.hpp"

namespace infermark::norm_isa {

void rmsnorm_generic(const rmsnorm_desc& d, const rmsnorm_args& a, int ithr, int nthr);
void rope_generic(const rope_desc& d, const rope_args& a, int ithr, int nthr);
#if defined(__x86_64__) || defined(_M_X64)
void rmsnorm_avx2(const rmsnorm_desc& d, const rmsnorm_args& a, int ithr, int nthr);
void rope_avx2(const rope_desc& d, const rope_args& a, int ithr, int nthr);
void rmsnorm_avx512(const rmsnorm_desc& d, const rmsnorm_args& a, int ithr, int nthr);
void rope_avx512(const rope_desc& d, const rope_args& a, int ithr, int nthr);
#endif

}  // namespace infermark::norm_isa
