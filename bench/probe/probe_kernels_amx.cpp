// Peak loops for the AMX tile unit (compiled with AMX flags; called only when amx_bf16 / amx_int8 are
// usable, which includes the operating system's permission). Four independent accumulator tiles of
// 16 x 16 fed by two source and two weight tiles that stay in registers: no memory traffic in the loop.
#include <immintrin.h>

#include <cstdint>

#include "bench/probe/probe_kernels.hpp"
#include "kernels/common/amx_tiles.hpp"
#include "kernels/common/dtype.hpp"

namespace infermark::probe_kernels {
namespace {

// Loads tiles 4, 5 (a) and 6, 7 (b), zeroes accumulators 0-3, runs `products` (the four tile products of
// one iteration) `iters` times and returns the sum of each accumulator's first element (lanes as T).
template <class T, class Products>
double tile_peak(const void* a, const void* b, std::int64_t iters, Products products) {
  amx_configure_tiles();
  _tile_loadd(4, a, 64);
  _tile_loadd(5, a, 64);
  _tile_loadd(6, b, 64);
  _tile_loadd(7, b, 64);
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  for (std::int64_t i = 0; i < iters; ++i) products();
  alignas(64) T c[4][16 * 16];
  _tile_stored(0, c[0], 64);
  _tile_stored(1, c[1], 64);
  _tile_stored(2, c[2], 64);
  _tile_stored(3, c[3], 64);
  _tile_release();
  return static_cast<double>(c[0][0]) + static_cast<double>(c[1][0]) + static_cast<double>(c[2][0]) + static_cast<double>(c[3][0]);
}

}  // namespace

double bf16_tile_amx(std::int64_t iters, float seed) {
  // Every element gains 32 * a * b = 32 * seed * 2^-20 per product; the sums saturate at a finite value.
  alignas(64) bf16_t a[16 * 32], b[16 * 32];
  for (int i = 0; i < 16 * 32; ++i) a[i] = f32_to_bf16(seed * (1.0f / 1024)), b[i] = f32_to_bf16(1.0f / 1024);
  return tile_peak<float>(a, b, iters, [] {
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  });
}

double int8_tile_amx(std::int64_t iters, float seed) {
  // Source bytes 1 against weight quads (+v, -v, +v, -v): every product adds 0, so no overflow.
  const int v = 1 + static_cast<int>(seed * 8.0f);
  alignas(64) std::int8_t a[16 * 64], b[16 * 64];
  for (int i = 0; i < 16 * 64; ++i) a[i] = 1, b[i] = static_cast<std::int8_t>(i % 2 == 0 ? v : -v);
  return tile_peak<std::int32_t>(a, b, iters, [] {
    _tile_dpbssd(0, 4, 6);
    _tile_dpbssd(1, 4, 7);
    _tile_dpbssd(2, 5, 6);
    _tile_dpbssd(3, 5, 7);
  });
}

}  // namespace infermark::probe_kernels
