// KV append into the paged cache: conversions and per-token quantization round-trip within their
// bounds, rows land in the right (block, head, slot), untouched slots stay untouched, bad slots throw.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/attention/attention.hpp"

namespace infermark {
namespace {

float cache_value(dtype dt, const std::vector<std::uint8_t>& c, const std::vector<float>& sc, std::int64_t slot, std::int64_t dim,
                  std::int64_t i) {
  const std::int64_t idx = slot * dim + i;
  switch (dt) {
    case dtype::fp32: {
      float x;
      std::memcpy(&x, &c[idx * 4], 4);
      return x;
    }
    case dtype::bf16: {
      bf16_t h;
      std::memcpy(&h, &c[idx * 2], 2);
      return bf16_to_f32(h);
    }
    case dtype::int8: return static_cast<float>(static_cast<std::int8_t>(c[idx])) * sc[slot];
    case dtype::fp8: return fp8_e4m3_to_f32(c[idx]) * sc[slot];
  }
  return 0;
}

TEST(KvAppend, RoundTripWithinQuantizationStepAtTheMappedSlots) {
  for (dtype kv : {dtype::fp32, dtype::bf16, dtype::int8, dtype::fp8})
    for (bool v_in_k : {false, true}) {
      kv_append_desc d;
      d.tokens = 5;
      d.hkv = v_in_k ? 1 : 3;
      d.dk = v_in_k ? 576 : 24;
      d.dv = v_in_k ? 512 : 16;
      d.block_size = 16;
      d.num_blocks = 4;
      d.v_in_k = v_in_k;
      d.kv_dt = kv;
      std::mt19937_64 rng(3);
      std::uniform_real_distribution<float> uni(-3.0f, 3.0f);
      std::vector<float> k(static_cast<std::size_t>(d.tokens * d.hkv * d.dk)), v(static_cast<std::size_t>(d.tokens * d.hkv * d.dv));
      for (auto& x : k) x = uni(rng);
      for (auto& x : v) x = uni(rng);
      std::fill(k.begin() + d.hkv * d.dk, k.begin() + (d.hkv + 1) * d.dk, 0.0f);  // token 1, head 0: all zero
      const std::vector<std::int32_t> slots{17, 0, 63, 31, 40};
      const std::int64_t cache_slots = d.num_blocks * d.hkv * d.block_size;
      const std::size_t es = dtype_size(kv);
      std::vector<std::uint8_t> kc(static_cast<std::size_t>(cache_slots * d.dk) * es, 0xAB), vc(static_cast<std::size_t>(cache_slots * d.dv) * es, 0xAB);
      std::vector<float> ks(static_cast<std::size_t>(cache_slots), -1.0f), vs(static_cast<std::size_t>(cache_slots), -1.0f);
      const kv_append_args a{k.data(), v.data(), slots.data(), kc.data(), vc.data(), ks.data(), vs.data()};
      kv_append_validate(d, a);
      const auto kc_before = kc;
      for (int i = 0; i < 3; ++i) kv_append(d, a, i, 3);
      // Bound per value: half a step of the format relative to the row's absmax (int8: amax/254) or to
      // the value (fp32 exact, bf16 2^-9, fp8 e4m3 2^-4 of the value plus its subnormal step).
      std::vector<bool> touched(static_cast<std::size_t>(cache_slots), false);
      for (std::int64_t t = 0; t < d.tokens; ++t)
        for (std::int64_t h = 0; h < d.hkv; ++h) {
          const std::int64_t s = slots[static_cast<std::size_t>(t)];
          const std::int64_t slot = ((s / d.block_size) * d.hkv + h) * d.block_size + s % d.block_size;
          touched[static_cast<std::size_t>(slot)] = true;
          for (int which = 0; which < (v_in_k ? 1 : 2); ++which) {
            const std::int64_t dim = which == 0 ? d.dk : d.dv;
            const float* src = (which == 0 ? k.data() : v.data()) + (t * d.hkv + h) * dim;
            float amax = 0;
            for (std::int64_t i = 0; i < dim; ++i) amax = std::max(amax, std::fabs(src[i]));
            for (std::int64_t i = 0; i < dim; ++i) {
              const float got = cache_value(kv, which == 0 ? kc : vc, which == 0 ? ks : vs, slot, dim, i);
              double bound = 0;
              if (kv == dtype::bf16) bound = std::fabs(src[i]) * 0x1p-8;
              if (kv == dtype::int8) bound = amax / 254.0 * 1.0001;
              if (kv == dtype::fp8) bound = std::fabs(src[i]) * 0x1p-4 + amax / 448.0 * 0x1p-10;
              ASSERT_LE(std::fabs(got - src[i]), bound) << to_string(kv) << " token " << t << " head " << h << " dim " << i;
            }
          }
        }
      for (std::int64_t slot = 0; slot < cache_slots; ++slot)
        if (!touched[static_cast<std::size_t>(slot)]) {
          ASSERT_EQ(0, std::memcmp(&kc[slot * d.dk * es], &kc_before[slot * d.dk * es], d.dk * es)) << "slot " << slot << " was written";
        }
      // Token 1 (all-zero K row of head 0) went to cache slot 0 of block 0, head 0: scale 1.
      if (kv == dtype::int8 || kv == dtype::fp8) {
        EXPECT_EQ(ks[0], 1.0f);
      }
    }
}

TEST(KvAppend, SlotOutsideTheCacheIsRejected) {
  kv_append_desc d;
  d.tokens = 2;
  d.num_blocks = 2;
  d.block_size = 16;
  const std::vector<std::int32_t> slots{3, 32};
  try {
    kv_append_validate(d, kv_append_args{nullptr, nullptr, slots.data(), nullptr, nullptr, nullptr, nullptr});
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("slot_mapping[1] = 32"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace infermark
