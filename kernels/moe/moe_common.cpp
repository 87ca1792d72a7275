// MoE pieces shared by every implementation: names, validation, the scoring rules, synthetic routing,
// activation quantization, the work model and the implementation list helpers.
#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "kernels/moe/moe.hpp"
#include "kernels/moe/moe_internal.hpp"

namespace infermark {
namespace {

constexpr moe_scoring kScorings[] = {moe_scoring::softmax_topk_renorm, moe_scoring::topk_softmax,
                                     moe_scoring::sigmoid_group_topk, moe_scoring::softmax_topk};
constexpr moe_activation kActs[] = {moe_activation::swiglu, moe_activation::swiglu_oai};
constexpr moe_route kRoutes[] = {moe_route::model, moe_route::uniform, moe_route::balanced, moe_route::zipf};

template <class E, std::size_t N>
E parse_enum(std::string_view what, std::string_view name, const E (&all)[N]) {
  std::string choices;
  for (E v : all) {
    if (to_string(v) == name) return v;
    choices += (choices.empty() ? "" : ", ") + std::string(to_string(v));
  }
  throw std::invalid_argument("unknown " + std::string(what) + " '" + std::string(name) +
                              "'; valid choices: " + choices);
}

std::string num(std::int64_t v) { return std::to_string(v); }

// (va, ia) ranks before (vb, ib): the larger value first, equal values by the lower index. NaN never
// ranks before anything, and nothing ranks before NaN through `>`: NaN entries are never selected.
inline bool before(float va, std::int64_t ia, float vb, std::int64_t ib) {
  return va > vb || (va == vb && ia < ib);
}

// The k best entries offered so far, best first (ties: lower index; NaN never enters), kept sorted by
// insertion: one pass over the candidates, O(n) when few of them displace the k-th (selection runs per
// token inside the timed router; the k passes over all n entries this replaced cost 7.8 us per
// DeepSeek-V3 token, as much as the router GEMM on an AMX host).
struct best_k {
  const float* v;
  std::int32_t* out;
  std::int64_t k, count = 0;
  void offer(std::int64_t i) {
    const float x = v[i];
    if (std::isnan(x) || k == 0) return;
    if (count == k && !before(x, i, v[out[k - 1]], out[k - 1])) return;
    std::int64_t p = count < k ? count++ : k - 1;
    for (; p > 0 && before(x, i, v[out[p - 1]], out[p - 1]); --p) out[p] = out[p - 1];
    out[p] = static_cast<std::int32_t>(i);
  }
  void finish() {  // -1 where fewer than k entries qualified
    for (std::int64_t r = count; r < k; ++r) out[r] = -1;
  }
};

// Writes the k best entries of v[0, n) as indices, best first (ties: lower index); -1 when fewer than k
// entries are not NaN.
void top_k(const float* v, std::int64_t n, std::int64_t k, std::int32_t* out) {
  best_k b{v, out, k};
  for (std::int64_t i = 0; i < n; ++i) b.offer(i);
  b.finish();
}

inline float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

// splitmix64: a tiny, portable generator (the same streams with every compiler and library).
struct splitmix {
  std::uint64_t s;
  std::uint64_t next() {
    std::uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1p-53; }  // [0, 1)
  std::int64_t below(std::int64_t n) { return static_cast<std::int64_t>(uniform() * static_cast<double>(n)); }
};

}  // namespace

std::string_view to_string(moe_scoring s) {
  switch (s) {
    case moe_scoring::softmax_topk_renorm: return "softmax_topk_renorm";
    case moe_scoring::topk_softmax: return "topk_softmax";
    case moe_scoring::sigmoid_group_topk: return "sigmoid_group_topk";
    case moe_scoring::softmax_topk: return "softmax_topk";
  }
  return "unknown";
}
std::string_view to_string(moe_activation a) {
  return a == moe_activation::swiglu ? "swiglu" : a == moe_activation::swiglu_oai ? "swiglu_oai" : "unknown";
}
std::string_view to_string(moe_route r) {
  switch (r) {
    case moe_route::model: return "model";
    case moe_route::uniform: return "uniform";
    case moe_route::balanced: return "balanced";
    case moe_route::zipf: return "zipf";
  }
  return "unknown";
}
moe_scoring parse_moe_scoring(std::string_view name) { return parse_enum("MoE scoring rule", name, kScorings); }
moe_activation parse_moe_activation(std::string_view name) { return parse_enum("MoE activation", name, kActs); }
moe_route parse_moe_route(std::string_view name) { return parse_enum("MoE routing", name, kRoutes); }

void moe_validate(const moe_desc& d) {
  auto positive = [](const char* what, std::int64_t v) {
    if (v < 1) throw std::invalid_argument(std::string("moe: ") + what + "=" + num(v) + " must be >= 1");
  };
  positive("tokens", d.tokens);
  positive("experts", d.experts);
  positive("top_k", d.top_k);
  positive("hidden", d.hidden);
  positive("inter", d.inter);
  positive("n_group", d.n_group);
  positive("topk_group", d.topk_group);
  if (d.shared_inter < 0)
    throw std::invalid_argument("moe: shared_inter=" + num(d.shared_inter) + " must be >= 0 (0: no shared expert)");
  if (d.top_k > d.experts)
    throw std::invalid_argument("moe: top_k=" + num(d.top_k) + " exceeds experts=" + num(d.experts) +
                                "; valid: 1.." + num(d.experts));
  if (d.experts > std::numeric_limits<std::int32_t>::max() || d.tokens * d.top_k > std::numeric_limits<std::int32_t>::max())
    throw std::invalid_argument("moe: experts=" + num(d.experts) + " x tokens=" + num(d.tokens) +
                                " exceed the 32-bit expert ids / positions");
  if (d.local_count < 0 || d.local_first < 0 || d.local_first + d.local() > d.experts)
    throw std::invalid_argument("moe: shard of " + num(d.local_count) + " experts from " + num(d.local_first) +
                                " is outside experts [0, " + num(d.experts) + ")");
  if (d.scoring == moe_scoring::sigmoid_group_topk) {
    if (d.experts % d.n_group != 0)
      throw std::invalid_argument("moe: n_group=" + num(d.n_group) + " does not divide experts=" + num(d.experts) +
                                  "; valid: a divisor of " + num(d.experts));
    if (d.topk_group > d.n_group)
      throw std::invalid_argument("moe: topk_group=" + num(d.topk_group) + " exceeds n_group=" + num(d.n_group) +
                                  "; valid: 1.." + num(d.n_group));
    if (d.topk_group * (d.experts / d.n_group) < d.top_k)
      throw std::invalid_argument("moe: top_k=" + num(d.top_k) + " exceeds the " +
                                  num(d.topk_group * (d.experts / d.n_group)) + " experts in the " +
                                  num(d.topk_group) + " kept groups");
  } else if (d.n_group != 1 || d.topk_group != 1) {
    throw std::invalid_argument("moe: n_group=" + num(d.n_group) + "/topk_group=" + num(d.topk_group) +
                                " apply to sigmoid_group_topk only; scoring " + std::string(to_string(d.scoring)) +
                                " takes n_group=1, topk_group=1");
  }
  if (!(d.routed_scale > 0.0f) || !std::isfinite(d.routed_scale))
    throw std::invalid_argument("moe: routed_scale=" + std::to_string(d.routed_scale) + " must be finite and > 0");
}

std::int64_t moe_score_work(const moe_desc& d) { return d.experts + d.n_group; }

void moe_score(const moe_desc& d, const float* logits, const float* bias, float* work, std::int32_t* ids,
               float* weights) {
  const std::int64_t n = d.experts, k = d.top_k;
  switch (d.scoring) {
    case moe_scoring::softmax_topk_renorm:
    case moe_scoring::softmax_topk: {
      // Softmax is monotone: selecting on logits selects on probabilities, with equal logits (equal
      // probabilities) resolved to the lower index.
      top_k(logits, n, k, ids);
      float mx = -std::numeric_limits<float>::infinity();
      for (std::int64_t i = 0; i < n; ++i) mx = std::max(mx, logits[i]);
      float sum = 0;
      for (std::int64_t i = 0; i < n; ++i) sum += std::exp(logits[i] - mx);
      float sel = 0;
      for (std::int64_t j = 0; j < k; ++j) {
        weights[j] = ids[j] >= 0 ? std::exp(logits[ids[j]] - mx) / sum : 0.0f;
        sel += weights[j];
      }
      if (d.scoring == moe_scoring::softmax_topk_renorm)
        for (std::int64_t j = 0; j < k; ++j) weights[j] /= sel;
      return;
    }
    case moe_scoring::topk_softmax: {
      top_k(logits, n, k, ids);
      const float mx = ids[0] >= 0 ? logits[ids[0]] : 0.0f;  // the best selected logit
      float sum = 0;
      for (std::int64_t j = 0; j < k; ++j) {
        weights[j] = ids[j] >= 0 ? std::exp(logits[ids[j]] - mx) : 0.0f;
        sum += weights[j];
      }
      for (std::int64_t j = 0; j < k; ++j) weights[j] /= sum;
      return;
    }
    case moe_scoring::sigmoid_group_topk: {
      // Selection uses the biased scores (work[0, n)); each group is scored by the sum of its top-2
      // biased scores (work[n, n + n_group)); only the best topk_group groups stay eligible.
      const std::int64_t gsize = n / d.n_group;
      float* biased = work;
      float* group = work + n;
      for (std::int64_t i = 0; i < n; ++i) biased[i] = sigmoid(logits[i]) + bias[i];
      for (std::int64_t g = 0; g < d.n_group; ++g) {
        float b1 = -std::numeric_limits<float>::infinity(), b2 = b1;
        for (std::int64_t i = g * gsize; i < (g + 1) * gsize; ++i) {
          const float b = biased[i];
          if (b > b1) b2 = b1, b1 = b;
          else if (b > b2) b2 = b;
        }
        group[g] = gsize >= 2 ? b1 + b2 : b1;
      }
      // The topk_group-th best group (score, index): a group is kept when it ranks at or before it.
      std::int64_t cut = -1;
      for (std::int64_t r = 0; r < d.topk_group; ++r) {
        std::int64_t best = -1;
        for (std::int64_t g = 0; g < d.n_group; ++g) {
          if (std::isnan(group[g]) || (cut >= 0 && !before(group[cut], cut, group[g], g))) continue;
          if (best < 0 || before(group[g], g, group[best], best)) best = g;
        }
        if (best < 0) break;
        cut = best;
      }
      // Candidates: the experts of the kept groups, in index order.
      best_k b{biased, ids, k};
      for (std::int64_t g = 0; g < d.n_group && cut >= 0; ++g)
        if (g == cut || before(group[g], g, group[cut], cut))
          for (std::int64_t i = g * gsize; i < (g + 1) * gsize; ++i) b.offer(i);
      b.finish();
      float sum = 0;
      for (std::int64_t j = 0; j < k; ++j) {
        weights[j] = ids[j] >= 0 ? sigmoid(logits[ids[j]]) : 0.0f;
        sum += weights[j];
      }
      for (std::int64_t j = 0; j < k; ++j) weights[j] = weights[j] / sum * d.routed_scale;
      return;
    }
  }
}

void moe_synthetic_routing(const moe_desc& d, moe_route route, std::uint64_t seed, std::int32_t* ids,
                           float* weights) {
  moe_validate(d);
  if (route == moe_route::model)
    throw std::invalid_argument("moe_synthetic_routing: route 'model' is the router's own choice; valid "
                                "synthetic routes: uniform, balanced, zipf");
  const std::int64_t E = d.experts, k = d.top_k;
  splitmix rng{seed * 0x2545f4914f6cdd1dull + static_cast<std::uint64_t>(route)};
  double harmonic = 0;
  if (route == moe_route::zipf)
    for (std::int64_t e = 0; e < E; ++e) harmonic += 1.0 / static_cast<double>(e + 1);
  for (std::int64_t t = 0; t < d.tokens; ++t) {
    std::int32_t* row = ids + t * k;
    auto taken = [&](std::int64_t e, std::int64_t upto) {
      for (std::int64_t j = 0; j < upto; ++j)
        if (row[j] == e) return true;
      return false;
    };
    for (std::int64_t j = 0; j < k; ++j) {
      std::int64_t e = 0;
      if (route == moe_route::balanced) {
        e = (t * k + j) % E;
      } else if (route == moe_route::uniform) {
        do e = rng.below(E); while (taken(e, j));
      } else {  // zipf without replacement: draw from the mass of the experts not yet taken
        double left = harmonic;
        for (std::int64_t r = 0; r < j; ++r) left -= 1.0 / static_cast<double>(row[r] + 1);
        double u = rng.uniform() * left;
        e = -1;
        for (std::int64_t c = 0; c < E; ++c) {
          if (taken(c, j)) continue;
          e = c;  // the last untaken expert absorbs rounding
          u -= 1.0 / static_cast<double>(c + 1);
          if (u < 0) break;
        }
      }
      row[j] = static_cast<std::int32_t>(e);
    }
    float sum = 0;
    for (std::int64_t j = 0; j < k; ++j) sum += (weights[t * k + j] = static_cast<float>(0.5 + rng.uniform()));
    const float scale = d.scoring == moe_scoring::sigmoid_group_topk ? d.routed_scale : 1.0f;
    for (std::int64_t j = 0; j < k; ++j) weights[t * k + j] = weights[t * k + j] / sum * scale;
  }
}

std::int64_t moe_row_scales(dtype dt, std::int64_t n) {
  if (dt == dtype::int8) return 1;
  if (dt == dtype::fp8) return (n + gemm_fp8_block - 1) / gemm_fp8_block;
  return 0;
}

dtype moe_router_dtype(const moe_desc& d) { return d.dt == dtype::fp32 ? dtype::fp32 : dtype::bf16; }

void moe_quantize_row(dtype dt, const float* x, std::int64_t n, void* q, float* scale) {
  switch (dt) {
    case dtype::fp32:
      std::copy(x, x + n, static_cast<float*>(q));
      return;
    case dtype::bf16: {
      auto* out = static_cast<bf16_t*>(q);
      for (std::int64_t i = 0; i < n; ++i) out[i] = f32_to_bf16(x[i]);
      return;
    }
    case dtype::int8: {
      float amax = 0;
      for (std::int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[i]));
      const float s = amax > 0 ? amax / 127.0f : 1.0f, inv = 1.0f / s;  // times the reciprocal, as serving
      auto* out = static_cast<std::int8_t*>(q);                           // code does (no division per value)
      for (std::int64_t i = 0; i < n; ++i)
        out[i] = static_cast<std::int8_t>(std::clamp(std::nearbyint(x[i] * inv), -127.0f, 127.0f));
      scale[0] = s;
      return;
    }
    case dtype::fp8: {
      auto* out = static_cast<fp8_t*>(q);
      for (std::int64_t b0 = 0, b = 0; b0 < n; b0 += gemm_fp8_block, ++b) {
        const std::int64_t b1 = std::min(n, b0 + gemm_fp8_block);
        float amax = 0;
        for (std::int64_t i = b0; i < b1; ++i) amax = std::max(amax, std::fabs(x[i]));
        const float s = amax > 0 ? amax / 448.0f : 1.0f, inv = 1.0f / s;
        for (std::int64_t i = b0; i < b1; ++i) out[i] = f32_to_fp8_e4m3(x[i] * inv);
        scale[b] = s;
      }
      return;
    }
  }
}

