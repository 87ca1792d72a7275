// MoE layer in the harness: descriptor
//   moe:t<tokens>e<experts>k<top-k>h<hidden>i<inter>[s<shared inter>][g<groups>gk<kept groups>]
//       [el<local experts>ef<first local>]:<dtype>[:score=..][:act=..][:route=..][:cache=cold][:steps=routing]
// Model shapes (workloads.md), t = tokens per step:
//   DeepSeek-V3      moe:t64e256k8h7168i2048s2048g8gk4el8:fp8:score=sigmoid_group_topk   (shard 8 of 256)
//   Qwen3-30B-A3B    moe:t64e128k8h2048i768:fp32
//   Qwen3-235B-A22B  moe:t64e128k8h4096i1536el32:bf16                                    (shard 32 of 128)
//   Mixtral-8x7B     moe:t64e8k2h4096i14336:bf16:score=topk_softmax
//   gpt-oss-120b     moe:t64e128k4h2880i2880el32:bf16:score=topk_softmax:act=swiglu_oai (shard 32 of 128)
//   DeepSeek-V2-Lite moe:t64e64k6h2048i1408s2816:fp32:score=softmax_topk                 (CI size)
// Data: dyadic values (router inputs exact in fp32, so the router's choice is checked exactly); expert
// weights are generated one expert at a time from (seed, expert) and packed, so a layer needs only its
// packed size in memory, and verification regenerates the few experts it needs.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>

#include "backends/memory.hpp"
#include "backends/topology.hpp"
#include "bench/op.hpp"
#include "kernels/moe/moe.hpp"

