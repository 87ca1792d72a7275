#include "kernels/common/dtype.hpp"

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
  if (std::isnan(f)) return 0x7f;
  const std::uint8_t sign = std::signbit(f) ? 0x80 : 0x00;
  float a = std::fabs(f);
  if (a == 0.0f) return sign;  // frexp(0) has no binade: handle signed zero first
  if (a >= 448.0f) return sign | 0x7e;  // saturate to the largest finite value
  // Find the nearest representable value by rounding in the value's binade (ties to even).
  int e;
  std::frexp(a, &e);  // a = m * 2^e, m in [0.5, 1)
  int exp = e - 1 + 7;  // biased exponent of a normal value
  if (exp < 1) {        // subnormal range: quantum 2^-9
    const float q = std::nearbyint(std::ldexp(a, 9));
    const int man = static_cast<int>(q);
    if (man >= 8) return sign | 0x08;  // rounds up into the smallest normal
    return sign | static_cast<std::uint8_t>(man);
  }
  float scaled = std::ldexp(a, -(e - 1)) * 8.0f;  // in [8, 16)
  int mant = static_cast<int>(std::nearbyint(scaled)) - 8;
  if (mant == 8) { mant = 0; ++exp; }
  if (exp > 15 || (exp == 15 && mant == 7)) return sign | 0x7e;
  return sign | static_cast<std::uint8_t>((exp << 3) | mant);
}

}  // namespace infermark
