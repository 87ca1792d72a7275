// The ordered implementation list for GEMM: fastest first, the reference last. Each implementation's
// check() refuses what it cannot do (format, ISA under the cap), so the first acceptor is the best one.
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/gemm/gemm.hpp"
#include "kernels/gemm/gemm_kernels.hpp"

namespace infermark {

std::span<const gemm_impl> gemm_impls() {
  using namespace gemm_detail;
  static const std::vector<gemm_impl> list = [] {
    std::vector<gemm_impl> l;
#if defined(__x86_64__) || defined(_M_X64)
    for (const gemm_impl* i : {&bf16_amx_impl, &int8_amx_impl, &fp8_amx_impl, &fp32_avx512_impl, &bf16_avx512_impl, &int8_avx512_impl, &fp8_avx512_impl,
                               &fp8_fma_avx512_impl, &fp32_avx2_impl, &bf16_avx2_impl, &int8_avx2_impl, &fp8_avx2_impl})
      l.push_back(*i);
#endif
#if defined(__aarch64__)
    l.push_back(fp32_neon_impl);
#endif
    for (const gemm_impl* i : {&fp32_generic_impl, &bf16_generic_impl, &int8_generic_impl, &fp8_generic_impl})
      l.push_back(*i);
    l.push_back(gemm_reference());
    return l;
  }();
  return list;
}

const gemm_impl& gemm_select(const gemm_desc& d) {
  gemm_validate(d);
  std::string why;
  for (const auto& impl : gemm_impls()) {
    const auto refusal = impl.check(d);
    if (!refusal) return impl;
    why += "\n  " + std::string(impl.name) + ": " + *refusal;
  }
  throw std::invalid_argument("gemm: no implementation accepts m=" + std::to_string(d.m) +
                              " n=" + std::to_string(d.n) + " k=" + std::to_string(d.k) + " " +
                              std::string(to_string(d.dt)) + ":" + why);
}

const gemm_impl& gemm_find(std::string_view name) {
  std::string names;
  for (const auto& impl : gemm_impls()) {
    if (impl.name == name) return impl;
    names += (names.empty() ? "" : ", ") + std::string(impl.name);
  }
  throw std::invalid_argument("gemm: unknown implementation '" + std::string(name) +
                              "'; valid choices: " + names);
}

}  // namespace infermark
