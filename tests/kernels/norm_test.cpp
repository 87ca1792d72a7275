// RMSNorm (+ fused residual add) and RoPE: every implementation x runnable ISA x thread count against
// the fp64 references, on awkward sizes. fp32 within 1e-5 relative per element (1e-5 of the row's
// absmax for RoPE, whose outputs cross zero); bf16 within 2 bf16 ulps (2^-7 relative: one rounding in
// the reference, one in the kernel, different fp32/fp64 intermediates).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <random>
#include <vector>

#include "kernels/common/isa.hpp"
#include "kernels/norm/norm.hpp"

namespace infermark {
namespace {

std::vector<std::uint8_t> random_values(dtype dt, std::int64_t n, std::mt19937_64& rng) {
  std::uniform_real_distribution<float> uni(-2.0f, 2.0f);
  std::vector<std::uint8_t> buf(static_cast<std::size_t>(n) * dtype_size(dt));
  for (std::int64_t i = 0; i < n; ++i) {
    const float x = uni(rng);
    if (dt == dtype::bf16) {
      const bf16_t h = f32_to_bf16(x);
      std::memcpy(&buf[i * 2], &h, 2);
    } else {
      std::memcpy(&buf[i * 4], &x, 4);
    }
  }
  return buf;
}

float value(dtype dt, const std::vector<std::uint8_t>& buf, std::int64_t i) {
  if (dt == dtype::bf16) {
    bf16_t h;
    std::memcpy(&h, &buf[i * 2], 2);
    return bf16_to_f32(h);
  }
  float x;
  std::memcpy(&x, &buf[i * 4], 4);
  return x;
}

void expect_close(dtype dt, const std::vector<std::uint8_t>& got, const std::vector<std::uint8_t>& want, std::int64_t n,
                  std::int64_t row_len, const std::string& what) {
  const double tol = dt == dtype::bf16 ? 0x1p-7 : 1e-5;
  for (std::int64_t r = 0; r < n / row_len; ++r) {
    double amax = 0;
    for (std::int64_t i = 0; i < row_len; ++i) amax = std::max(amax, std::fabs(static_cast<double>(value(dt, want, r * row_len + i))));
    for (std::int64_t i = 0; i < row_len; ++i) {
      const double g = value(dt, got, r * row_len + i), w = value(dt, want, r * row_len + i);
      ASSERT_LE(std::fabs(g - w), tol * std::max(std::fabs(w), dt == dtype::bf16 ? std::fabs(w) : amax) + (dt == dtype::bf16 ? 1e-30 : 0))
          << what << " element " << r * row_len + i << " got " << g << " want " << w;
    }
  }
}

TEST(RmsNorm, EveryImplIsaAndThreadCountMatchesReference) {
  for (dtype dt : {dtype::fp32, dtype::bf16})
    for (bool residual : {false, true})
      for (auto [rows, dim] : {std::pair<std::int64_t, std::int64_t>{1, 1}, {3, 17}, {5, 300}, {2, 7168}}) {
        std::mt19937_64 rng(static_cast<std::uint64_t>(rows * 1000 + dim));
        const rmsnorm_desc d{rows, dim, 1e-6f, residual, dt};
        const auto src = random_values(dt, rows * dim, rng), res0 = random_values(dt, rows * dim, rng);
        std::vector<float> w(static_cast<std::size_t>(dim));
        for (auto& x : w) x = std::uniform_real_distribution<float>(0.5f, 1.5f)(rng);
        auto run = [&](const rmsnorm_impl& impl, int nthr, std::vector<std::uint8_t>& res, std::vector<std::uint8_t>& dst) {
          res = res0;
          dst.assign(src.size(), 0xff);
          const rmsnorm_args a{src.data(), res.data(), w.data(), dst.data()};
          for (int i = 0; i < nthr; ++i) impl.execute(d, a, i, nthr);
        };
        std::vector<std::uint8_t> want_res, want;
        run(rmsnorm_reference(), 1, want_res, want);
        for (isa_level level : runnable_isas()) {
          scoped_isa_cap cap(level);
          for (const auto& impl : rmsnorm_impls()) {
            if (impl.check(d)) continue;
            for (int nthr : {1, 2, 3}) {
              std::vector<std::uint8_t> res, dst;
              run(impl, nthr, res, dst);
              const std::string what = std::string(impl.name) + " " + std::string(to_string(dt)) + (residual ? " residual" : "") +
                                       " rows " + std::to_string(rows) + " dim " + std::to_string(dim) + " nthr " + std::to_string(nthr);
              expect_close(dt, dst, want, rows * dim, dim, what);
              if (residual) {
                EXPECT_EQ(res, want_res) << what << ": residual sum must be bit-exact";
              }
            }
          }
        }
      }
}

TEST(RmsNorm, KnownValue) {
  // Row (3, 4): mean of squares 12.5, so dst = x / sqrt(12.5) * w.
  const float src[2] = {3, 4}, w[2] = {1, 2};
  float dst[2];
  const rmsnorm_desc d{1, 2, 0.0f, false, dtype::fp32};
  rmsnorm_select(d).execute(d, rmsnorm_args{src, nullptr, w, dst}, 0, 1);
  EXPECT_NEAR(dst[0], 3 / std::sqrt(12.5), 1e-6);
  EXPECT_NEAR(dst[1], 8 / std::sqrt(12.5), 1e-6);
}

TEST(Rope, EveryImplIsaAndThreadCountMatchesReference) {
  struct c {
    std::int64_t tokens, heads, head_dim, rot_dim, rot_offset;
  };
  // Llama-style full rotation, MLA q (rope in dims 128..191 of 192), MLA k_pe (64 of 64), odd sizes.
  for (c s : {c{3, 4, 128, 128, 0}, c{5, 3, 192, 64, 128}, c{17, 1, 64, 64, 0}, c{2, 3, 10, 6, 2}})
    for (dtype dt : {dtype::fp32, dtype::bf16}) {
      rope_desc d;
      d.tokens = s.tokens;
      d.heads = s.heads;
      d.head_dim = s.head_dim;
      d.rot_dim = s.rot_dim;
      d.rot_offset = s.rot_offset;
      d.max_position = 5000;
      d.theta = 10000.0f;
      d.dt = dt;
      std::mt19937_64 rng(static_cast<std::uint64_t>(s.tokens * 7 + s.head_dim));
      const auto x0 = random_values(dt, s.tokens * s.heads * s.head_dim, rng);
      std::vector<std::int32_t> pos;
      for (std::int64_t t = 0; t < s.tokens; ++t) pos.push_back(static_cast<std::int32_t>(rng() % 5000));
      std::vector<float> table(static_cast<std::size_t>(d.max_position * d.rot_dim));
      rope_cos_sin_table(d, table.data());
      auto want = x0;
      rope_validate(d, rope_args{want.data(), pos.data(), table.data()});
      rope_reference().execute(d, rope_args{want.data(), pos.data(), table.data()}, 0, 1);
      EXPECT_NE(want, x0);
      for (isa_level level : runnable_isas()) {
        scoped_isa_cap cap(level);
        for (const auto& impl : rope_impls()) {
          if (impl.check(d)) continue;
          for (int nthr : {1, 2, 4}) {
            auto got = x0;
            for (int i = 0; i < nthr; ++i) impl.execute(d, rope_args{got.data(), pos.data(), table.data()}, i, nthr);
            expect_close(dt, got, want, s.tokens * s.heads * s.head_dim, s.head_dim,
                         std::string(impl.name) + " " + std::string(to_string(dt)) + " head_dim " + std::to_string(s.head_dim));
            // Values outside the rotated slice are untouched.
            for (std::int64_t w = 0; w < s.tokens * s.heads; ++w)
              for (std::int64_t i = 0; i < s.head_dim; ++i)
                if (i < s.rot_offset || i >= s.rot_offset + s.rot_dim) {
                  ASSERT_EQ(value(dt, got, w * s.head_dim + i), value(dt, x0, w * s.head_dim + i));
                }
          }
        }
      }
    }
}

std::string invalid_message(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "(no exception)";
}

TEST(NormBadInput, RejectedNamingTheValue) {
  EXPECT_NE(invalid_message([] { rmsnorm_validate(rmsnorm_desc{0, 8, 1e-6f, false, dtype::fp32}); }).find("rows = 0"), std::string::npos);
  EXPECT_NE(invalid_message([] { rmsnorm_validate(rmsnorm_desc{1, 8, 1e-6f, false, dtype::int8}); }).find("'int8'"), std::string::npos);
  rope_desc d;
  d.rot_dim = 63;
  EXPECT_NE(invalid_message([&] { rope_validate(d); }).find("rot_dim = 63"), std::string::npos);
  d.rot_dim = 64;
  d.rot_offset = 100;
  EXPECT_NE(invalid_message([&] { rope_validate(d); }).find("rot_offset = 100"), std::string::npos);
  d.rot_offset = 0;
  d.max_position = 8;
  const std::int32_t pos = 8;
  EXPECT_NE(invalid_message([&] { rope_validate(d, rope_args{nullptr, &pos, nullptr}); }).find("positions[0] = 8"), std::string::npos);
}

TEST(NormWork, Counts) {
  const work_model w = rmsnorm_work(rmsnorm_desc{4, 10, 1e-6f, true, dtype::bf16});
  EXPECT_DOUBLE_EQ(w.flops(), 4.0 * 40);
  EXPECT_DOUBLE_EQ(w.bytes(), 40.0 * 2 * 4 + 40);
  rope_desc d;
  d.tokens = 2;
  d.heads = 3;
  d.rot_dim = 64;
  EXPECT_DOUBLE_EQ(rope_work(d).flops(), 6.0 * 6 * 32);
}

}  // namespace
}  // namespace infermark
