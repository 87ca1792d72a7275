// avx2 build of the RMSNorm / RoPE bodies in norm_core.hpp (compiled with this ISA's flags).
#include "kernels/norm/norm_core.hpp"
#include "kernels/norm/norm_isa.hpp"

namespace infermark::norm_isa {

void rmsnorm_avx2(const rmsnorm_desc& d, const rmsnorm_args& a, int ithr, int nthr) { norm_core::rmsnorm(d, a, ithr, nthr); }
void rope_avx2(const rope_desc& d, const rope_args& a, int ithr, int nthr) { norm_core::rope(d, a, ithr, nthr); }

}  // namespace infermark::norm_isa
