// Reference GEMM: the test oracle for every format. Never optimized: naive loops, fp64 accumulation
// (int8: exact integer accumulation), weights "packed" as a plain copy of the logical layout.
#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "kernels/common/partition.hpp"
#include "kernels/gemm/gemm.hpp"

namespace infermark {
namespace {

std::optional<std::string> ref_check(const gemm_desc&) { return std::nullopt; }

std::size_t ref_packed_bytes(const gemm_desc& d) {
  return static_cast<std::size_t>(d.n * d.k) * dtype_size(d.dt);
}

void ref_pack(const gemm_desc& d, const void* wei, void* packed) {
  std::memcpy(packed, wei, ref_packed_bytes(d));
}

// Element (i, p) of src or wei as a double, before scaling.
double load(dtype dt, const void* base, std::int64_t idx) {
  switch (dt) {
    case dtype::fp32: return static_cast<const float*>(base)[idx];
    case dtype::bf16: return bf16_to_f32(static_cast<const bf16_t*>(base)[idx]);
    case dtype::int8: return static_cast<const std::int8_t*>(base)[idx];
    case dtype::fp8: return fp8_e4m3_to_f32(static_cast<const fp8_t*>(base)[idx]);
  }
  return 0.0;
}

void ref_execute(const gemm_desc& d, const gemm_args& a, int ithr, int nthr) {
  const auto [m0, m1] = balance(d.m, ithr, nthr);
  const std::int64_t kb = div_up(d.k, gemm_fp8_block);
  for (std::int64_t i = m0; i < m1; ++i)
    for (std::int64_t j = 0; j < d.n; ++j) {
      double out = 0;
      if (d.dt == dtype::int8) {
        std::int64_t acc = 0;  // exact: |acc| <= k * 128 * 128
        const auto* s = static_cast<const std::int8_t*>(a.src) + i * d.k;
        const auto* w = static_cast<const std::int8_t*>(a.packed_wei) + j * d.k;
        for (std::int64_t p = 0; p < d.k; ++p) acc += std::int64_t{s[p]} * std::int64_t{w[p]};
        out = static_cast<double>(acc) * a.src_scale[i] * a.wei_scale[j];
      } else if (d.dt == dtype::fp8) {
        for (std::int64_t b = 0; b < kb; ++b) {
          double acc = 0;
          for (std::int64_t p = b * gemm_fp8_block; p < std::min(d.k, (b + 1) * gemm_fp8_block); ++p)
            acc += load(d.dt, a.src, i * d.k + p) * load(d.dt, a.packed_wei, j * d.k + p);
          out += acc * a.src_scale[i * kb + b] * a.wei_scale[(j / gemm_fp8_block) * kb + b];
        }
      } else {
        for (std::int64_t p = 0; p < d.k; ++p)
          out += load(d.dt, a.src, i * d.k + p) * load(d.dt, a.packed_wei, j * d.k + p);
      }
      a.dst[i * d.n + j] = static_cast<float>(out);
    }
}

}  // namespace

const gemm_impl& gemm_reference() {
  static const gemm_impl impl{"ref:any", ref_check, ref_packed_bytes, ref_pack, ref_execute,
                              [](const gemm_desc&, int) { return std::size_t{0}; }};
  return impl;
}

void gemm_validate(const gemm_desc& d) {
  auto bad = [](const char* what, std::int64_t v) {
    throw std::invalid_argument(std::string("gemm: ") + what + "=" + std::to_string(v) +
                                " is not valid; it must be a positive integer");
  };
  if (d.m <= 0) bad("m", d.m);
  if (d.n <= 0) bad("n", d.n);
  if (d.k <= 0) bad("k", d.k);
}

work_model gemm_work(const gemm_desc& d) {
  const double m = static_cast<double>(d.m), n = static_cast<double>(d.n), k = static_cast<double>(d.k);
  const double es = static_cast<double>(dtype_size(d.dt));
  double scales = 0;  // fp32 scale factors read
  if (d.dt == dtype::int8) scales = m + n;
  if (d.dt == dtype::fp8) {
    const double kb = static_cast<double>(div_up(d.k, gemm_fp8_block));
    const double nb = static_cast<double>(div_up(d.n, gemm_fp8_block));
    scales = m * kb + nb * kb;
  }
  work_phase p{"gemm", 2.0 * m * n * k, m * k * es + n * k * es + scales * 4.0 + m * n * 4.0};
  return work_model{{p}};
}

}  // namespace infermark
