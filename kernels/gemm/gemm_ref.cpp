// Reference GEMM: the test oracle. Never optimized.
#include <cstring>

#include "kernels/common/partition.hpp"
#include "kernels/gemm/gemm.hpp"

namespace infermark {
namespace {

std::optional<std::string> ref_check(const gemm_desc& d) {
  if (d.dt != dtype::fp32) return "ref:any supports fp32 only (other formats arrive with their kernels)";
  return std::nullopt;
}

std::size_t ref_packed_bytes(const gemm_desc& d) {
  return static_cast<std::size_t>(d.n * d.k) * dtype_size(d.dt);
}

void ref_pack(const gemm_desc& d, const void* wei, void* packed) {
  std::memcpy(packed, wei, ref_packed_bytes(d));
}

void ref_execute(const gemm_desc& d, const gemm_args& a, int ithr, int nthr) {
  const auto* src = static_cast<const float*>(a.src);
  const auto* wei = static_cast<const float*>(a.packed_wei);
  const auto [m0, m1] = balance(d.m, ithr, nthr);
  for (std::int64_t i = m0; i < m1; ++i)
    for (std::int64_t j = 0; j < d.n; ++j) {
      double acc = 0;
      for (std::int64_t p = 0; p < d.k; ++p)
        acc += static_cast<double>(src[i * d.k + p]) * static_cast<double>(wei[j * d.k + p]);
      a.dst[i * d.n + j] = static_cast<float>(acc);
    }
}

}  // namespace

const gemm_impl& gemm_reference() {
  static const gemm_impl impl{"ref:any", ref_check, ref_packed_bytes, ref_pack, ref_execute};
  return impl;
}

work_model gemm_work(const gemm_desc& d) {
  const double m = static_cast<double>(d.m), n = static_cast<double>(d.n), k = static_cast<double>(d.k);
  const double es = static_cast<double>(dtype_size(d.dt));
  work_phase p{"gemm", 2.0 * m * n * k, m * k * es + n * k * es + m * n * 4.0};
  return work_model{{p}};
}

}  // namespace infermark