work_model moe_work(const moe_desc& d, std::span<const std::int32_t> counts, bool full_layer) {
  moe_validate(d);
  if (static_cast<std::int64_t>(counts.size()) != d.experts)
    throw std::invalid_argument("moe_work: counts has " + num(static_cast<std::int64_t>(counts.size())) +
                                " entries; expected experts=" + num(d.experts));
  const double t = static_cast<double>(d.tokens), E = static_cast<double>(d.experts),
               k = static_cast<double>(d.top_k), H = static_cast<double>(d.hidden),
               I = static_cast<double>(d.inter), SI = static_cast<double>(d.shared_inter);
  const double es = static_cast<double>(dtype_size(d.dt));
  const std::int64_t e0 = full_layer ? 0 : d.local_first, e1 = full_layer ? d.experts : d.local_first + d.local();
  double rows = 0, hit = 0;
  for (std::int64_t e = e0; e < e1; ++e) {
    rows += counts[static_cast<std::size_t>(e)];
    hit += counts[static_cast<std::size_t>(e)] > 0 ? 1 : 0;
  }
  // Activation rows in the expert format: elements plus their fp32 scales.
  auto act = [&](double r, std::int64_t n) {
    return r * (static_cast<double>(n) * es + 4.0 * static_cast<double>(moe_row_scales(d.dt, n)));
  };
  auto wbytes = [&](std::int64_t n, std::int64_t kk) {
    return static_cast<double>(n) * static_cast<double>(kk) * es + 4.0 * static_cast<double>(moe_detail::weight_scales(d.dt, n, kk));
  };
  const double bias = d.scoring == moe_scoring::sigmoid_group_topk ? E * 4 : 0;
  std::vector<work_phase> p;
  const double rs = static_cast<double>(dtype_size(moe_router_dtype(d)));  // router inputs' element size
  p.push_back({"router", 2 * t * E * H, t * H * rs + E * H * rs + bias + t * k * 8});
  // Dispatch: reads the routing (ids, weights), writes each token's slot positions and the routed
  // activation rows in the expert format.
  p.push_back({"dispatch", 0, t * k * 8 + t * k * 4 + act(rows, d.hidden)});
  p.push_back({"experts.gate_up", 2 * rows * 2 * I * H,
               act(rows, d.hidden) + hit * 2 * wbytes(d.inter, d.hidden) + rows * I * 4});
  p.push_back({"experts.down", 2 * rows * H * I, act(rows, d.inter) + hit * wbytes(d.hidden, d.inter) + rows * H * 4});
  p.push_back({"combine", 2 * rows * H + (SI > 0 ? t * H : 0),
               rows * H * 4 + (SI > 0 ? t * H * 4 : 0) + t * k * 8 + t * H * 4});
  if (d.shared_inter > 0)
    p.push_back({"shared", 2 * t * 3 * SI * H,
                 act(t, d.hidden) + 2 * wbytes(d.shared_inter, d.hidden) + wbytes(d.hidden, d.shared_inter) +
                     t * SI * 4 + act(t, d.shared_inter) + t * H * 4});
  return work_model{std::move(p)};
}

const moe_impl& moe_select(const moe_desc& d) {
  moe_validate(d);
  std::string why;
  for (const auto& impl : moe_impls()) {
    const auto refusal = impl.check(d);
    if (!refusal) return impl;
    why += "\n  " + impl.name + ": " + *refusal;
  }
  throw std::invalid_argument("moe: no implementation accepts " + std::string(to_string(d.dt)) + ":" + why);
}

const moe_impl& moe_find(std::string_view name) {
  std::string names;
  for (const auto& impl : moe_impls()) {
    if (impl.name == name) return impl;
    names += (names.empty() ? "" : ", ") + impl.name;
  }
  throw std::invalid_argument("moe: unknown implementation '" + std::string(name) + "'; valid choices: " + names);
}

void moe_run_sequential(const moe_impl& impl, const moe_desc& d, const moe_args& a, int nthr) {
  for (const auto& step : impl.steps)
    for (int ithr = 0; ithr < nthr; ++ithr) step.execute(d, a, ithr, nthr);
}

}  // namespace infermark