namespace infermark {
namespace {

// Reference work budget for verify() in multiply-adds (a few seconds of the naive fp64 reference).
constexpr double kVerifyMacs = 3e8;

moe_desc to_moe(const descriptor& d) {
  moe_desc m;
  m.tokens = d.at("t"), m.experts = d.at("e"), m.top_k = d.at("k"), m.hidden = d.at("h"), m.inter = d.at("i");
  m.shared_inter = d.at("s"), m.n_group = d.at("g"), m.topk_group = d.at("gk");
  m.local_count = d.at("el"), m.local_first = d.at("ef");
  m.scoring = parse_moe_scoring(d.option("score"));
  m.act = parse_moe_activation(d.option("act"));
  // DeepSeek-V3's routed_scaling_factor; the other models scale by 1.
  m.routed_scale = m.scoring == moe_scoring::sigmoid_group_topk ? 2.5f : 1.0f;
  m.dt = d.dt;
  try {
    moe_validate(m);
  } catch (const std::invalid_argument& e) {
    throw descriptor_error(fmt::format("{}: {}", to_string(d), e.what()));
  }
  return m;
}

struct rng {
  std::uint64_t s;
  std::uint64_t next() {
    std::uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  int small(int lo, int hi) { return lo + static_cast<int>(next() % static_cast<std::uint64_t>(hi - lo + 1)); }
};

std::int64_t wscales(dtype dt, std::int64_t n, std::int64_t k) {
  if (dt == dtype::int8) return n;
  if (dt == dtype::fp8) return ((n + 127) / 128) * ((k + 127) / 128);
  return 0;
}

struct expert_data {
  std::vector<unsigned char> gate, up, down;
  std::vector<float> gs, us, ds;
  moe_expert_weights view() const { return {gate.data(), up.data(), down.data(), gs.data(), us.data(), ds.data()}; }
};

void fill_matrix(dtype dt, std::int64_t n, std::int64_t k, rng& r, std::vector<unsigned char>& out, std::vector<float>& sc) {
  const std::int64_t count = n * k;
  out.resize(static_cast<std::size_t>(count) * dtype_size(dt));
  for (std::int64_t i = 0; i < count; ++i) {
    switch (dt) {
      case dtype::fp32: {
        const float v = static_cast<float>(r.small(-4, 4)) / 16.0f;
        std::memcpy(&out[static_cast<std::size_t>(i) * 4], &v, 4);
        break;
      }
      case dtype::bf16: {
        const bf16_t v = f32_to_bf16(static_cast<float>(r.small(-4, 4)) / 16.0f);
        std::memcpy(&out[static_cast<std::size_t>(i) * 2], &v, 2);
        break;
      }
      case dtype::int8: out[static_cast<std::size_t>(i)] = static_cast<unsigned char>(static_cast<std::int8_t>(r.small(-127, 127))); break;
      case dtype::fp8: out[static_cast<std::size_t>(i)] = f32_to_fp8_e4m3(static_cast<float>(r.small(-4, 4)) * 8.0f); break;
    }
  }
  sc.resize(static_cast<std::size_t>(wscales(dt, n, k)));
  for (auto& s : sc) s = static_cast<float>(r.small(64, 192)) / 65536.0f;
}

// Expert `e` (full-layer index; -1 = shared) of the layer seeded by `seed`, the same on every call.
expert_data make_expert(const moe_desc& m, std::uint64_t seed, std::int64_t e) {
  rng r{seed * 0x9e3779b97f4a7c15ull + static_cast<std::uint64_t>(e + 2) * 0x632be59bd9b4e019ull};
  const std::int64_t inter = e < 0 ? m.shared_inter : m.inter;
  expert_data x;
  fill_matrix(m.dt, inter, m.hidden, r, x.gate, x.gs);
  fill_matrix(m.dt, inter, m.hidden, r, x.up, x.us);
  fill_matrix(m.dt, m.hidden, inter, r, x.down, x.ds);
  return x;
}

int cold_sets(const descriptor& d, std::uint64_t packed_bytes) {
  if (d.option("cache") != "cold") return 1;
  const std::uint64_t llc = host_topology().llc_total_bytes();
  const std::uint64_t target = 4 * (llc != 0 ? llc : (64ull << 20));
  return static_cast<int>(std::max<std::uint64_t>(1, (target + packed_bytes - 1) / packed_bytes));
}

struct raw_buffer {  // uninitialized host memory (huge pages when large; pages touched only where written)
  host_ptr<unsigned char> p;
  unsigned char* data = nullptr;
  raw_buffer() = default;
  explicit raw_buffer(std::size_t n) : p(make_host_array<unsigned char>(n)), data(p.get()) {}
};

class moe_case final : public kernel_case {
 public:
  moe_case(const descriptor& desc, const moe_impl& impl, std::uint64_t seed)
      : text_(to_string(desc)), d_(to_moe(desc)), impl_(impl), seed_(seed),
        routing_only_(desc.option("steps") == "routing") {
    const moe_desc& m = d_;
    rng r{seed};
    x_.resize(static_cast<std::size_t>(m.tokens * m.hidden));
    for (auto& v : x_) v = static_cast<float>(r.small(-8, 8)) / 8.0f;
    router_.resize(static_cast<std::size_t>(m.experts * m.hidden));
    for (auto& v : router_) v = static_cast<float>(r.small(-3, 3)) / 8.0f;
    bias_.resize(static_cast<std::size_t>(m.experts));
    for (auto& v : bias_) v = static_cast<float>(r.small(-2, 2)) / 16.0f;
    const moe_route route = parse_moe_route(desc.option("route"));
    if (route != moe_route::model) {
      forced_ids_.resize(static_cast<std::size_t>(m.tokens * m.top_k));
      forced_w_.resize(forced_ids_.size());
      moe_synthetic_routing(m, route, seed, forced_ids_.data(), forced_w_.data());
    }
    const std::size_t pb = impl_.packed_bytes(m);
    packed_.resize(static_cast<std::size_t>(cold_sets(desc, pb)));
    for (auto& p : packed_) {
      p = raw_buffer(pb);
      impl_.pack_router(m, {router_.data(), bias_.data()}, p.data);
    }
    for (std::int64_t e = 0; e < m.local(); ++e) {
      const expert_data x = make_expert(m, seed_, m.local_first + e);
      for (auto& p : packed_) impl_.pack_expert(m, e, x.view(), p.data);
    }
    if (m.shared_inter > 0) {
      const expert_data x = make_expert(m, seed_, -1);
      for (auto& p : packed_) impl_.pack_expert(m, moe_shared_expert, x.view(), p.data);
    }
    scratch_ = raw_buffer(impl_.scratch_bytes(m, max_threads()));
    dst_.assign(static_cast<std::size_t>(m.tokens * m.hidden), std::nanf(""));
    ids_.assign(static_cast<std::size_t>(m.tokens * m.top_k), -1);
    w_.assign(ids_.size(), 0.0f);
    counts_.assign(static_cast<std::size_t>(m.experts), 0);
    // The routing outcome (and so the work) before any timed run: the first step is the router.
    const moe_args a = args(0);
    impl_.steps.front().execute(m, a, 0, 1);
    count_routes();
  }

