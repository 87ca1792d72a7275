// Peak loops for the AMX tile unit (compiled with AMX flags; called only when amx_bf16 / amx_int8 are
// usable, which includes the operating system's permission). Four independent accumulator tiles of
// 16 x 16 fed by two source and two weight tiles that stay in registers: no memory traffic in the loop.
#include <immintrin.h>

#include <cstdint>

#include "bench/probe/probe_kernels.hpp"

namespace infermark::probe_kernels {
namespace {

struct tile_config {
  std::uint8_t palette = 1, start_row = 0;
  std::uint8_t reserved[14] = {};
  std::uint16_t colsb[16] = {};
  std::uint8_t rows[16] = {};
};

// Loads the 16 x 64-byte tiles 4, 5 (a) and 6, 7 (b), zeroes accumulators 0-3.
void setup(const void* a, const void* b) {
  tile_config c;
  for (int t = 0; t < 8; ++t) c.colsb[t] = 64, c.rows[t] = 16;
  _tile_loadconfig(&c);
  _tile_loadd(4, a, 64);
  _tile_loadd(5, a, 64);
  _tile_loadd(6, b, 64);
  _tile_loadd(7, b, 64);
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
}

// Sum of accumulator tile 0..3's first element each (32-bit lanes read as T).
template <class T>
double finish() {
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
  alignas(64) std::uint16_t a[16 * 32], b[16 * 32];
  const auto bf16_bits = [](float x) {
    std::uint32_t u;
    __builtin_memcpy(&u, &x, 4);
    return static_cast<std::uint16_t>(u >> 16);
  };
  for (int i = 0; i < 16 * 32; ++i) a[i] = bf16_bits(seed * (1.0f / 1024)), b[i] = bf16_bits(1.0f / 1024);
  setup(a, b);
  for (std::int64_t i = 0; i < iters; ++i) {
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  return finish<float>();
}

double int8_tile_amx(std::int64_t iters, float seed) {
  // Source bytes 1 against weight quads (+v, -v, +v, -v): every product adds 0, so no overflow.
  const int v = 1 + static_cast<int>(seed * 8.0f);
  alignas(64) std::int8_t a[16 * 64], b[16 * 64];
  for (int i = 0; i < 16 * 64; ++i) a[i] = 1, b[i] = static_cast<std::int8_t>(i % 2 == 0 ? v : -v);
  setup(a, b);
  for (std::int64_t i = 0; i < iters; ++i) {
    _tile_dpbssd(0, 4, 6);
    _tile_dpbssd(1, 4, 7);
    _tile_dpbssd(2, 5, 6);
    _tile_dpbssd(3, 5, 7);
  }
  return finish<std::int32_t>();
}

}  // namespace infermark::probe_kernels
