// The expert activation over a tile, per ISA: dst[i][j] = act(gate[i][j], up[i][j]) for i < m, j < w,
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

}  // namespace infermark::moe_detail
