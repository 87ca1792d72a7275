#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "kernels/common/dtype.hpp"

namespace infermark {
namespace {

// The textbook conversion (frexp / ldexp / nearbyint), the oracle for the bit-arithmetic one.
fp8_t fp8_by_frexp(float f) {
  if (std::isnan(f)) return 0x7f;
  const std::uint8_t sign = std::signbit(f) ? 0x80 : 0x00;
  const float a = std::fabs(f);
  if (a == 0.0f) return sign;
  if (a >= 448.0f) return sign | 0x7e;
  int e;
  std::frexp(a, &e);
  int exp = e - 1 + 7;
  if (exp < 1) {
    const int man = static_cast<int>(std::nearbyint(std::ldexp(a, 9)));
    return man >= 8 ? sign | 0x08 : sign | static_cast<std::uint8_t>(man);
  }
  int mant = static_cast<int>(std::nearbyint(std::ldexp(a, -(e - 1)) * 8.0f)) - 8;
  if (mant == 8) mant = 0, ++exp;
  if (exp > 15 || (exp == 15 && mant == 7)) return sign | 0x7e;
  return sign | static_cast<std::uint8_t>((exp << 3) | mant);
}

TEST(Fp8E4m3, MatchesTheTextbookConversionOnEveryFloatPattern) {
  // Every 61st fp32 bit pattern of both signs (every binade, ties, subnormals, inf, NaN), plus the
  // exact halfway points between neighbouring codes.
  for (std::uint64_t u = 0; u <= 0xffffffffull; u += 61) {
    const auto bits = static_cast<std::uint32_t>(u);
    float f;
    std::memcpy(&f, &bits, 4);
    ASSERT_EQ(f32_to_fp8_e4m3(f), fp8_by_frexp(f)) << "bits 0x" << std::hex << bits;
  }
  for (int c = 0; c < 0x7e; ++c) {
    const float mid = 0.5f * (fp8_e4m3_to_f32(static_cast<fp8_t>(c)) + fp8_e4m3_to_f32(static_cast<fp8_t>(c + 1)));
    EXPECT_EQ(f32_to_fp8_e4m3(mid), fp8_by_frexp(mid)) << "between codes " << c << " and " << c + 1;
    EXPECT_EQ(f32_to_fp8_e4m3(-mid), fp8_by_frexp(-mid));
  }
}

TEST(Fp8E4m3, EveryCodeRoundTrips) {
  for (int c = 0; c < 256; ++c) {
    const auto code = static_cast<fp8_t>(c);
    const float v = fp8_e4m3_to_f32(code);
    if ((c & 0x7f) == 0x7f) {
      EXPECT_TRUE(std::isnan(v)) << c;
      continue;
    }
    EXPECT_EQ(f32_to_fp8_e4m3(v), code) << "code " << c << " value " << v;
  }
}

TEST(Fp8E4m3, KnownValues) {
  EXPECT_EQ(f32_to_fp8_e4m3(0.0f), 0x00);
  EXPECT_EQ(f32_to_fp8_e4m3(-0.0f), 0x80);
  EXPECT_EQ(f32_to_fp8_e4m3(1.0f), 0x38);
  EXPECT_EQ(f32_to_fp8_e4m3(-3.0f), 0xc4);
  EXPECT_EQ(fp8_e4m3_to_f32(0x7e), 448.0f);                 // largest finite
  EXPECT_EQ(f32_to_fp8_e4m3(1000.0f), 0x7e);                // saturates
  EXPECT_EQ(fp8_e4m3_to_f32(0x01), std::ldexp(1.0f, -9));   // smallest subnormal
  EXPECT_EQ(f32_to_fp8_e4m3(1.0625f), 0x38);                // halfway 1 and 1.125: ties to even
  EXPECT_EQ(f32_to_fp8_e4m3(1.1875f), 0x3a);                // halfway 1.125 and 1.25: ties to even
  EXPECT_EQ(f32_to_fp8_e4m3(std::numeric_limits<float>::quiet_NaN()), 0x7f);
}

TEST(Bf16, RoundsToNearestEvenAndKeepsNaN) {
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(1.0f)), 1.0f);
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(-3.0f)), -3.0f);
  // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to even gives 1.
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(1.0f + std::ldexp(1.0f, -8))), 1.0f);
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8))), 1.0f + std::ldexp(1.0f, -6));
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
}

TEST(Dtype, NamesParseAndBadNamesListChoices) {
  for (auto dt : {dtype::fp32, dtype::bf16, dtype::int8, dtype::fp8}) EXPECT_EQ(parse_dtype(to_string(dt)), dt);
  try {
    parse_dtype("fp16");
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'fp16'"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("fp32, bf16, int8, fp8"), std::string::npos);
  }
}

}  // namespace
}  // namespace infermark