  std::string impl_name() const override { return impl_.name; }
  work_model work() const override {
    work_model w = moe_work(d_, counts_);
    if (routing_only_)
      std::erase_if(w.phases, [](const work_phase& p) { return !is_routing(p.name); });
    return w;
  }

  void run(const backend& be) override {
    const moe_args a = args(set_);
    for (const auto& step : impl_.steps)
      if (!routing_only_ || is_routing(step.name))
        be.parallel([&](int ithr, int nthr) { step.execute(d_, a, ithr, nthr); });
    set_ = (set_ + 1) % packed_.size();
  }

  verdict verify(const backend& be) override {
    const moe_desc& m = d_;
    if (routing_only_) {  // the timed runs skip the experts: produce a complete output once
      const moe_args a = args(0);
      for (const auto& step : impl_.steps) be.parallel([&](int ithr, int nthr) { step.execute(m, a, ithr, nthr); });
    }
    verdict v;
    // The whole-layer work, for the record of what a shard stands for.
    const work_model full = moe_work(m, counts_, true);
    // Tokens to check: evenly spaced, within the reference budget.
    const double per_expert = 3.0 * static_cast<double>(m.inter * m.hidden);
    const double shared = 3.0 * static_cast<double>(m.shared_inter * m.hidden);
    std::vector<std::int64_t> picked;
    double spent = 0;
    const std::int64_t stride = std::max<std::int64_t>(1, m.tokens / 16);
    for (std::int64_t t = 0; t < m.tokens; t += stride) {
      double cost = shared + static_cast<double>(m.experts * m.hidden);
      for (std::int64_t j = 0; j < m.top_k; ++j) cost += local(eff_ids()[t * m.top_k + j]) ? per_expert : 0;
      if (!picked.empty() && spent + cost > kVerifyMacs) break;
      picked.push_back(t), spent += cost;
    }
    std::int64_t bad = 0;
    std::string first_bad;
    double peak = 0, worst = 0;
    for (std::int64_t t : picked) {
      // Router: the reference's choice for this token must match exactly (exact dyadic logits).
      moe_desc one = m;
      one.tokens = 1, one.shared_inter = 0, one.local_first = 0, one.local_count = 1;
      std::vector<std::int32_t> rid(static_cast<std::size_t>(m.top_k));
      std::vector<float> rw(rid.size());
      {
        const moe_impl& ref = moe_reference();
        raw_buffer packed(ref.packed_bytes(one)), scratch(ref.scratch_bytes(one, 1));
        ref.pack_router(one, {router_.data(), bias_.data()}, packed.data);
        moe_args a;
        a.src = &x_[static_cast<std::size_t>(t * m.hidden)], a.packed = packed.data, a.scratch = scratch.data;
        a.topk_ids = rid.data(), a.topk_weights = rw.data();
        ref.steps.front().execute(one, a, 0, 1);
      }
      for (std::int64_t j = 0; j < m.top_k; ++j) {
        const std::size_t at = static_cast<std::size_t>(t * m.top_k + j);
        if (rid[static_cast<std::size_t>(j)] != ids_[at] || rw[static_cast<std::size_t>(j)] != w_[at]) {
          if (bad++ == 0)
            first_bad = fmt::format("token {} slot {}: router chose expert {} weight {} but reference {} weight {}", t,
                                    j, ids_[at], w_[at], rid[static_cast<std::size_t>(j)], rw[static_cast<std::size_t>(j)]);
        }
      }
      // Output: the sum of each local expert's weighted contribution plus the shared expert, each
      // computed by the reference on a one-expert shard with the routing this run used.
      std::vector<double> want(static_cast<std::size_t>(m.hidden), 0.0);
      for (std::int64_t j = 0; j < m.top_k; ++j) {
        const std::int32_t e = eff_ids()[t * m.top_k + j];
        if (local(e)) add_reference(t, e, false, want);
      }
      if (m.shared_inter > 0) add_reference(t, eff_ids()[t * m.top_k], true, want);
      for (std::int64_t i = 0; i < m.hidden; ++i) {
        const double got = dst_[static_cast<std::size_t>(t * m.hidden + i)], w = want[static_cast<std::size_t>(i)];
        peak = std::max(peak, std::fabs(w));
        const double err = std::fabs(got - w);
        if (!(err <= worst)) worst = std::isnan(err) ? INFINITY : err;
        ++v.checked;
      }
    }
    const double tol = d_.dt == dtype::fp32 ? 2e-5 : d_.dt == dtype::bf16 ? 2e-2 : d_.dt == dtype::int8 ? 3e-2 : 1.5e-1;
    v.max_abs_err = worst;
    v.max_rel_err = peak > 0 ? worst / peak : worst;
    const bool close = v.max_rel_err <= tol;
    v.ok = bad == 0 && close;
    if (bad) v.detail = fmt::format("{} routing mismatches; first: {}", bad, first_bad);
    else if (!close) v.detail = fmt::format("max error {:.3g} of the peak |output| {:.3g} exceeds {:.3g}", worst, peak, tol);
    else
      v.detail = fmt::format("routing exact and output within {:.3g} of peak on {} of {} tokens; full layer: "
                             "{:.3g} GFLOP, {:.3g} GB", tol, picked.size(), m.tokens, full.flops() * 1e-9, full.bytes() * 1e-9);
    return v;
  }

