// MoE routing pieces: the scoring rules on hand-computed examples, tie-breaking, DeepSeek's group-limited
// selection, synthetic routing distributions, the work model and bad input.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/moe/moe.hpp"

namespace infermark {
namespace {

struct scored {
  std::vector<std::int32_t> ids;
  std::vector<float> w;
};

scored score(const moe_desc& d, const std::vector<float>& logits, const std::vector<float>& bias = {}) {
  scored s{std::vector<std::int32_t>(static_cast<std::size_t>(d.top_k), -7),
           std::vector<float>(static_cast<std::size_t>(d.top_k), -7.0f)};
  std::vector<float> work(static_cast<std::size_t>(moe_score_work(d)));
  moe_score(d, logits.data(), bias.empty() ? nullptr : bias.data(), work.data(), s.ids.data(), s.w.data());
  return s;
}

moe_desc small(moe_scoring rule, std::int64_t experts, std::int64_t k) {
  moe_desc d;
  d.tokens = 1, d.experts = experts, d.top_k = k, d.hidden = 8, d.inter = 8, d.scoring = rule;
  return d;
}

TEST(MoeScore, SoftmaxRenormQwen3) {
  // softmax({2,0,1,0}) top-2 = experts 0 and 2, renormalised: e/(e+1), 1/(e+1).
  const auto s = score(small(moe_scoring::softmax_topk_renorm, 4, 2), {2, 0, 1, 0});
  EXPECT_EQ(s.ids, (std::vector<std::int32_t>{0, 2}));
  EXPECT_FLOAT_EQ(s.w[0], 0.7310585786f);
  EXPECT_FLOAT_EQ(s.w[1], 0.2689414214f);
}

TEST(MoeScore, SoftmaxGreedyNoRenormV2Lite) {
  // Probabilities over all four experts: 1/S and e^-1/S with S = 1 + e^-1 + 2 e^-2; they sum to < 1.
  const auto s = score(small(moe_scoring::softmax_topk, 4, 2), {2, 0, 1, 0});
  EXPECT_EQ(s.ids, (std::vector<std::int32_t>{0, 2}));
  EXPECT_FLOAT_EQ(s.w[0], 0.6102956854f);
  EXPECT_FLOAT_EQ(s.w[1], 0.2245152357f);
}

TEST(MoeScore, TopkThenSoftmaxMixtral) {
  // Top-3 logits {5, 5, 3}: the tie goes to the lower index; softmax over the three only.
  const auto s = score(small(moe_scoring::topk_softmax, 4, 3), {1, 5, 5, 3});
  EXPECT_EQ(s.ids, (std::vector<std::int32_t>{1, 2, 3}));
  EXPECT_FLOAT_EQ(s.w[0], 0.4683105308f);
  EXPECT_FLOAT_EQ(s.w[1], 0.4683105308f);
  EXPECT_FLOAT_EQ(s.w[2], 0.0633789383f);
}

TEST(MoeScore, TiesGoToTheLowerIndex) {
  for (auto rule : {moe_scoring::softmax_topk_renorm, moe_scoring::topk_softmax, moe_scoring::softmax_topk}) {
    const auto s = score(small(rule, 6, 4), {1, 1, 1, 1, 1, 1});
    EXPECT_EQ(s.ids, (std::vector<std::int32_t>{0, 1, 2, 3})) << to_string(rule);
  }
  // Equal best values at indices 4 and 1: 1 first; then 2 and 5 tie: 2 first.
  const auto s = score(small(moe_scoring::topk_softmax, 6, 4), {0, 3, 2, -1, 3, 2});
  EXPECT_EQ(s.ids, (std::vector<std::int32_t>{1, 4, 2, 5}));
}

TEST(MoeScore, SigmoidWeightsRenormalisedAndScaled) {
  moe_desc d = small(moe_scoring::sigmoid_group_topk, 4, 3);
  d.routed_scale = 2.5f;
  const auto s = score(d, {-1, 2, 1, -3}, {0, 0, 0, 0});
  EXPECT_EQ(s.ids, (std::vector<std::int32_t>{1, 2, 0}));
  EXPECT_FLOAT_EQ(s.w[0], 1.1707763271f);
  EXPECT_FLOAT_EQ(s.w[1], 0.9717403690f);
  EXPECT_FLOAT_EQ(s.w[2], 0.3574833039f);
}

TEST(MoeScore, DeepSeekGroupLimitedSelection) {
  // 8 experts in 4 groups of 2, keep 2 groups, top-3. All logits 0 (sigmoid 0.5), so the bias alone
  // orders the experts (dyadic values: float sums are exact). Biased scores:
  //   {0.625, 0.5 | 0.75, 0.375 | 0.75, 0.625 | 0.5, 0.5}; group sums {1.125, 1.125, 1.375, 1.0}.
  // Group 2 wins; groups 0 and 1 tie, group 0 (lower index) is kept. Expert 2 (0.75) is therefore not
  // eligible although it has the best biased score. Among experts {0, 1, 4, 5}: 4, then 0 and 5 tie
  // at 0.625 -> 0 then 5. Weights: unbiased scores all 0.5 -> 1/3 each, times 2.5.
  moe_desc d = small(moe_scoring::sigmoid_group_topk, 8, 3);
  d.n_group = 4, d.topk_group = 2, d.routed_scale = 2.5f;
  const auto s = score(d, std::vector<float>(8, 0.0f), {0.125f, 0, 0.25f, -0.125f, 0.25f, 0.125f, 0, 0});
  EXPECT_EQ(s.ids, (std::vector<std::int32_t>{4, 0, 5}));
  for (float w : s.w) EXPECT_FLOAT_EQ(w, 2.5f / 3.0f);
  // With one group kept only group 2's experts are eligible, and top-2 inside it.
  d.topk_group = 1, d.top_k = 2;
  const auto s1 = score(d, std::vector<float>(8, 0.0f), {0.125f, 0, 0.25f, -0.125f, 0.25f, 0.125f, 0, 0});
  EXPECT_EQ(s1.ids, (std::vector<std::int32_t>{4, 5}));
}

TEST(MoeScore, NanLogitsAreNeverSelected) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const auto s = score(small(moe_scoring::softmax_topk_renorm, 4, 2), {nan, 1, nan, 0});
  EXPECT_EQ(s.ids, (std::vector<std::int32_t>{1, 3}));
}

moe_desc routing_desc(std::int64_t tokens, std::int64_t experts, std::int64_t k) {
  moe_desc d = small(moe_scoring::softmax_topk_renorm, experts, k);
  d.tokens = tokens;
  return d;
}

std::vector<std::int64_t> route_counts(const moe_desc& d, moe_route r, std::uint64_t seed,
                                       std::vector<std::int32_t>* ids_out = nullptr) {
  std::vector<std::int32_t> ids(static_cast<std::size_t>(d.tokens * d.top_k));
  std::vector<float> w(ids.size());
  moe_synthetic_routing(d, r, seed, ids.data(), w.data());
  std::vector<std::int64_t> counts(static_cast<std::size_t>(d.experts));
  for (std::int64_t t = 0; t < d.tokens; ++t) {
    std::set<std::int32_t> distinct;
    float sum = 0;
    for (std::int64_t j = 0; j < d.top_k; ++j) {
      const auto e = ids[static_cast<std::size_t>(t * d.top_k + j)];
      EXPECT_GE(e, 0);
      EXPECT_LT(e, d.experts);
      distinct.insert(e);
      ++counts[static_cast<std::size_t>(e)];
      sum += w[static_cast<std::size_t>(t * d.top_k + j)];
    }
    EXPECT_EQ(static_cast<std::int64_t>(distinct.size()), d.top_k) << "token " << t << " repeats an expert";
    EXPECT_NEAR(sum, 1.0f, 1e-5f);
  }
  if (ids_out) *ids_out = ids;
  return counts;
}

TEST(MoeRouting, BalancedGivesEveryExpertTheSameLoad) {
  const auto c = route_counts(routing_desc(64, 16, 4), moe_route::balanced, 1);
  for (auto n : c) EXPECT_EQ(n, 16);
}

TEST(MoeRouting, UniformIsSeededAndSpread) {
  const moe_desc d = routing_desc(512, 16, 4);
  std::vector<std::int32_t> a, b, c;
  route_counts(d, moe_route::uniform, 7, &a);
  const auto counts = route_counts(d, moe_route::uniform, 7, &b);
  route_counts(d, moe_route::uniform, 8, &c);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  for (auto n : counts) {  // mean 128; a fair draw stays well inside +-50%
    EXPECT_GT(n, 64);
    EXPECT_LT(n, 192);
  }
}

TEST(MoeRouting, ZipfIsSkewedTowardsExpertZero) {
  const auto c = route_counts(routing_desc(1024, 64, 2), moe_route::zipf, 3);
  EXPECT_EQ(std::max_element(c.begin(), c.end()) - c.begin(), 0);
  EXPECT_GT(c[0], 4 * c[40]);
  EXPECT_GT(c[0], 1024 * 2 / 64 * 3);  // far above the uniform share
}

TEST(MoeRouting, ModelIsNotASyntheticRoute) {
  const moe_desc d = routing_desc(2, 4, 2);
  std::vector<std::int32_t> ids(4);
  std::vector<float> w(4);
  EXPECT_THROW(moe_synthetic_routing(d, moe_route::model, 1, ids.data(), w.data()), std::invalid_argument);
}

TEST(MoeWork, CountsOnlyRoutedTokensAndHitExperts) {
  moe_desc d;
  d.tokens = 4, d.experts = 8, d.top_k = 2, d.hidden = 16, d.inter = 8, d.shared_inter = 4;
  d.local_first = 2, d.local_count = 4;  // experts 2..5 are local
  // 8 pairs: experts 0 (2), 2 (3), 5 (1), 7 (2); local: 2 and 5 hit, 4 rows.
  const std::vector<std::int32_t> counts{2, 0, 3, 0, 0, 1, 0, 2};
  const work_model w = moe_work(d, counts);
  auto phase = [&](const work_model& m, const std::string& name) {
    for (const auto& p : m.phases)
      if (p.name == name) return p;
    ADD_FAILURE() << "no phase " << name;
    return work_phase{};
  };
  EXPECT_DOUBLE_EQ(phase(w, "router").flops, 2.0 * 4 * 8 * 16);
  EXPECT_DOUBLE_EQ(phase(w, "experts.gate_up").flops, 2.0 * 4 * 2 * 8 * 16);
  EXPECT_DOUBLE_EQ(phase(w, "experts.gate_up").bytes, 4 * 16 * 4.0 + 2 * 2 * 8 * 16 * 4.0 + 4 * 8 * 4.0);
  EXPECT_DOUBLE_EQ(phase(w, "experts.down").flops, 2.0 * 4 * 16 * 8);
  EXPECT_DOUBLE_EQ(phase(w, "experts.down").bytes, 4 * 8 * 4.0 + 2 * 16 * 8 * 4.0 + 4 * 16 * 4.0);
  EXPECT_DOUBLE_EQ(phase(w, "shared").flops, 2.0 * 4 * 3 * 4 * 16);
  const work_model full = moe_work(d, counts, true);  // 8 rows over 4 hit experts
  EXPECT_DOUBLE_EQ(phase(full, "experts.gate_up").flops, 2.0 * 8 * 2 * 8 * 16);
  EXPECT_DOUBLE_EQ(phase(full, "experts.gate_up").bytes, 8 * 16 * 4.0 + 4 * 2 * 8 * 16 * 4.0 + 8 * 8 * 4.0);
  // fp8: one byte per weight plus 128x128 block scales (1x1 blocks here).
  d.dt = dtype::fp8;
  EXPECT_DOUBLE_EQ(phase(moe_work(d, counts), "experts.down").bytes,
                   4 * (8 * 1.0 + 4.0) + 2 * (16 * 8 * 1.0 + 4.0) + 4 * 16 * 4.0);
  EXPECT_THROW(moe_work(d, std::vector<std::int32_t>(3)), std::invalid_argument);
}

void expect_invalid(const moe_desc& d, const std::vector<std::string>& needles) {
  try {
    moe_validate(d);
    ADD_FAILURE() << "accepted";
  } catch (const std::invalid_argument& e) {
    for (const auto& n : needles) EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << e.what();
  }
}

TEST(MoeBadInput, NamesTheValueAndTheChoices) {
  moe_desc d = small(moe_scoring::softmax_topk_renorm, 8, 9);
  expect_invalid(d, {"top_k=9", "experts=8", "1..8"});
  d.top_k = 2, d.hidden = 0;
  expect_invalid(d, {"hidden=0"});
  d.hidden = 8;
  d.scoring = moe_scoring::sigmoid_group_topk, d.n_group = 3, d.topk_group = 1;
  expect_invalid(d, {"n_group=3", "experts=8", "divisor"});
  d.n_group = 4, d.topk_group = 5;
  expect_invalid(d, {"topk_group=5", "1..4"});
  d.topk_group = 1, d.top_k = 3;  // one kept group of 2 experts cannot give 3
  expect_invalid(d, {"top_k=3", "2 experts"});
  d = small(moe_scoring::softmax_topk_renorm, 8, 2);
  d.local_first = 6, d.local_count = 4;
  expect_invalid(d, {"from 6", "[0, 8)"});
  d = small(moe_scoring::softmax_topk, 8, 2);
  d.n_group = 2;
  expect_invalid(d, {"n_group=2", "sigmoid_group_topk"});
  try {
    parse_moe_scoring("softmax");
    ADD_FAILURE();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("sigmoid_group_topk"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_moe_route("skewed"), std::invalid_argument);
  EXPECT_THROW(parse_moe_activation("gelu"), std::invalid_argument);
  EXPECT_EQ(parse_moe_route("zipf"), moe_route::zipf);
  EXPECT_THROW(moe_find("grouped:nope"), std::invalid_argument);
}

// Selection against a brute-force oracle (sort of (value desc, index asc) pairs, NaN dropped) on random
// logits with many ties and some NaN, for every k up to the expert count (and beyond: -1 padding); and
// DeepSeek's rule against the same oracle restricted to the kept groups.
TEST(MoeScore, SelectionMatchesASortedOracle) {
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> level(-3, 3), coin(0, 15);
  auto oracle = [](const std::vector<float>& v, std::int64_t k, auto allowed) {
    std::vector<std::int32_t> idx;
    for (std::size_t i = 0; i < v.size(); ++i)
      if (!std::isnan(v[i]) && allowed(static_cast<std::int64_t>(i))) idx.push_back(static_cast<std::int32_t>(i));
    std::stable_sort(idx.begin(), idx.end(), [&](std::int32_t a, std::int32_t b) { return v[a] > v[b]; });
    idx.resize(static_cast<std::size_t>(k), -1);
    return idx;
  };
  for (int trial = 0; trial < 200; ++trial) {
    const std::int64_t n = 16, k = 1 + trial % 18;
    std::vector<float> logits(static_cast<std::size_t>(n));
    for (auto& v : logits) v = coin(rng) == 0 ? std::nanf("") : static_cast<float>(level(rng));
    if (k <= n) {
      const scored got = score(small(moe_scoring::topk_softmax, n, k), logits);
      EXPECT_EQ(got.ids, oracle(logits, k, [](std::int64_t) { return true; })) << "trial " << trial;
    }
    // DeepSeek: 4 groups of 4, best 2 groups by the sum of their top-2 biased scores; zero bias, so the
    // biased score is sigmoid(logit), monotone in the logit.
    moe_desc g = small(moe_scoring::sigmoid_group_topk, n, std::min<std::int64_t>(k, 8));
    g.n_group = 4, g.topk_group = 2, g.routed_scale = 1.0f;
    const std::vector<float> zero(static_cast<std::size_t>(n), 0.0f);
    std::vector<float> sig(logits.size()), gsum(4);
    for (std::size_t i = 0; i < sig.size(); ++i) sig[i] = 1.0f / (1.0f + std::exp(-logits[i]));
    for (int q = 0; q < 4; ++q) {
      std::vector<float> m(sig.begin() + 4 * q, sig.begin() + 4 * q + 4);
      std::sort(m.begin(), m.end(), [](float a, float b) { return a > b || (!std::isnan(a) && std::isnan(b)); });
      gsum[static_cast<std::size_t>(q)] = m[0] + m[1];
    }
    if (std::any_of(gsum.begin(), gsum.end(), [](float v) { return std::isnan(v); })) continue;  // NaN groups: hand tests
    const std::vector<std::int32_t> top_groups = oracle(gsum, 2, [](std::int64_t) { return true; });
    const scored got = score(g, logits, zero);
    EXPECT_EQ(got.ids, oracle(sig, g.top_k, [&](std::int64_t i) {
                return i / 4 == top_groups[0] || i / 4 == top_groups[1];
              })) << "trial " << trial;
  }
}

}  // namespace
}  // namespace infermark
