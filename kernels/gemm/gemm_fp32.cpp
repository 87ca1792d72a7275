// fp32 GEMM implementations: their check()/pack() (baseline code), and the generic microkernel that
// compiles everywhere. The ISA microkernels live in gemm_fp32_<isa>.cpp.
#include <string>

#include "kernels/common/isa.hpp"
#include "kernels/gemm/gemm_driver.hpp"
#include "kernels/gemm/gemm_kernels.hpp"

namespace infermark::gemm_detail {
namespace {

// Portable microkernel: 4 rows x 8 columns in plain C++ (the compiler vectorises the column loop with
// whatever the baseline ISA offers; 8 accumulator vectors fit the 16 SSE registers).
struct fp32_generic {
  static constexpr std::int64_t MR = 4, NR = fp32_nr_generic;
  static constexpr std::int64_t KC = 256;  // KC x NR weights = 8 KiB: inside any L1d
  static constexpr std::int64_t MC = 128;  // MC x KC source block = 128 KiB: inside any L2
  using a_t = float;
  static constexpr bool packs_a = true;
  static std::int64_t a_panel_elems(std::int64_t kc) { return MR * kc; }

  static void pack_a(const gemm_desc& d, const gemm_args& a, std::int64_t i0, std::int64_t mc,
                     std::int64_t p0, std::int64_t kc, float* buf) {
    pack_rows<MR>(static_cast<const float*>(a.src), d.k, i0, mc, p0, kc, buf);
  }
  static std::int64_t b_panel_bytes(std::int64_t kc) { return kc * NR * 4; }
  static const float* b_panel(const gemm_desc& d, const void* packed, std::int64_t jp, std::int64_t p0) {
    return static_cast<const float*>(packed) + jp * NR * d.k + p0 * NR;
  }

  static void ukr(int mr, std::int64_t kc, const float* a, const float* b, float* c, std::int64_t ldc,
                  int nr, const gemm_desc&, const gemm_args&, const tile_pos& t) {
    float acc[MR][NR] = {};
    for (std::int64_t p = 0; p < kc; ++p) {
      for (int i = 0; i < MR; ++i)
        for (int j = 0; j < NR; ++j) acc[i][j] += a[i] * b[j];
      a += MR;
      b += NR;
    }
    for (int i = 0; i < mr; ++i)
      for (int j = 0; j < nr; ++j) c[i * ldc + j] = t.first ? acc[i][j] : c[i * ldc + j] + acc[i][j];
  }
};

std::optional<std::string> needs(const gemm_desc& d, const char* impl, isa_level level) {
  if (d.dt != dtype::fp32)
    return std::string(impl) + " computes fp32 only, not " + std::string(to_string(d.dt));
  if (effective_isa() < level || (level == isa_level::neon && effective_isa() != isa_level::neon))
    return std::string(impl) + " needs ISA " + std::string(to_string(level)) + ", effective ISA is " +
           std::string(to_string(effective_isa()));
  return std::nullopt;
}

template <std::int64_t NR>
std::size_t panel_bytes(const gemm_desc& d) {
  return static_cast<std::size_t>(ceil_div(d.n, NR) * NR * d.k) * sizeof(float);
}
template <std::int64_t NR>
void pack_f32(const gemm_desc& d, const void* wei, void* packed) {
  pack_panels_f32<NR>(d, static_cast<const float*>(wei), static_cast<float*>(packed));
}

}  // namespace

void fp32_execute_generic(const gemm_desc& d, const gemm_args& a, int ithr, int nthr) {
  drive<fp32_generic>(d, a, ithr, nthr);
}
std::size_t fp32_workspace_generic(const gemm_desc& d, int nthr) { return drive_workspace<fp32_generic>(d, nthr); }

#if defined(__x86_64__) || defined(_M_X64)
const gemm_impl fp32_avx512_impl{
    "avx512:fp32", [](const gemm_desc& d) { return needs(d, "avx512:fp32", isa_level::avx512); },
    panel_bytes<fp32_nr_avx512>, pack_f32<fp32_nr_avx512>, fp32_execute_avx512, fp32_workspace_avx512};
const gemm_impl fp32_avx2_impl{
    "avx2:fp32", [](const gemm_desc& d) { return needs(d, "avx2:fp32", isa_level::avx2); },
    panel_bytes<fp32_nr_avx2>, pack_f32<fp32_nr_avx2>, fp32_execute_avx2, fp32_workspace_avx2};
#endif
#if defined(__aarch64__)
const gemm_impl fp32_neon_impl{
    "neon:fp32", [](const gemm_desc& d) { return needs(d, "neon:fp32", isa_level::neon); },
    panel_bytes<fp32_nr_neon>, pack_f32<fp32_nr_neon>, fp32_execute_neon, fp32_workspace_neon};
#endif
const gemm_impl fp32_generic_impl{
    "generic:fp32", [](const gemm_desc& d) { return needs(d, "generic:fp32", isa_level::generic); },
    panel_bytes<fp32_nr_generic>, pack_f32<fp32_nr_generic>, fp32_execute_generic, fp32_workspace_generic};

}  // namespace infermark::gemm_detail
