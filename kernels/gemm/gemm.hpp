// GEMM: dst[m][n] = sum_k src[m][k] * wei[n][k]  (activations row-major times weights stored as
// [out][in], the layout of a linear layer). Weights are packed once, outside timing, by the chosen
// implementation; execute() reads only the packed form.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "kernels/common/dtype.hpp"
#include "kernels/common/work.hpp"

namespace infermark {

struct gemm_desc {
  std::int64_t m = 0;  // rows of src and dst (tokens)
  std::int64_t n = 0;  // output channels
  std::int64_t k = 0;  // input channels (reduction)
  dtype dt = dtype::fp32;
};

// Operands. Formats by dt:
//  fp32: src float[m][k], weights float[n][k], dst float[m][n].
//  (bf16 / int8 / fp8 extend this struct with their scales in the kernel issue.)
struct gemm_args {
  const void* src = nullptr;
  const void* packed_wei = nullptr;  // output of the implementation's pack()
  float* dst = nullptr;
};

struct gemm_impl {
  std::string_view name;  // "<isa>:<variant>", e.g. "avx512:fp32", "ref:any"
  // std::nullopt when this implementation can run `d` on this CPU under the current ISA cap;
  // otherwise why not (the harness then tries the next implementation).
  std::optional<std::string> (*check)(const gemm_desc& d);
  std::size_t (*packed_bytes)(const gemm_desc& d);
  // Packs logical weights (format per dt, see gemm_args) into `packed` (packed_bytes(d) bytes).
  void (*pack)(const gemm_desc& d, const void* wei, void* packed);
  // Computes this worker's share of dst. Pure: no threads, no I/O; workers write disjoint parts of dst.
  void (*execute)(const gemm_desc& d, const gemm_args& a, int ithr, int nthr);
};

// Implementations in preference order, the reference last.
std::span<const gemm_impl> gemm_impls();
// The reference (test oracle): naive loops, fp64 accumulation for fp32.
const gemm_impl& gemm_reference();

// Exact work: 2*m*n*k FLOPs; bytes = src + weights + dst, each read or written once.
work_model gemm_work(const gemm_desc& d);

}  // namespace infermark
