#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "kernels/common/dtype.hpp"

namespace infermark {
namespace {

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