 private:
  // Steps and phases outside the experts: what steps=routing times.
  static bool is_routing(std::string_view name) { return name == "router" || name == "dispatch" || name == "combine"; }
  const std::int32_t* eff_ids() const { return forced_ids_.empty() ? ids_.data() : forced_ids_.data(); }
  const float* eff_w() const { return forced_ids_.empty() ? w_.data() : forced_w_.data(); }
  bool local(std::int32_t e) const { return e >= d_.local_first && e < d_.local_first + d_.local(); }

  moe_args args(std::size_t set) {
    moe_args a;
    a.src = x_.data();
    a.packed = packed_[set].data;
    if (!forced_ids_.empty()) a.forced_ids = forced_ids_.data(), a.forced_weights = forced_w_.data();
    a.topk_ids = ids_.data(), a.topk_weights = w_.data(), a.expert_counts = counts_.data();
    a.dst = dst_.data(), a.scratch = scratch_.data;
    return a;
  }

  void count_routes() {
    std::fill(counts_.begin(), counts_.end(), 0);
    for (std::int64_t i = 0; i < d_.tokens * d_.top_k; ++i)
      if (eff_ids()[i] >= 0) ++counts_[static_cast<std::size_t>(eff_ids()[i])];
  }

  // want += the reference output of token t for routed expert e alone (its routing weight applied), or
  // of the shared expert alone (routed weights forced to zero on a shard holding expert e).
  void add_reference(std::int64_t t, std::int32_t e, bool shared_only, std::vector<double>& want) {
    const moe_desc& m = d_;
    moe_desc one = m;
    one.tokens = 1, one.local_first = e, one.local_count = 1;
    if (!shared_only) one.shared_inter = 0;
    const moe_impl& ref = moe_reference();
    raw_buffer packed(ref.packed_bytes(one)), scratch(ref.scratch_bytes(one, 1));
    ref.pack_router(one, {router_.data(), bias_.data()}, packed.data);
    if (shared_only) {
      // The routed term is multiplied by zero; its weights only need to be finite (zeros).
      expert_data zero;
      const std::size_t n = static_cast<std::size_t>(m.inter * m.hidden) * dtype_size(m.dt);
      zero.gate.assign(n, 0), zero.up.assign(n, 0), zero.down.assign(n, 0);
      zero.gs.assign(static_cast<std::size_t>(wscales(m.dt, m.inter, m.hidden)), 1.0f);
      zero.us = zero.gs;
      zero.ds.assign(static_cast<std::size_t>(wscales(m.dt, m.hidden, m.inter)), 1.0f);
      ref.pack_expert(one, 0, zero.view(), packed.data);
      ref.pack_expert(one, moe_shared_expert, make_expert(m, seed_, -1).view(), packed.data);
    } else {
      ref.pack_expert(one, 0, make_expert(m, seed_, e).view(), packed.data);
    }
    std::vector<std::int32_t> ids(eff_ids() + t * m.top_k, eff_ids() + (t + 1) * m.top_k), rid(ids.size());
    std::vector<float> w(eff_w() + t * m.top_k, eff_w() + (t + 1) * m.top_k), rw(w.size());
    if (shared_only) std::fill(w.begin(), w.end(), 0.0f);
    std::vector<float> out(static_cast<std::size_t>(m.hidden));
    moe_args a;
    a.src = &x_[static_cast<std::size_t>(t * m.hidden)], a.packed = packed.data, a.scratch = scratch.data;
    a.forced_ids = ids.data(), a.forced_weights = w.data(), a.topk_ids = rid.data(), a.topk_weights = rw.data();
    a.dst = out.data();
    moe_run_sequential(ref, one, a, 1);
    for (std::int64_t i = 0; i < m.hidden; ++i) want[static_cast<std::size_t>(i)] += out[static_cast<std::size_t>(i)];
  }

