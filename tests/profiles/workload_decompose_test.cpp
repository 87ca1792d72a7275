// Shipped models: parameter counts and KV bytes against the authors' figures, every model decomposes
// with positive work in both phases, work scales as the model says, bad requests name the choices.
#include <gtest/gtest.h>

#include <cmath>

#include "kernels/gemm/gemm.hpp"
#include "profiles/model/workload.hpp"

namespace infermark {
namespace {

dtype_choice bf16() { return {}; }

TEST(Workload, ParameterCountsMatchQuotedFigures) {
  ASSERT_EQ(known_models().size(), 7u);
  for (const auto& m : known_models()) {
    const param_counts p = count_params(m);
    // Totals within 1.5% (biases, sinks and the MTP module are not modelled); "active" per the authors'
    // convention within 4% (they round to one decimal: 37B, 3.3B, 5.1B ...).
    EXPECT_NEAR(p.total / m.quoted_total_params, 1.0, 0.015) << m.slug << " total " << p.total;
    const bool with_embedding = m.active_convention.rfind("including", 0) == 0;
    const double active = p.active + (with_embedding ? p.embedding : 0);
    EXPECT_NEAR(active / m.quoted_active_params, 1.0, 0.04) << m.slug << " active " << active;
  }
  // DeepSeek-V3: 671B total, 37B activated (arXiv 2412.19437); computed exactly from config.json.
  const param_counts v3 = count_params(find_model("deepseek-v3"));
  EXPECT_NEAR(v3.total / 1e9, 671.0, 1.0);
  EXPECT_NEAR(v3.active / 1e9, 37.0, 0.6);
}

TEST(Workload, KvBytesPerTokenMatchPublishedFigures) {
  // "Insights into DeepSeek-V3" (arXiv 2505.09343) table 1: MLA 70.272 KB per token in BF16 (61 layers x
  // 576 values x 2 bytes); Llama-2-70B GQA: 80 layers x 2 x 8 heads x 128 x 2 bytes = 327,680 bytes.
  EXPECT_DOUBLE_EQ(kv_bytes_per_token(find_model("deepseek-v3"), 2), 70272.0);
  EXPECT_DOUBLE_EQ(kv_bytes_per_token(find_model("llama-2-70b"), 2), 327680.0);
}

TEST(Workload, EveryModelDecomposesWithPositiveWork) {
  for (const auto& m : known_models()) {
    for (phase ph : {phase::decode, phase::prefill}) {
      workload_request r{m.slug, ph, 4, 512, {}};
      const workload_plan p = decompose(r, bf16());
      EXPECT_EQ(p.layers(), m.layers) << m.slug;
      EXPECT_GT(p.flops(), 0) << m.slug;
      EXPECT_GT(p.bytes(), 0) << m.slug;
      for (const auto& g : p.groups)
        for (const auto& o : g.ops) {
          EXPECT_GE(o.flops, 0) << m.slug << " " << o.name;
          EXPECT_GT(o.bytes + o.link_bytes, 0) << m.slug << " " << o.name;
        }
      EXPECT_NEAR(p.tokens_per_step, ph == phase::decode ? 4 : 4 * 512, 0) << m.slug;
    }
  }
}

TEST(Workload, LayerKindsAsTheModelHasThem) {
  const auto v3 = decompose({"deepseek-v3", phase::decode, 8, 1024, {}}, bf16());
  ASSERT_EQ(v3.groups.size(), 3u);  // 3 dense MLA layers, 58 MoE MLA layers, head
  EXPECT_EQ(v3.groups[0].kind, "mla+dense");
  EXPECT_EQ(v3.groups[0].count, 3);
  EXPECT_EQ(v3.groups[1].kind, "mla+moe");
  EXPECT_EQ(v3.groups[1].count, 58);
  const auto oss = decompose({"gpt-oss-120b", phase::decode, 8, 1024, {}}, bf16());
  ASSERT_EQ(oss.groups.size(), 3u);  // 18 full + 18 sliding-window layers, head
  EXPECT_EQ(oss.groups[0].kind, "gqa+moe");
  EXPECT_EQ(oss.groups[1].kind, "gqa-sliding+moe");
  EXPECT_EQ(oss.groups[0].count, 18);
  EXPECT_EQ(oss.groups[1].count, 18);
  // The sliding layer's attention reads only the 128-token window.
  auto attn = [](const layer_group& g) {
    for (const auto& o : g.ops)
      if (o.name == "attn.core") return o;
    throw std::logic_error("no attention op");
  };
  EXPECT_LT(attn(oss.groups[1]).bytes * 4, attn(oss.groups[0]).bytes);
}

TEST(Workload, DenseLlamaWeightsDominateDecodeBytes) {
  // Batch 1 decode reads every weight once: bytes per step ~ parameters x 2 (bf16), plus the KV cache.
  const auto m = find_model("llama-2-70b");
  const auto p = decompose({"llama-2-70b", phase::decode, 1, 1, {}}, bf16());
  const double weights = (count_params(m).active) * 2;
  EXPECT_NEAR(p.bytes() / weights, 1.0, 0.02);
  // FLOPs: 2 per weight per token.
  EXPECT_NEAR(p.flops() / (2 * count_params(m).active), 1.0, 0.02);
}

TEST(Workload, ExpertsHitFollowUniformRouting) {
  // DeepSeek-V3, 128 tokens, top-8 of 256: 256 (1 - (1 - 8/256)^128) = 251.6 experts touched.
  EXPECT_NEAR(expected_experts_hit(256, 8, 256, 128), 256 * (1 - std::pow(1 - 8.0 / 256, 128)), 1e-9);
  EXPECT_NEAR(expected_experts_hit(256, 8, 256, 1), 8.0, 1e-9);
  const auto one = decompose({"deepseek-v3", phase::decode, 1, 64, {}}, bf16());
  const auto many = decompose({"deepseek-v3", phase::decode, 128, 64, {}}, bf16());
  EXPECT_NEAR(one.expected_experts_hit, 8.0, 1e-9);
  EXPECT_GT(many.expected_experts_hit, 250.0);
  // Expert weight bytes scale with experts hit, not with tokens.
  auto experts_bytes = [](const workload_plan& p) {
    for (const auto& o : p.groups[1].ops)
      if (o.name == "moe.experts.down") return o.bytes;
    return 0.0;
  };
  const double per_expert = 7168.0 * 2048 * 2;  // down weights, bf16
  EXPECT_NEAR(experts_bytes(one) / per_expert, 8.0, 0.1);
  EXPECT_NEAR(experts_bytes(many) / per_expert, std::round(many.expected_experts_hit), 1.5);  // + the activation rows
}

TEST(Workload, ExpertParallelShardsTheExperts) {
  // EP 8 with attention DP 8: each chip holds 32 of 256 experts and sees 1/8 of the routed rows.
  const auto ep = decompose({"deepseek-v3", phase::decode, 128, 64, {1, 8, 8}}, bf16());
  EXPECT_EQ(ep.chips, 8);
  EXPECT_NEAR(ep.routed_rows_per_chip, 128.0 * 8 / 8, 1e-9);
  EXPECT_LE(ep.expected_experts_hit, 32.0);
  bool dispatch = false;
  for (const auto& o : ep.groups[1].ops) dispatch |= o.name == "comm.ep_dispatch" && o.link_bytes > 0;
  EXPECT_TRUE(dispatch);
  const auto single = decompose({"deepseek-v3", phase::decode, 128, 64, {}}, bf16());
  EXPECT_LT(ep.weight_bytes_per_chip * 6, single.weight_bytes_per_chip);
}

TEST(Workload, FormatsChangeWeightBytes) {
  dtype_choice fp8;
  fp8.gemm_peak = "fp8";
  fp8.gemm_dt = dtype::fp8;
  const auto a = decompose({"deepseek-v3", phase::decode, 1, 64, {}}, bf16());
  const auto b = decompose({"deepseek-v3", phase::decode, 1, 64, {}}, fp8);
  EXPECT_LT(b.weight_bytes_per_chip, 0.6 * a.weight_bytes_per_chip);
  EXPECT_LT(b.bytes(), 0.6 * a.bytes());
  EXPECT_NEAR(b.flops(), a.flops(), 1e-6 * a.flops());
}

TEST(Workload, BadRequestsNameTheChoices) {
  auto msg = [](const workload_request& r) {
    try {
      validate(r);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  {
    const std::string m = msg({"gpt-5", phase::decode, 1, 1, {}});
    EXPECT_NE(m.find("unknown workload 'gpt-5'"), std::string::npos) << m;
    EXPECT_NE(m.find("deepseek-v3"), std::string::npos) << m;
  }
  EXPECT_NE(msg({"deepseek-v3", phase::decode, 0, 1, {}}).find("batch 0"), std::string::npos);
  EXPECT_NE(msg({"deepseek-v3", phase::decode, 1, 0, {}}).find("context 0"), std::string::npos);
  const std::string tp = msg({"deepseek-v3", phase::decode, 8, 1, {3, 1, 1}});
  EXPECT_NE(tp.find("tp 3 does not divide the 128 query heads"), std::string::npos) << tp;
  EXPECT_NE(tp.find("1, 2, 4, 8, 16, 32, 64, 128"), std::string::npos) << tp;
  EXPECT_NE(msg({"llama-2-70b", phase::decode, 8, 1, {1, 8, 8}}).find("dense model"), std::string::npos);
  EXPECT_NE(msg({"deepseek-v3", phase::decode, 8, 1, {2, 8, 1}}).find("must be 1 or"), std::string::npos);
  EXPECT_NE(msg({"deepseek-v3", phase::decode, 6, 1, {1, 1, 4}}).find("attn-dp 4 does not divide batch 6"), std::string::npos);
  EXPECT_THROW(parse_phase("train"), std::invalid_argument);
  EXPECT_EQ(msg({"deepseek-v3", phase::prefill, 8, 4096, {8, 8, 1}}), "no error");
}

}  // namespace
}  // namespace infermark
