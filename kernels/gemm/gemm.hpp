// GEMM: dst[m][n] = sum_k src[m][k] * wei[n][k]  (activations row-major times weights stored as
// [out][in], the layout of a linear layer). Weights are packed once, outside timing, by the chosen
// implementation; execute() reads only the packed form.
//
// Formats (gemm_desc::dt), all with a row-major fp32 dst[m][n]:
//  fp32: src float[m][k]; wei float[n][k].
//  bf16: src bf16[m][k]; wei bf16[n][k]; products accumulated in fp32.
//  int8 (W8A8, symmetric): src int8[m][k] with src_scale float[m] (one per token); wei int8[n][k] with
//        wei_scale float[n] (one per output channel); int32 accumulation over the whole of k, then
//        dst[i][j] = src_scale[i] * wei_scale[j] * acc[i][j].
//  fp8 (DeepSeek-V3 / DeepGEMM): src e4m3[m][k] with src_scale float[m][kb] (1x128 blocks);
//        wei e4m3[n][k] with wei_scale float[nb][kb] (128x128 blocks), kb = ceil(k/128),
//        nb = ceil(n/128); dst[i][j] = sum_b src_scale[i][b] * wei_scale[j/128][b] * dot_b(i, j), where
//        dot_b is the fp32 dot product of the dequantized e4m3 values over k in [128b, 128b+128).
//        e4m3 NaN codes (0x7f/0xff) are not valid inputs for the optimized kernels.
// Scales are read at execute() time (not packed) so re-quantized activations need no re-pack.
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

// Block edge of the fp8 scale grid (DeepGEMM): 1x128 activation blocks, 128x128 weight blocks.
inline constexpr std::int64_t gemm_fp8_block = 128;

struct gemm_desc {
  std::int64_t m = 0;  // rows of src and dst (tokens)
  std::int64_t n = 0;  // output channels
  std::int64_t k = 0;  // input channels (reduction)
  dtype dt = dtype::fp32;
};

// Operands; element types and scale layouts per dt are described at the top of this file.
struct gemm_args {
  const void* src = nullptr;
  const void* packed_wei = nullptr;  // output of the implementation's pack()
  float* dst = nullptr;
  const float* src_scale = nullptr;  // int8: [m]; fp8: [m][ceil(k/128)]; unused for fp32/bf16
  const float* wei_scale = nullptr;  // int8: [n]; fp8: [ceil(n/128)][ceil(k/128)]; unused otherwise
  // The implementation's workspace_bytes(d, nthr) bytes, 64-byte aligned, for the same nthr the
  // workers are called with; may be null when that is 0. Callers own it (no allocation in execute),
  // so sub-problems inside a bigger kernel (the MoE experts) reuse one buffer.
  void* workspace = nullptr;
};

struct gemm_impl {
  std::string_view name;  // "<isa>:<variant>", e.g. "avx512:fp32", "ref:any"
  // std::nullopt when this implementation can run `d` on this CPU under the current ISA cap;
  // otherwise why not (the harness then tries the next implementation).
  std::optional<std::string> (*check)(const gemm_desc& d);
  std::size_t (*packed_bytes)(const gemm_desc& d);
  // Packs logical weights (format per dt, see above) into `packed` (packed_bytes(d) bytes, any alignment).
  void (*pack)(const gemm_desc& d, const void* wei, void* packed);
  // Computes this worker's share of dst. Pure: no threads, no I/O; workers write disjoint parts of dst.
  // Every thread count gives bit-identical results (the reduction over k is never split).
  void (*execute)(const gemm_desc& d, const gemm_args& a, int ithr, int nthr);
  // Bytes of gemm_args::workspace that execute() with nthr workers needs (0: none).
  std::size_t (*workspace_bytes)(const gemm_desc& d, int nthr);
};

// Implementations in preference order, the reference last.
std::span<const gemm_impl> gemm_impls();
// The reference (test oracle): naive loops, fp64 accumulation (int8: exact int64 accumulation).
const gemm_impl& gemm_reference();
// The first implementation whose check() accepts `d`; throws std::invalid_argument naming every
// implementation's refusal when none does.
const gemm_impl& gemm_select(const gemm_desc& d);
// The implementation called `name`; throws std::invalid_argument listing the valid names.
const gemm_impl& gemm_find(std::string_view name);
// Throws std::invalid_argument when a dimension is not positive (names the bad value).
void gemm_validate(const gemm_desc& d);

// Exact work: 2*m*n*k FLOPs (int8: integer multiply-adds); bytes = src + weights in their storage
// type (fp8: 1 byte per weight) + scales (int8: m + n floats; fp8: m*kb + nb*kb floats) + fp32 dst,
// each read or written once.
work_model gemm_work(const gemm_desc& d);

}  // namespace infermark
