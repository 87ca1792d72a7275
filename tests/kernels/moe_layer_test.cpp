// The whole MoE layer: every optimized implementation against the reference over awkward seeded shapes,
// every runnable ISA level, every format its GEMM accepts, thread counts 1..3 (bit-identical across
// them), expert shards, shared experts, forced routings; dispatch counts; packing errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "kernels/common/isa.hpp"
#include "kernels/moe/moe.hpp"
#include "kernels/moe/moe_act.hpp"

namespace infermark {
namespace {

// Logical weights of one expert in format dt (gemm.hpp layouts).
struct expert_data {
  std::vector<unsigned char> gate, up, down;
  std::vector<float> gate_scale, up_scale, down_scale;
  moe_expert_weights view() const {
    return {gate.data(), up.data(), down.data(), gate_scale.data(), up_scale.data(), down_scale.data()};
  }
};

std::int64_t wscales(dtype dt, std::int64_t n, std::int64_t k) {
  if (dt == dtype::int8) return n;
  if (dt == dtype::fp8) return ((n + 127) / 128) * ((k + 127) / 128);
  return 0;
}

// Small dyadic values (exact in every format) with per-format scales.
std::vector<unsigned char> matrix(dtype dt, std::int64_t n, std::int64_t k, std::mt19937_64& rng) {
  std::vector<unsigned char> out(static_cast<std::size_t>(n * k) * dtype_size(dt));
  std::uniform_int_distribution<int> small(-4, 4), wide(-127, 127);
  for (std::int64_t i = 0; i < n * k; ++i) {
    const float v = static_cast<float>(small(rng)) / 16.0f;
    switch (dt) {
      case dtype::fp32: std::memcpy(&out[static_cast<std::size_t>(i) * 4], &v, 4); break;
      case dtype::bf16: {
        const bf16_t h = f32_to_bf16(v);
        std::memcpy(&out[static_cast<std::size_t>(i) * 2], &h, 2);
        break;
      }
      case dtype::int8: out[static_cast<std::size_t>(i)] = static_cast<unsigned char>(static_cast<std::int8_t>(wide(rng))); break;
      case dtype::fp8: out[static_cast<std::size_t>(i)] = f32_to_fp8_e4m3(static_cast<float>(small(rng)) * 8.0f); break;
    }
  }
  return out;
}

std::vector<float> scales(dtype dt, std::int64_t n, std::int64_t k, std::mt19937_64& rng) {
  std::uniform_real_distribution<float> s(0.5f / 256, 1.5f / 256);
  std::vector<float> v(static_cast<std::size_t>(wscales(dt, n, k)));
  for (auto& x : v) x = s(rng);
  return v;
}

expert_data make_expert(dtype dt, std::int64_t inter, std::int64_t hidden, std::mt19937_64& rng) {
  expert_data e;
  e.gate = matrix(dt, inter, hidden, rng);
  e.up = matrix(dt, inter, hidden, rng);
  e.down = matrix(dt, hidden, inter, rng);
  e.gate_scale = scales(dt, inter, hidden, rng);
  e.up_scale = scales(dt, inter, hidden, rng);
  e.down_scale = scales(dt, hidden, inter, rng);
  return e;
}

struct layer_data {
  moe_desc d;
  std::vector<float> x, router, bias;
  std::vector<expert_data> experts;  // local experts
  expert_data shared;
  std::vector<std::int32_t> forced_ids;
  std::vector<float> forced_w;
};

layer_data make_layer(const moe_desc& d, std::uint64_t seed, moe_route route = moe_route::model) {
  std::mt19937_64 rng(seed);
  layer_data L;
  L.d = d;
  // Router inputs are dyadic so the logits are exact in fp32 and fp64 alike: the reference and the
  // optimized router then agree exactly, ties included (and ties are frequent with such values).
  std::uniform_int_distribution<int> xi(-8, 8), ri(-3, 3), bi(-2, 2);
  L.x.resize(static_cast<std::size_t>(d.tokens * d.hidden));
  for (auto& v : L.x) v = static_cast<float>(xi(rng)) / 8.0f;
  L.router.resize(static_cast<std::size_t>(d.experts * d.hidden));
  for (auto& v : L.router) v = static_cast<float>(ri(rng)) / 8.0f;
  L.bias.resize(static_cast<std::size_t>(d.experts));
  for (auto& v : L.bias) v = static_cast<float>(bi(rng)) / 16.0f;
  for (std::int64_t e = 0; e < d.local(); ++e) L.experts.push_back(make_expert(d.dt, d.inter, d.hidden, rng));
  if (d.shared_inter > 0) L.shared = make_expert(d.dt, d.shared_inter, d.hidden, rng);
  if (route != moe_route::model) {
    L.forced_ids.resize(static_cast<std::size_t>(d.tokens * d.top_k));
    L.forced_w.resize(L.forced_ids.size());
    moe_synthetic_routing(d, route, seed, L.forced_ids.data(), L.forced_w.data());
  }
  return L;
}

struct aligned_buffer {
  std::unique_ptr<unsigned char[]> p;
  unsigned char* data = nullptr;
  explicit aligned_buffer(std::size_t n, unsigned char fill) : p(new unsigned char[n + 64]) {
    data = p.get() + (64 - reinterpret_cast<std::uintptr_t>(p.get()) % 64) % 64;
    std::memset(data, fill, n);
  }
};

struct outputs {
  std::vector<float> dst, w;
  std::vector<std::int32_t> ids, counts;
};

outputs run(const moe_impl& impl, const layer_data& L, int nthr) {
  const moe_desc& d = L.d;
  aligned_buffer packed(impl.packed_bytes(d), 0xff);  // NaN-like garbage where nothing is packed
  impl.pack_router(d, {L.router.data(), L.bias.data()}, packed.data);
  for (std::int64_t e = 0; e < d.local(); ++e) impl.pack_expert(d, e, L.experts[static_cast<std::size_t>(e)].view(), packed.data);
  if (d.shared_inter > 0) impl.pack_expert(d, moe_shared_expert, L.shared.view(), packed.data);
  aligned_buffer scratch(impl.scratch_bytes(d, nthr), 0xff);  // 0xffffffff: NaN floats, -1 ints
  outputs o;
  o.dst.assign(static_cast<std::size_t>(d.tokens * d.hidden), std::nanf(""));
  o.ids.assign(static_cast<std::size_t>(d.tokens * d.top_k), -9);
  o.w.assign(o.ids.size(), std::nanf(""));
  o.counts.assign(static_cast<std::size_t>(d.experts), -9);
  moe_args a;
  a.src = L.x.data();
  a.packed = packed.data;
  if (!L.forced_ids.empty()) a.forced_ids = L.forced_ids.data(), a.forced_weights = L.forced_w.data();
  a.topk_ids = o.ids.data();
  a.topk_weights = o.w.data();
  a.expert_counts = o.counts.data();
  a.dst = o.dst.data();
  a.scratch = scratch.data;
  moe_run_sequential(impl, d, a, nthr);
  return o;
}

// Tolerance relative to the largest reference output: fp32 accumulates in a different order than the
// fp64 reference; quantized formats can round one intermediate activation to a neighbouring level.
double tolerance(dtype dt) {
  switch (dt) {
    case dtype::fp32: return 2e-5;
    case dtype::bf16: return 2e-2;
    case dtype::int8: return 3e-2;
    case dtype::fp8: return 1.5e-1;
  }
  return 0;
}

void expect_close(const outputs& got, const outputs& want, const moe_desc& d, const std::string& what) {
  ASSERT_EQ(got.ids, want.ids) << what;
  ASSERT_EQ(got.w, want.w) << what;
  ASSERT_EQ(got.counts, want.counts) << what;
  double peak = 0, worst = 0;
  std::size_t worst_at = 0;
  for (float v : want.dst) peak = std::max(peak, static_cast<double>(std::fabs(v)));
  ASSERT_GT(peak, 0) << what;
  for (std::size_t i = 0; i < got.dst.size(); ++i) {
    const double err = std::fabs(static_cast<double>(got.dst[i]) - want.dst[i]);
    if (!(err <= worst)) worst = std::isnan(err) ? INFINITY : err, worst_at = i;
  }
  EXPECT_LE(worst / peak, tolerance(d.dt)) << what << ": dst[" << worst_at / d.hidden << "][" << worst_at % d.hidden
                                           << "] = " << got.dst[worst_at] << " vs " << want.dst[worst_at]
                                           << " (peak " << peak << ")";
}

std::vector<moe_desc> shapes(dtype dt) {
  std::vector<moe_desc> v;
  moe_desc q;  // Qwen3-like, tokens 17, widths not multiples of any vector
  q.tokens = 17, q.experts = 8, q.top_k = 3, q.hidden = 37, q.inter = 23, q.dt = dt;
  v.push_back(q);
  moe_desc ds;  // DeepSeek-V3-like: groups, bias, shared expert, several gate/up and down chunks
  ds.tokens = 3, ds.experts = 16, ds.top_k = 4, ds.hidden = 300, ds.inter = 150, ds.shared_inter = 70;
  ds.scoring = moe_scoring::sigmoid_group_topk, ds.n_group = 4, ds.topk_group = 2, ds.routed_scale = 2.5f;
  ds.dt = dt;
  v.push_back(ds);
  moe_desc mx;  // Mixtral / gpt-oss-like with the gpt-oss activation, one token
  mx.tokens = 1, mx.experts = 4, mx.top_k = 2, mx.hidden = 130, mx.inter = 129, mx.dt = dt;
  mx.scoring = moe_scoring::topk_softmax, mx.act = moe_activation::swiglu_oai;
  v.push_back(mx);
  moe_desc v2;  // V2-Lite-like shard: experts 2..4 of 8 local, shared expert
  v2.tokens = 17, v2.experts = 8, v2.top_k = 2, v2.hidden = 33, v2.inter = 19, v2.shared_inter = 38;
  v2.scoring = moe_scoring::softmax_topk, v2.local_first = 2, v2.local_count = 3, v2.dt = dt;
  v.push_back(v2);
  return v;
}

std::string name_of(const moe_desc& d) {
  return std::string(to_string(d.dt)) + " t" + std::to_string(d.tokens) + "e" + std::to_string(d.experts) + "k" +
         std::to_string(d.top_k) + "h" + std::to_string(d.hidden) + "i" + std::to_string(d.inter) + " " +
         std::string(to_string(d.scoring));
}

void check_all(const layer_data& L, const std::string& label) {
  const outputs want = run(moe_reference(), L, 2);
  int tried = 0;
  for (isa_level isa : runnable_isas()) {
    scoped_isa_cap cap(isa);
    for (const auto& impl : moe_impls()) {
      if (impl.name == moe_reference().name || impl.check(L.d)) continue;
      ++tried;
      outputs first;
      for (int nthr = 1; nthr <= 3; ++nthr) {
        const std::string what = label + " " + impl.name + " cap " + std::string(to_string(isa)) + " nthr " + std::to_string(nthr);
        const outputs got = run(impl, L, nthr);
        expect_close(got, want, L.d, what);
        if (nthr == 1) first = got;
        else EXPECT_EQ(std::memcmp(got.dst.data(), first.dst.data(), got.dst.size() * 4), 0) << what << ": not bit-identical to nthr 1";
      }
    }
  }
  EXPECT_GT(tried, 0) << label << ": no optimized implementation accepted it";
}

class MoeLayer : public ::testing::TestWithParam<dtype> {};

TEST_P(MoeLayer, MatchesReferenceOnModelRouting) {
  std::uint64_t seed = 11;
  for (const moe_desc& d : shapes(GetParam())) check_all(make_layer(d, seed++), name_of(d));
}

TEST_P(MoeLayer, MatchesReferenceOnForcedRouting) {
  moe_desc d = shapes(GetParam())[0];
  d.tokens = 9;
  for (auto route : {moe_route::uniform, moe_route::balanced, moe_route::zipf})
    check_all(make_layer(d, 5, route), name_of(d) + " route " + std::string(to_string(route)));
}

INSTANTIATE_TEST_SUITE_P(Formats, MoeLayer, ::testing::Values(dtype::fp32, dtype::bf16, dtype::int8, dtype::fp8),
                         [](const auto& info) { return std::string(to_string(info.param)); });

TEST(MoeDispatch, CountsFollowTheRouting) {
  // 3 tokens, top-2 of 4 experts, forced: {2,0}, {2,1}, {3,2} -> counts {1,1,3,1}. Expert 2 gets weight
  // 1 and the others 0 through the forced weights.
  moe_desc d;
  d.tokens = 3, d.experts = 4, d.top_k = 2, d.hidden = 20, d.inter = 12;
  layer_data L = make_layer(d, 3);
  L.forced_ids = {2, 0, 2, 1, 3, 2};
  L.forced_w = {1, 0, 1, 0, 0, 1};
  const outputs want = run(moe_reference(), L, 1);
  EXPECT_EQ(want.counts, (std::vector<std::int32_t>{1, 1, 3, 1}));
  const moe_impl& impl = moe_select(d);
  const outputs got = run(impl, L, 3);
  EXPECT_EQ(got.counts, want.counts) << impl.name;
  expect_close(got, want, d, impl.name);
  // The router still ran: its own choice is reported, independent of the override.
  layer_data M = L;
  M.forced_ids.clear(), M.forced_w.clear();
  EXPECT_EQ(got.ids, run(impl, M, 1).ids);
  // Same layer restricted to a shard holding only expert 2: counts still cover all experts.
  layer_data S = L;
  S.d.local_first = 2, S.d.local_count = 1;
  S.experts = {L.experts[2]};
  const outputs shard = run(moe_select(S.d), S, 2);
  EXPECT_EQ(shard.counts, want.counts);
  for (std::size_t i = 0; i < shard.dst.size(); ++i) EXPECT_FLOAT_EQ(shard.dst[i], got.dst[i]) << i;
}

TEST(MoePack, RejectsBadExpertsAndMissingPieces) {
  moe_desc d;
  d.tokens = 2, d.experts = 4, d.top_k = 2, d.hidden = 16, d.inter = 8;
  d.scoring = moe_scoring::sigmoid_group_topk;
  for (const auto& impl : moe_impls()) {
    if (impl.check(d)) continue;
    std::vector<unsigned char> packed(impl.packed_bytes(d));
    std::vector<float> router(64);
    EXPECT_THROW(impl.pack_router(d, {router.data(), nullptr}, packed.data()), std::invalid_argument) << impl.name;
    std::mt19937_64 rng(1);
    const expert_data e = make_expert(d.dt, d.inter, d.hidden, rng);
    EXPECT_THROW(impl.pack_expert(d, 4, e.view(), packed.data()), std::invalid_argument) << impl.name;
    EXPECT_THROW(impl.pack_expert(d, moe_shared_expert, e.view(), packed.data()), std::invalid_argument) << impl.name;
    d.top_k = 5;
    EXPECT_THROW(impl.pack_expert(d, 0, e.view(), packed.data()), std::invalid_argument) << impl.name;
    d.top_k = 2;
  }
}


// The vector quantizer the optimized layer uses must give the scalar rule's bytes and scales exactly:
// random rows (lengths around the 16-lane and 128-block boundaries), ties at every rounding step,
// subnormal and out-of-range values, infinities, and NaN where the format defines it.
TEST(MoeQuantize, VectorRowsAreBitIdenticalToTheScalarRule) {
#if defined(__x86_64__) || defined(_M_X64)
  if (detected_isa() < isa_level::avx512) GTEST_SKIP() << "no AVX-512 on this CPU";
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> uni(-3.0f, 3.0f);
  const float specials[] = {0.0f, -0.0f, 1e-45f, -1e-38f, 0.5f, 1.5f, 2.5f, -2.5f, 1.0f / 1024, 3.0f / 1024, 0x1.0p-10f,
                            0x1.2p-7f, 0x1.3p-7f, 0x1.48p+3f, 0x1.58p+3f, 448.0f, 464.0f, 1e30f, -1e30f, 0x1.00008p0f, 0x1.00018p0f};
  int rows = 0;
  for (dtype dt : {dtype::bf16, dtype::int8, dtype::fp8}) {
    for (std::int64_t n : {1, 15, 16, 17, 127, 128, 129, 300, 2048}) {
      for (int variant = 0; variant < 5; ++variant) {
        std::vector<float> x(static_cast<std::size_t>(n));
        for (auto& v : x) v = uni(rng) * (variant == 1 ? 1e-3f : variant == 2 ? 300.0f : 1.0f);
        if (variant == 3)
          for (std::size_t i = 0; i < x.size(); ++i) x[i] = specials[i % std::size(specials)] * (i % 3 == 0 ? -1.0f : 1.0f);
        if (variant == 3 && dt != dtype::int8 && n > 5) {  // int8 has no NaN / infinity rule
          x[1] = std::numeric_limits<float>::infinity();
          x[4] = std::numeric_limits<float>::quiet_NaN();
          x[5] = std::bit_cast<float>(0x7f800001u);  // signalling NaN: bf16 must quiet it
        }
        if (variant == 4) {
          // Exact ties of each format's rounding, with the row's largest magnitude making the scale 1
          // (int8: 127, fp8: 448 in every 128-block), so the ties survive the division by the scale.
          const std::vector<float> ties =
              dt == dtype::bf16 ? std::vector<float>{0x1.01p0f, 0x1.03p0f, -0x1.01p0f, 0x1.ffp0f, 0x1.01p-130f, 0x1.03p-126f}
              : dt == dtype::int8 ? std::vector<float>{127.0f, 0.5f, 1.5f, 2.5f, -0.5f, -1.5f, -2.5f, 126.5f}
                                  : std::vector<float>{448.0f, 8.5f, 9.5f, -8.5f, 17.0f, 19.0f, 0x1.0p-10f, 0x1.8p-9f, 0x1.4p-8f, -0x1.4p-8f, 0x1.f8p-7f};
          for (std::size_t i = 0; i < x.size(); ++i) x[i] = i % 128 == 0 ? ties[0] : ties[i % ties.size()];
        }
        const std::size_t bytes = static_cast<std::size_t>(n) * dtype_size(dt);
        const std::int64_t ns = std::max<std::int64_t>(1, moe_row_scales(dt, n));
        std::vector<unsigned char> want(bytes), got(bytes, 0xcd);
        std::vector<float> want_s(static_cast<std::size_t>(ns)), got_s(static_cast<std::size_t>(ns), -1.0f);
        moe_quantize_row(dt, x.data(), n, want.data(), want_s.data());
        moe_detail::quantize_row_avx512(dt, x.data(), n, got.data(), got_s.data());
        ASSERT_EQ(0, std::memcmp(want.data(), got.data(), bytes)) << to_string(dt) << " n=" << n << " variant " << variant;
        if (moe_row_scales(dt, n) > 0) {
          ASSERT_EQ(0, std::memcmp(want_s.data(), got_s.data(), static_cast<std::size_t>(ns) * sizeof(float)))
              << to_string(dt) << " n=" << n << " variant " << variant;
        }
        ++rows;
      }
    }
  }
  EXPECT_EQ(rows, 3 * 9 * 5);
#else
  GTEST_SKIP() << "x86-64 only";
#endif
}


// The router reads bf16-rounded inputs outside fp32 layers (moe_router_dtype): a token whose fp32
// logits prefer expert 1 by 2^-8 ties in bf16 (both inputs round to 1 + 2^-7), and a tie goes to the
// lower index. Every implementation must follow the rule of its layer's format, as the reference does.
TEST(MoeRouter, InputsAreRoundedToBf16OutsideFp32Layers) {
  for (dtype dt : {dtype::fp32, dtype::bf16, dtype::int8, dtype::fp8}) {
    moe_desc d;
    d.tokens = 1, d.experts = 2, d.top_k = 1, d.hidden = 32, d.inter = 16, d.dt = dt;
    d.scoring = moe_scoring::softmax_topk;
    layer_data L = make_layer(d, 5);
    std::fill(L.x.begin(), L.x.end(), 0.0f);
    std::fill(L.router.begin(), L.router.end(), 0.0f);
    L.x[0] = 1.0f + 3.0f / 512, L.x[1] = 1.0f + 5.0f / 512;  // bf16: both 1 + 1/128
    L.router[0] = 1.0f;                                       // expert 0 sees x[0]
    L.router[static_cast<std::size_t>(d.hidden) + 1] = 1.0f;  // expert 1 sees x[1]
    EXPECT_EQ(moe_router_dtype(d), dt == dtype::fp32 ? dtype::fp32 : dtype::bf16);
    const std::int32_t want = dt == dtype::fp32 ? 1 : 0;
    int checked = 0;
    for (const moe_impl& impl : moe_impls()) {
      if (impl.check(d)) continue;
      const outputs o = run(impl, L, 2);
      ASSERT_EQ(o.ids.size(), 1u);
      EXPECT_EQ(o.ids[0], want) << impl.name << " " << to_string(dt);
      ++checked;
    }
    EXPECT_GE(checked, 2) << to_string(dt);
  }
}

}  // namespace
}  // namespace infermark
