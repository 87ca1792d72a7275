// The AMX tile configuration infermark's tile kernels use (palette 1, all eight tiles 16 rows x 64
// bytes). Include only from translation units compiled with AMX flags (*_amx.cpp), called after run-time
// dispatch has found the tile unit usable (isa.hpp: amx_bf16 / amx_int8). Internal linkage, as the
// per-ISA GEMM headers.
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace infermark {
namespace {

struct amx_tile_config {
  std::uint8_t palette = 1, start_row = 0;
  std::uint8_t reserved[14] = {};
  std::uint16_t colsb[16] = {};
  std::uint8_t rows[16] = {};
};

// Configures the calling thread's tiles 0-7 as 16 x 64 bytes (release with _tile_release()).
inline void amx_configure_tiles() {
  amx_tile_config c;
  for (int t = 0; t < 8; ++t) c.colsb[t] = 64, c.rows[t] = 16;
  _tile_loadconfig(&c);
}

}  // namespace
}  // namespace infermark
