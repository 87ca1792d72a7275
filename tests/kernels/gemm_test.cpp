// GEMM: every implementation against the reference, for every ISA level this CPU can run, every format,
// thread counts 1-3 (workers run one after another: the kernels are pure), seeded shapes including
// awkward ones; exact equality on integer-valued data; refusals, selection and the work model.
#include <gtest/gtest.h>

#include "backends/memory.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/common/isa.hpp"
#include "kernels/gemm/gemm.hpp"

namespace infermark {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr std::int64_t kGuard = 64;  // NaN-filled elements after every buffer, checked after each run

// One problem's operands in their storage formats, plus the guards around them.
struct problem {
  gemm_desc d;
  std::vector<std::uint8_t> src, wei;  // storage bytes (plus kGuard NaN-ish guard bytes for src)
  std::vector<float> src_scale, wei_scale;
};

std::int64_t kblocks(const gemm_desc& d) { return (d.k + gemm_fp8_block - 1) / gemm_fp8_block; }
std::int64_t nblocks(const gemm_desc& d) { return (d.n + gemm_fp8_block - 1) / gemm_fp8_block; }

// Random data for `d`. integers: small integer values (and unit scales) so every format's result is
// exact and must match the reference bit for bit.
problem make_problem(const gemm_desc& d, bool integers, std::uint64_t seed) {
  problem p;
  p.d = d;
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> real(-1.0f, 1.0f);
  std::uniform_int_distribution<int> small(-4, 4);
  const std::size_t es = dtype_size(d.dt);
  auto fill = [&](std::vector<std::uint8_t>& buf, std::int64_t count) {
    buf.assign(static_cast<std::size_t>(count + kGuard) * es, 0xff);  // 0xff..: NaN for every float format
    for (std::int64_t i = 0; i < count; ++i) {
      const float v = integers ? static_cast<float>(small(rng)) : real(rng);
      switch (d.dt) {
        case dtype::fp32: std::memcpy(&buf[i * 4], &v, 4); break;
        case dtype::bf16: {
          const bf16_t h = f32_to_bf16(v);
          std::memcpy(&buf[i * 2], &h, 2);
          break;
        }
        case dtype::int8:
          buf[i] = static_cast<std::uint8_t>(
              static_cast<std::int8_t>(integers ? small(rng) : std::uniform_int_distribution<int>(-127, 127)(rng)));
          break;
        case dtype::fp8: buf[i] = f32_to_fp8_e4m3(integers ? v : v * 448.0f); break;
      }
    }
  };
  fill(p.src, d.m * d.k);
  fill(p.wei, d.n * d.k);
  std::uniform_real_distribution<float> scale(0.01f, 2.0f);
  auto scales = [&](std::vector<float>& s, std::int64_t count) {
    s.resize(static_cast<std::size_t>(count));
    for (auto& x : s) x = integers ? 1.0f : scale(rng);
  };
  if (d.dt == dtype::int8) {
    scales(p.src_scale, d.m);
    scales(p.wei_scale, d.n);
  } else if (d.dt == dtype::fp8) {
    scales(p.src_scale, d.m * kblocks(d));
    scales(p.wei_scale, nblocks(d) * kblocks(d));
  }
  return p;
}

// Runs `impl` on `p` with nthr workers (one after another) into a NaN-filled dst with NaN guards.
std::vector<float> run(const gemm_impl& impl, const problem& p, int nthr) {
  std::vector<std::uint8_t> packed(impl.packed_bytes(p.d) + kGuard, 0xff);  // NaN before packing
  impl.pack(p.d, p.wei.data(), packed.data());
  std::vector<float> dst(static_cast<std::size_t>(p.d.m * p.d.n + kGuard), kNaN);
  // Exactly the workspace the implementation asks for (ASan catches a worker writing past it).
  host_vector<std::byte> ws(impl.workspace_bytes(p.d, nthr));
  gemm_args a{p.src.data(), packed.data(), dst.data(), p.src_scale.empty() ? nullptr : p.src_scale.data(),
              p.wei_scale.empty() ? nullptr : p.wei_scale.data(), ws.empty() ? nullptr : ws.data()};
  for (int ithr = 0; ithr < nthr; ++ithr) impl.execute(p.d, a, ithr, nthr);
  for (std::int64_t i = p.d.m * p.d.n; i < p.d.m * p.d.n + kGuard; ++i)
    EXPECT_TRUE(std::isnan(dst[i])) << impl.name << " wrote past dst at element " << i;
  dst.resize(static_cast<std::size_t>(p.d.m * p.d.n));
  return dst;
}

// Sum over k of |src * wei| (scaled like the result): the magnitude that bounds rounding error.
std::vector<double> magnitude(const problem& p) {
  const gemm_desc& d = p.d;
  auto val = [&](const std::vector<std::uint8_t>& b, std::int64_t i) -> double {
    switch (d.dt) {
      case dtype::fp32: { float f; std::memcpy(&f, &b[i * 4], 4); return f; }
      case dtype::bf16: { bf16_t h; std::memcpy(&h, &b[i * 2], 2); return bf16_to_f32(h); }
      case dtype::int8: return static_cast<std::int8_t>(b[i]);
      case dtype::fp8: return fp8_e4m3_to_f32(b[i]);
    }
    return 0;
  };
  std::vector<double> s(static_cast<std::size_t>(d.m * d.k)), w(static_cast<std::size_t>(d.n * d.k));
  for (std::int64_t i = 0; i < d.m * d.k; ++i) s[i] = val(p.src, i);
  for (std::int64_t i = 0; i < d.n * d.k; ++i) w[i] = val(p.wei, i);
  std::vector<double> mag(static_cast<std::size_t>(d.m * d.n), 0.0);
  for (std::int64_t i = 0; i < d.m; ++i)
    for (std::int64_t j = 0; j < d.n; ++j) {
      double acc = 0;
      for (std::int64_t q = 0; q < d.k; ++q) {
        double sc = 1;
        if (d.dt == dtype::int8) sc = p.src_scale[i] * p.wei_scale[j];
        if (d.dt == dtype::fp8)
          sc = p.src_scale[i * kblocks(d) + q / gemm_fp8_block] *
               p.wei_scale[(j / gemm_fp8_block) * kblocks(d) + q / gemm_fp8_block];
        acc += std::fabs(s[i * d.k + q] * w[j * d.k + q] * sc);
      }
      mag[i * d.n + j] = acc;
    }
  return mag;
}

// Allowed |got - ref| / sum|src*wei| (benchdnn style: an epsilon times a factor growing with k). The
// inputs are exactly representable in every format, so the only error is the fp32 accumulation (and,
// for scaled formats, a few roundings of the scale products): the fp32 epsilon applies to all formats.
double tolerance(const gemm_desc& d) {
  const double eps = dtype_epsilon(dtype::fp32);
  return eps * (8.0 + 2.0 * std::sqrt(static_cast<double>(d.k)));
}

struct shape {
  std::int64_t m, n, k;
};

// Awkward shapes: ones, primes, non-multiples of vector widths (8, 16), of row tiles (4, 6, 8), of
// weight panels (8, 12, 16, 64), of the k blocks (128, 256, 384) and of the row blocks (128-384).
std::vector<shape> shapes() {
  std::vector<shape> s = {{1, 1, 1},    {1, 3, 17},    {3, 17, 1},     {17, 3, 5},    {1, 65, 130},
                          {1, 200, 385}, {7, 129, 385}, {13, 64, 384},  {6, 64, 769},  {5, 100, 257},
                          {390, 70, 20}, {2, 300, 129}, {19, 17, 1000}, {64, 128, 128},
                          // several k blocks of every kernel (the int8 one takes 2048 at a time)
                          {3, 70, 4099}, {8, 65, 2050},
                          // whole 32 x 64 tiles (AMX: accumulated in dst over k blocks) beside partial ones
                          {40, 130, 4200},
                          // 1-2 rows over several multi-block decode calls (16 k blocks per call: 2048 k
                          // for fp8, 4096 for bf16 on AVX2) and a short last one, accumulated through dst;
                          // with enough whole 16-wide panels per worker for the decode loop's lockstep
                          // streams (AVX2: 4 panels at one row, 2 at two) beside leftover and part panels
                          {1, 33, 4500}, {2, 24, 8300}, {1, 130, 4500}, {2, 70, 8300}};
  std::mt19937_64 rng(2024);
  for (int i = 0; i < 6; ++i)
    s.push_back({std::uniform_int_distribution<std::int64_t>(1, 40)(rng),
                 std::uniform_int_distribution<std::int64_t>(1, 300)(rng),
                 std::uniform_int_distribution<std::int64_t>(1, 800)(rng)});
  return s;
}

std::string where(const gemm_impl& impl, isa_level isa, const gemm_desc& d, int nthr) {
  return std::string(impl.name) + " isa=" + std::string(to_string(isa)) + " " + std::string(to_string(d.dt)) +
         " m=" + std::to_string(d.m) + " n=" + std::to_string(d.n) + " k=" + std::to_string(d.k) +
         " nthr=" + std::to_string(nthr);
}

class GemmFormat : public ::testing::TestWithParam<dtype> {};

// Every implementation the cap leaves runnable, vs the reference, real-valued data, nthr 1..3; the
// result must also be bit-identical across thread counts (k is never split).
TEST_P(GemmFormat, MatchesReferenceOnEveryIsaAndThreadCount) {
  std::uint64_t seed = 1;
  int compared = 0;
  for (const shape& sh : shapes()) {
    const gemm_desc d{sh.m, sh.n, sh.k, GetParam()};
    const problem p = make_problem(d, false, seed++);
    const std::vector<float> ref = run(gemm_reference(), p, 1);
    const std::vector<double> mag = magnitude(p);
    for (isa_level isa : runnable_isas()) {
      scoped_isa_cap cap(isa);
      for (const gemm_impl& impl : gemm_impls()) {
        if (impl.check(d) || impl.name == gemm_reference().name) continue;
        std::vector<float> first;
        for (int nthr = 1; nthr <= 3; ++nthr) {
          const std::vector<float> got = run(impl, p, nthr);
          const std::string at = where(impl, isa, d, nthr);
          for (std::int64_t i = 0; i < d.m * d.n; ++i) {
            const double err = std::fabs(static_cast<double>(got[i]) - ref[i]);
            ASSERT_LE(err, tolerance(d) * mag[i] + 1e-30)
                << at << " at (" << i / d.n << ", " << i % d.n << "): got " << got[i] << " want " << ref[i];
          }
          if (nthr == 1) {
            first = got;
          } else {
            ASSERT_EQ(0, std::memcmp(first.data(), got.data(), got.size() * sizeof(float))) << at;
          }
          ++compared;
        }
      }
    }
  }
  // Every format has at least its generic implementation: the comparison must have happened.
  EXPECT_GE(compared, static_cast<int>(shapes().size()) * 3) << "optimized implementations did not run";
}

// Small integers with unit scales: every format's sums are exact, so results must equal the reference.
TEST_P(GemmFormat, ExactOnIntegerData) {
  std::uint64_t seed = 100;
  for (const shape& sh : shapes()) {
    const gemm_desc d{sh.m, sh.n, sh.k, GetParam()};
    const problem p = make_problem(d, true, seed++);
    const std::vector<float> ref = run(gemm_reference(), p, 1);
    for (isa_level isa : runnable_isas()) {
      scoped_isa_cap cap(isa);
      for (const gemm_impl& impl : gemm_impls()) {
        if (impl.check(d)) continue;
        const std::vector<float> got = run(impl, p, 2);
        for (std::int64_t i = 0; i < d.m * d.n; ++i)
          ASSERT_EQ(got[i], ref[i]) << where(impl, isa, d, 2) << " at (" << i / d.n << ", " << i % d.n << ")";
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, GemmFormat,
                         ::testing::Values(dtype::fp32, dtype::bf16, dtype::int8, dtype::fp8),
                         [](const auto& info) { return std::string(to_string(info.param)); });

// The reference itself on a hand-computed case (it is the oracle, so it gets its own check).
TEST(Gemm, ReferenceOnHandComputedCase) {
  const float src[2 * 3] = {1, 2, 3, 4, 5, 6};
  const float wei[2 * 3] = {1, 0, -1, 2, 1, 0};  // rows: output channels
  float dst[4] = {kNaN, kNaN, kNaN, kNaN};
  const gemm_desc d{2, 2, 3, dtype::fp32};
  std::vector<std::uint8_t> packed(gemm_reference().packed_bytes(d));
  gemm_reference().pack(d, wei, packed.data());
  gemm_reference().execute(d, gemm_args{src, packed.data(), dst}, 0, 1);
  EXPECT_EQ(dst[0], -2.0f);
  EXPECT_EQ(dst[1], 4.0f);
  EXPECT_EQ(dst[2], -2.0f);
  EXPECT_EQ(dst[3], 13.0f);
}

TEST(Gemm, ListEndsWithReferenceAndNamesAreUnique) {
  const auto impls = gemm_impls();
  ASSERT_FALSE(impls.empty());
  EXPECT_EQ(impls.back().name, "ref:any");
  for (std::size_t i = 0; i < impls.size(); ++i)
    for (std::size_t j = i + 1; j < impls.size(); ++j) EXPECT_NE(impls[i].name, impls[j].name);
  EXPECT_EQ(gemm_find("generic:fp32").name, "generic:fp32");
}

TEST(Gemm, Fp8EveryCodeIsExactInWeightsAndSource) {
  // Every non-NaN e4m3 code (subnormals, zeros of both signs, the largest) times 1.0, as a weight and as
  // a source value, through each fp8 implementation this CPU runs: the conversions must be exact. As
  // weights for 1 row (decode, one row tile: weights converted inside the tile), 8 rows (decode, two
  // row tiles) and 13 rows (blocked: weights converted once per row block into the workspace). As the
  // source, all codes along k of 1, 2 and 3 rows (each row rotated by one more code) against identity
  // weights, so the source packing converts them in its vector loops (one row, two interleaved, more)
  // and in its scalar tail.
  std::vector<fp8_t> codes;
  for (int c = 0; c < 256; ++c)
    if ((c & 0x7f) != 0x7f) codes.push_back(static_cast<fp8_t>(c));
  const auto n = static_cast<std::int64_t>(codes.size());
  const auto code = [&](std::int64_t i) { return codes[static_cast<std::size_t>(i % n)]; };
  const fp8_t one = f32_to_fp8_e4m3(1.0f);
  for (const auto& impl : gemm_impls()) {
    if (impl.check(gemm_desc{1, n, n, dtype::fp8})) continue;
    for (std::int64_t rows : {1, 8, 13, -1, -2, -3}) {  // negative: that many rows of codes in the source
      const bool in_weights = rows > 0;
      const gemm_desc d = in_weights ? gemm_desc{rows, n, 2, dtype::fp8} : gemm_desc{-rows, n, n, dtype::fp8};
      std::vector<fp8_t> src(static_cast<std::size_t>(d.m * d.k), 0), wei(static_cast<std::size_t>(d.n * d.k), 0);
      for (std::int64_t r = 0; r < d.m; ++r)
        for (std::int64_t i = 0; i < n; ++i) {
          if (in_weights) {
            wei[static_cast<std::size_t>(i * d.k)] = code(i);
            src[static_cast<std::size_t>(r * d.k)] = one;
          } else {
            src[static_cast<std::size_t>(r * d.k + i)] = code(i + r);
            wei[static_cast<std::size_t>(i * d.k + i)] = one;
          }
        }
      const std::int64_t kb = (d.k + 127) / 128;
      std::vector<float> src_scale(static_cast<std::size_t>(d.m * kb), 1.0f), wei_scale(static_cast<std::size_t>((d.n + 127) / 128 * kb), 1.0f);
      std::vector<std::uint8_t> packed(impl.packed_bytes(d));
      impl.pack(d, wei.data(), packed.data());
      host_vector<std::byte> ws(impl.workspace_bytes(d, 1));
      std::vector<float> dst(static_cast<std::size_t>(d.m * d.n), kNaN);
      impl.execute(d, gemm_args{src.data(), packed.data(), dst.data(), src_scale.data(), wei_scale.data(),
                                ws.empty() ? nullptr : ws.data()}, 0, 1);
      for (std::int64_t r = 0; r < d.m; ++r)
        for (std::int64_t i = 0; i < n; ++i) {
          const fp8_t c = in_weights ? code(i) : code(i + r);
          EXPECT_EQ(dst[static_cast<std::size_t>(r * d.n + i)], fp8_e4m3_to_f32(c))
              << impl.name << (in_weights ? " weight" : " source") << " code 0x" << std::hex << int(c) << std::dec << " row "
              << r << " of " << d.m;
        }
    }
  }
}

TEST(Gemm, WorkspaceIsWhatPackingTheSourceNeeds) {
  // Kernels that read src in place need none; kernels that pack src rows need one slice per worker,
  // growing with rows (up to the row block) and k (up to the k block; all of k for a single row tile),
  // never with n.
  for (const auto& impl : gemm_impls()) {
    for (dtype dt : {dtype::fp32, dtype::bf16, dtype::int8, dtype::fp8}) {
      const gemm_desc small{3, 64, 200, dt}, tall{4096, 64, 200, dt}, wide{3, 8192, 200, dt};
      if (impl.check(small)) continue;
      const std::size_t one = impl.workspace_bytes(small, 1);
      EXPECT_EQ(one % 64, 0u) << impl.name;
      EXPECT_EQ(impl.workspace_bytes(small, 3), 3 * one) << impl.name;
      EXPECT_EQ(impl.workspace_bytes(wide, 1), one) << impl.name;
      EXPECT_GE(impl.workspace_bytes(tall, 1), one) << impl.name;
      // Never smaller for more rows: callers size one workspace by their largest sub-problem.
      for (std::int64_t m = 1; m <= 40; ++m)
        for (std::int64_t k : {1, 7, 128, 300, 2048, 7168})
          EXPECT_GE(impl.workspace_bytes(gemm_desc{m + 1, 64, k, dt}, 1), impl.workspace_bytes(gemm_desc{m, 64, k, dt}, 1))
              << impl.name << " m " << m << " k " << k;
      if (impl.name == "ref:any" || impl.name == "avx512:fp32" || impl.name == "avx512:bf16") {
        EXPECT_EQ(one, 0u) << impl.name << " reads src in place";
      }
      if (impl.name.rfind("generic:", 0) == 0) {
        EXPECT_GE(one, 3 * 128 * sizeof(float)) << impl.name << " packs 3 rows x a k block (>= 128; fp8 blocks are 128)";
        EXPECT_GT(impl.workspace_bytes(tall, 1), one) << impl.name;
      }
    }
  }
}

TEST(Gemm, ImplementationsRefuseWhatTheyCannotDo) {
  const gemm_desc fp32{4, 4, 4, dtype::fp32};
  {
    scoped_isa_cap cap(isa_level::generic);
    EXPECT_EQ(gemm_select(fp32).name, "generic:fp32");
    for (const auto& impl : gemm_impls()) {
      if (impl.name.starts_with("avx512") || impl.name.starts_with("avx2") || impl.name.starts_with("neon")) {
        // Each asked about its own format, so the ISA is the only reason left to refuse.
        // "<isa>:<format>[-<variant>]", e.g. avx512:fp8-fma
        const std::string_view fmt = impl.name.substr(impl.name.find(':') + 1);
        const dtype dt = parse_dtype(fmt.substr(0, fmt.find('-')));
        const auto why = impl.check(gemm_desc{4, 4, 4, dt});
        ASSERT_TRUE(why.has_value()) << impl.name << " accepted a generic-capped CPU";
        EXPECT_NE(why->find("generic"), std::string::npos) << *why;
      }
    }
  }
  for (dtype dt : {dtype::fp32, dtype::bf16, dtype::int8, dtype::fp8}) {
    const gemm_desc d{4, 4, 4, dt};
    const std::string fmt(to_string(dt));
    {
      scoped_isa_cap cap(isa_level::generic);
      EXPECT_EQ(gemm_select(d).name, "generic:" + fmt);
    }
    if (detected_isa() >= isa_level::avx2) {
      scoped_isa_cap cap(isa_level::avx2);
      EXPECT_EQ(gemm_select(d).name, "avx2:" + fmt);
      EXPECT_TRUE(gemm_find("avx512:" + fmt).check(d).has_value());
    }
  }
  if (detected_isa() >= isa_level::amx) {
    // AMX tile kernels first where the CPU (and the OS) allow them; a cap of avx512 turns them off.
    const auto& f = detected_features();
    EXPECT_EQ(gemm_select(gemm_desc{4, 4, 4, dtype::bf16}).name, "amx:bf16");
    EXPECT_EQ(gemm_select(gemm_desc{4, 4, 4, dtype::int8}).name, f.amx_int8 ? "amx:int8" : "avx512:int8");
    EXPECT_EQ(gemm_select(gemm_desc{4, 4, 4, dtype::fp8}).name, f.avx512_vbmi && f.gfni ? "amx:fp8" : "avx512:fp8-fma");
    scoped_isa_cap cap(isa_level::avx512);
    EXPECT_EQ(gemm_select(gemm_desc{4, 4, 4, dtype::bf16}).name, "avx512:bf16");
    const auto why = gemm_find("amx:bf16").check(gemm_desc{4, 4, 4, dtype::bf16});
    ASSERT_TRUE(why.has_value());
    EXPECT_NE(why->find("amx"), std::string::npos) << *why;
  }
  if (detected_isa() >= isa_level::avx512) {
    scoped_isa_cap cap(isa_level::avx512);
    // fp8 goes through bf16 dot products where the CPU has them, else fp32 FMAs.
    EXPECT_EQ(gemm_select(gemm_desc{4, 4, 4, dtype::fp8}).name,
              effective_features().avx512_bf16 && effective_features().avx512_vbmi && effective_features().gfni
                  ? "avx512:fp8"
                  : "avx512:fp8-fma");
    EXPECT_FALSE(gemm_find("avx512:fp8-fma").check(gemm_desc{4, 4, 4, dtype::fp8}).has_value());
    EXPECT_EQ(gemm_select(fp32).name, "avx512:fp32");
    // bf16 and int8 need their extensions on top of AVX-512 F/BW/VL/DQ.
    const auto& f = detected_features();
    EXPECT_EQ(gemm_find("avx512:bf16").check(gemm_desc{4, 4, 4, dtype::bf16}).has_value(), !f.avx512_bf16);
    EXPECT_EQ(gemm_find("avx512:int8").check(gemm_desc{4, 4, 4, dtype::int8}).has_value(), !f.avx512_vnni);
  }
  // A fp32 kernel refuses other formats, naming the format.
  const auto why = gemm_find("generic:fp32").check(gemm_desc{4, 4, 4, dtype::int8});
  ASSERT_TRUE(why.has_value());
  EXPECT_NE(why->find("int8"), std::string::npos) << *why;
}

TEST(Gemm, VendorForTuningMatchesTheOperatingSystem) {
  // cpu_is_amd() picks tuning constants (fp8 stream prefetch): it must agree with the kernel's vendor_id.
  std::ifstream in("/proc/cpuinfo");
  std::string line, vendor;
  while (std::getline(in, line))
    if (line.rfind("vendor_id", 0) == 0) {
      vendor = line.substr(line.find(':') + 2);
      break;
    }
  if (vendor.empty()) GTEST_SKIP() << "no vendor_id in /proc/cpuinfo";
  EXPECT_EQ(cpu_is_amd(), vendor == "AuthenticAMD") << vendor;
}

TEST(Gemm, BadInputThrowsNamingTheValue) {
  try {
    gemm_select(gemm_desc{0, 4, 4, dtype::fp32});
    FAIL() << "m=0 accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("m=0"), std::string::npos) << e.what();
  }
  EXPECT_THROW(gemm_select(gemm_desc{4, -1, 4, dtype::fp32}), std::invalid_argument);
  EXPECT_THROW(gemm_select(gemm_desc{4, 4, 0, dtype::fp32}), std::invalid_argument);
  try {
    gemm_find("avx9000:fp32");
    FAIL() << "unknown implementation accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("ref:any"), std::string::npos) << e.what();
  }
}

TEST(Gemm, WorkModelForKnownShape) {
  // m=2, n=3, k=4: 2*m*n*k = 48 FLOPs; src 8 and weights 12 elements, dst 6 floats.
  const work_model f = gemm_work(gemm_desc{2, 3, 4, dtype::fp32});
  EXPECT_EQ(f.flops(), 48.0);
  EXPECT_EQ(f.bytes(), (8 + 12) * 4.0 + 6 * 4.0);
  EXPECT_EQ(gemm_work(gemm_desc{2, 3, 4, dtype::bf16}).bytes(), (8 + 12) * 2.0 + 24.0);
  // int8: + 2 token scales + 3 channel scales.
  EXPECT_EQ(gemm_work(gemm_desc{2, 3, 4, dtype::int8}).bytes(), 20.0 + 5 * 4.0 + 24.0);
  // fp8, k=300 (3 k blocks), n=200 (2 n blocks): 1 byte per element + 2*3 + 2*3 scales.
  const work_model q = gemm_work(gemm_desc{2, 200, 300, dtype::fp8});
  EXPECT_EQ(q.flops(), 2.0 * 2 * 200 * 300);
  EXPECT_EQ(q.bytes(), 2 * 300 + 200 * 300 + (6 + 6) * 4.0 + 2 * 200 * 4.0);
  // Expert shape: 2 * 256 * 2048 * 7168 FLOPs.
  EXPECT_EQ(gemm_work(gemm_desc{256, 2048, 7168, dtype::fp32}).flops(), 7516192768.0);
}

}  // namespace
}  // namespace infermark