  std::string text_;
  moe_desc d_;
  const moe_impl& impl_;
  std::uint64_t seed_;
  bool routing_only_;
  std::vector<float> x_, router_, bias_, forced_w_, dst_, w_;
  std::vector<std::int32_t> forced_ids_, ids_, counts_;
  std::vector<raw_buffer> packed_;
  raw_buffer scratch_;
  std::size_t set_ = 0;
};

std::vector<impl_choice> moe_choices(const descriptor& d) {
  const moe_desc m = to_moe(d);
  std::vector<impl_choice> out;
  for (const auto& impl : moe_impls()) out.push_back({impl.name, impl.check(m).value_or("")});
  return out;
}

}  // namespace

op_def make_moe_op() {
  op_def op;
  const std::int64_t big = INT64_C(1) << 40;
  op.spec = descriptor_spec{
      "moe",
      "MoE layer: router -> dispatch -> experts (gate/up + SwiGLU, down) -> combine, optionally an expert shard",
      {{"t", "tokens"},
       {"e", "routed experts in the full layer"},
       {"k", "experts per token (top-k)"},
       {"h", "hidden width"},
       {"i", "intermediate width of one expert"},
       {"s", "intermediate width of the shared expert(s), merged; 0 = none", false, 0, 0, big},
       {"g", "expert groups (sigmoid_group_topk)", false, 1, 1, big},
       {"gk", "groups kept per token (sigmoid_group_topk)", false, 1, 1, big},
       {"el", "experts in the local shard (expert parallelism); 0 = all", false, 0, 0, big},
       {"ef", "first expert of the local shard", false, 0, 0, big}},
      {dtype::fp32, dtype::bf16, dtype::int8, dtype::fp8},
      {{"score", "router scoring rule",
        {"softmax_topk_renorm", "topk_softmax", "sigmoid_group_topk", "softmax_topk"}, "softmax_topk_renorm"},
       {"act", "expert activation", {"swiglu", "swiglu_oai"}, "swiglu"},
       {"route", "routing: the router's choice or a synthetic distribution (fixed seed)",
        {"model", "uniform", "balanced", "zipf"}, "model"},
       {"cache", "hot: one weight copy; cold: weight copies rotated over >= 4x the last-level cache", {"hot", "cold"}, "hot"},
       {"steps", "all: the whole layer; routing: only router, dispatch and combine (their share of the layer)",
        {"all", "routing"}, "all"}}};
  op.implementations = moe_choices;
  op.footprint_bytes = [](const descriptor& d) {
    const moe_desc m = to_moe(d);
    const moe_impl& impl = moe_select(m);
    const std::uint64_t pb = impl.packed_bytes(m);
    const std::uint64_t one_expert = static_cast<std::uint64_t>(3 * std::max(m.inter, m.shared_inter) * m.hidden) *
                                     (dtype_size(m.dt) + 4);  // generation buffer + verification copies
    return pb * static_cast<std::uint64_t>(cold_sets(d, pb)) + impl.scratch_bytes(m, max_threads()) +
           static_cast<std::uint64_t>(m.tokens * m.hidden * 8 + m.experts * m.hidden * 4) + 2 * one_expert;
  };
  op.make = [](const descriptor& d, const std::string& impl, std::uint64_t seed) -> std::unique_ptr<kernel_case> {
    const moe_desc m = to_moe(d);
    std::string refusals;
    for (const auto& k : moe_impls()) {
      if (!impl.empty() && k.name != impl) continue;
      if (auto why = k.check(m)) {
        refusals += fmt::format("\n  {}: {}", k.name, *why);
        continue;
      }
      return std::make_unique<moe_case>(d, k, seed);
    }
    if (refusals.empty()) {
      std::string names;
      for (const auto& k : moe_impls()) names += (names.empty() ? "" : ", ") + k.name;
      throw unsupported_error(fmt::format("{}: no implementation named '{}'; valid choices: {}", to_string(d), impl, names));
    }
    throw unsupported_error(fmt::format("{}: no implementation accepts it:{}", to_string(d), refusals));
  };
  return op;
}

}  // namespace infermark
