// Per-ISA entry points of the optimized attention (attention_core.hpp instantiated per ISA file).
#pragma once
#include "kernels/attention/attention.hpp"

namespace infermark::attn_isa {

void execute_generic(const attention_desc& d, const attention_args& a, int stage, int ithr, int nthr);
#if defined(__x86_64__) || defined(_M_X64)
void execute_avx2(const attention_desc& d, const attention_args& a, int stage, int ithr, int nthr);
void execute_avx512(const attention_desc& d, const attention_args& a, int stage, int ithr, int nthr);
// bf16 Q and cache: both products on vdpbf16ps, P rounded to bf16 for P.V (needs AVX512_BF16).
void execute_avx512_bf16dot(const attention_desc& d, const attention_args& a, int stage, int ithr, int nthr);
#endif

}  // namespace infermark::attn_isa
