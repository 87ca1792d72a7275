// Data formats the kernels understand, and their conversions (round-to-nearest-even).
#pragma once
#include <bit>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>

namespace infermark {

// fp32: IEEE single. bf16: storage with fp32 accumulation. int8: W8A8 symmetric with scales, int32
// accumulation. fp8: e4m3 (OCP FN variant: no inf, max 448) with block scales.
enum class dtype { fp32, bf16, int8, fp8 };

std::string_view to_string(dtype dt);
// Throws std::invalid_argument naming the bad value and the valid choices.
dtype parse_dtype(std::string_view name);
// Storage size of one element in bytes.
std::size_t dtype_size(dtype dt);
// Unit round-off used by tolerances: 2^-24 fp32, 2^-8 bf16, 2^-4 fp8 e4m3; int8 is exact in int32.
double dtype_epsilon(dtype dt);

using bf16_t = std::uint16_t;
using fp8_t = std::uint8_t;

inline bf16_t f32_to_bf16(float f) {
  auto u = std::bit_cast<std::uint32_t>(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<bf16_t>((u >> 16) | 0x40u);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<bf16_t>(u >> 16);
}
inline float bf16_to_f32(bf16_t h) { return std::bit_cast<float>(static_cast<std::uint32_t>(h) << 16); }

// fp8 e4m3fn: 1 sign, 4 exponent (bias 7), 3 mantissa; 0x7f/0xff are NaN; no infinities; saturating.
float fp8_e4m3_to_f32(fp8_t v);
fp8_t f32_to_fp8_e4m3(float f);
// Nonzero with a zero exponent field: 1-7 x 2^-9, either sign.
constexpr bool fp8_is_subnormal(fp8_t v) { return (v & 0x78) == 0 && (v & 0x07) != 0; }

}  // namespace infermark
