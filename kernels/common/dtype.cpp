#include "kernels/common/dtype.hpp"

#include <cstring>

#include <stdexcept>

namespace infermark {

std::string_view to_string(dtype dt) {
  switch (dt) {
    case dtype::fp32: return "fp32";
    case dtype::bf16: return "bf16";
    case dtype::int8: return "int8";
    case dtype::fp8: return "fp8";
  }
  return "unknown";
}

dtype parse_dtype(std::string_view name) {
  for (auto dt : {dtype::fp32, dtype::bf16, dtype::int8, dtype::fp8})
    if (name == to_string(dt)) return dt;
  throw std::invalid_argument("unknown data type '" + std::string(name) +
                              "'; valid choices: fp32, bf16, int8, fp8");
}

std::size_t dtype_size(dtype dt) {
  switch (dt) {
    case dtype::fp32: return 4;
    case dtype::bf16: return 2;
    case dtype::int8: return 1;
    case dtype::fp8: return 1;
  }
  return 0;
}

double dtype_epsilon(dtype dt) {
  switch (dt) {
    case dtype::fp32: return 0x1p-24;
    case dtype::bf16: return 0x1p-8;
    case dtype::int8: return 0.0;
    case dtype::fp8: return 0x1p-4;
  }
  return 0.0;
}

float fp8_e4m3_to_f32(fp8_t v) {
  const int sign = (v >> 7) & 1;
  const int exp = (v >> 3) & 0xf;
  const int man = v & 0x7;
  float mag;
  if (exp == 0xf && man == 0x7) return std::numeric_limits<float>::quiet_NaN();
  if (exp == 0) mag = std::ldexp(static_cast<float>(man), -9);  // subnormal: man/8 * 2^-6
  else mag = std::ldexp(1.0f + static_cast<float>(man) / 8.0f, exp - 7);
  return sign ? -mag : mag;
}

fp8_t f32_to_fp8_e4m3(float f) {
  // Bit arithmetic, no library calls: activations are quantized with it inside timed kernels (MoE
  // dispatch). Round to nearest, ties to even; saturating; NaN -> 0x7f.
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  const auto sign = static_cast<std::uint8_t>((u >> 24) & 0x80u);
  u &= 0x7fffffffu;
  if (u > 0x7f800000u) return 0x7f;                // NaN
  if (u >= 0x43e00000u) return sign | 0x7e;         // >= 448 (and inf): the largest finite value
  if (u < 0x3c800000u) {                            // below 2^-6, e4m3's smallest normal: quantum 2^-9
    float a;
    std::memcpy(&a, &u, 4);
    const float q = std::nearbyint(a * 512.0f);     // exact scaling; 8 means the smallest normal, 0x08
    return sign | static_cast<std::uint8_t>(q);
  }
  // Normal: keep 3 of fp32's 23 mantissa bits, rounding to nearest even (a carry moves into the
  // exponent), then rebias the exponent from 127 to 7. Below 448 the result never exceeds 0x7e.
  u += 0x7ffffu + ((u >> 20) & 1u);
  return sign | static_cast<std::uint8_t>((u >> 20) - ((127u - 7u) << 3));
}

}  // namespace infermark
