// Per-ISA element-wise kernels of the MoE layer. The expert activation over a tile: dst[i][j] = act(gate[i][j], up[i][j]) for i < m, j < w,
// gate/up row-major [m][w], dst with row stride ld. The vector versions evaluate exp with a degree-6
// polynomial (relative error ~2 ulp), so results differ from the scalar form in the last bits only.
#pragma once
#include <cstdint>

#include "kernels/moe/moe.hpp"

namespace infermark::moe_detail {

using act_tile_fn = void (*)(moe_activation act, const float* gate, const float* up, std::int64_t m, std::int64_t w,
                             float* dst, std::int64_t ld);

void act_tile_avx512(moe_activation act, const float* gate, const float* up, std::int64_t m, std::int64_t w,
                     float* dst, std::int64_t ld);
void act_tile_avx2(moe_activation act, const float* gate, const float* up, std::int64_t m, std::int64_t w,
                   float* dst, std::int64_t ld);

// moe_quantize_row (moe.hpp), bit-identical, per ISA (moe_quant_avx512.cpp).
using quantize_row_fn = void (*)(dtype dt, const float* x, std::int64_t n, void* q, float* scale);
void quantize_row_avx512(dtype dt, const float* x, std::int64_t n, void* q, float* scale);

}  // namespace infermark::moe_detail
