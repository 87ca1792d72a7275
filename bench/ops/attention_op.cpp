// Attention in the harness: descriptor
//   "attn:b<seqs>q<query tokens per seq>ctx<context>hq<q heads>hkv<kv heads>dk<head dim>[dv<v dim>][bs<block>]
//        [win<window>][split<kv splits>]:<dtype>[:sinks=on][:mla=on][:lens=mixed][:cache=cold]
//        [:blocks=contiguous]"
// over kernels/attention. Decode is q1 (q2: multi-token prediction), prefill q == ctx, chunked prefill
// q < ctx. dtype fp32 / bf16: Q, K, V in that format; int8 / fp8: bf16 Q with an int8 / fp8 e4m3 KV cache
// (per-token scales). mla=on: absorbed MLA (one shared cache row of dk values, v = its first dv).
// lens=mixed: context lengths spread over [ctx/2, ctx] (seeded). cache=cold: the KV cache is replicated
// over >= 4x the last-level cache and each run uses the next copy (block tables offset per copy).
// blocks=contiguous: each sequence's cache blocks in order, one after the other (default shuffled: as a
// long-running server's allocator leaves them).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>

#include "backends/memory.hpp"
#include "backends/topology.hpp"
#include "bench/op.hpp"
#include "kernels/attention/attention.hpp"
#include "kernels/common/partition.hpp"

namespace infermark {
namespace {

constexpr double kVerifyFlops = 2e8;  // reference budget: a prefix of the sequences is re-computed

struct attn_problem {
  attention_desc d;
  std::vector<std::int32_t> q_start, ctx;
  std::int64_t blocks_per_set = 0;
  int sets = 1;
};

std::uint64_t kv_set_bytes(const attention_desc& d, std::int64_t blocks) {
  const bool scaled = d.kv_dt == dtype::int8 || d.kv_dt == dtype::fp8;
  const std::uint64_t per_slot = static_cast<std::uint64_t>(d.dk + (d.v_in_k ? 0 : d.dv)) * dtype_size(d.kv_dt) + (scaled ? (d.v_in_k ? 4 : 8) : 0);
  return static_cast<std::uint64_t>(blocks * d.hkv * d.block_size) * per_slot;
}

attn_problem to_problem(const descriptor& x) {
  attn_problem p;
  attention_desc& d = p.d;
  const std::int64_t b = x.at("b"), q = x.at("q"), ctx = x.at("ctx");
  d.batch = b;
  d.hq = x.at("hq");
  d.hkv = x.at("hkv");
  d.dk = x.at("dk");
  d.dv = x.at("dv") == 0 ? d.dk : x.at("dv");
  d.block_size = x.at("bs");
  d.window = x.at("win");
  d.splits = x.at("split");
  d.sinks = x.option("sinks") == "on";
  d.v_in_k = x.option("mla") == "on";
  d.kv_dt = x.dt;
  d.q_dt = x.dt == dtype::fp32 ? dtype::fp32 : dtype::bf16;
  const std::string text = to_string(x);
  if (d.hq % d.hkv != 0)
    throw descriptor_error(fmt::format("{}: hq = {} is not a multiple of hkv = {}", text, d.hq, d.hkv));
  if (q > ctx) throw descriptor_error(fmt::format("{}: q = {} query tokens exceed the context ctx = {}", text, q, ctx));
  if (d.window > ctx)
    throw descriptor_error(fmt::format("{}: window win = {} is larger than the context ctx = {}; use win0 for full attention",
                                       text, d.window, ctx));
  if (d.v_in_k && d.dv > d.dk) throw descriptor_error(fmt::format("{}: mla=on needs dv <= dk, got dv = {} > dk = {}", text, d.dv, d.dk));
  std::mt19937_64 rng(static_cast<std::uint64_t>(b * 131 + ctx));
  p.q_start.push_back(0);
  for (std::int64_t s = 0; s < b; ++s) {
    const std::int64_t c = x.option("lens") == "mixed" ? std::max<std::int64_t>(q, ctx / 2 + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(ctx - ctx / 2 + 1))) : ctx;
    p.ctx.push_back(static_cast<std::int32_t>(c));
    p.q_start.push_back(static_cast<std::int32_t>(p.q_start.back() + q));
    p.blocks_per_set += div_up(c, d.block_size);
  }
  d.total_q = p.q_start.back();
  d.max_blocks_per_seq = div_up(ctx, d.block_size);
  if (x.option("cache") == "cold") {
    const std::uint64_t llc = host_topology().llc_total_bytes();
    const std::uint64_t target = 4 * (llc != 0 ? llc : (64ull << 20));
    const std::uint64_t set = kv_set_bytes(d, p.blocks_per_set);
    p.sets = static_cast<int>(std::max<std::uint64_t>(1, (target + set - 1) / set));
  }
  d.num_blocks = p.blocks_per_set * p.sets;
  try {
    attention_validate(d);
  } catch (const std::invalid_argument& e) {
    throw descriptor_error(fmt::format("{}: {}", text, e.what()));
  }
  return p;
}

void store_row(dtype dt, std::uint8_t* dst, const float* src, std::int64_t n, float* scale) {
  float sc = 1.0f;
  if (dt == dtype::int8 || dt == dtype::fp8) {
    float amax = 0;
    for (std::int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(src[i]));
    sc = amax > 0 ? amax / (dt == dtype::int8 ? 127.0f : 448.0f) : 1.0f;
    *scale = sc;
  }
  for (std::int64_t i = 0; i < n; ++i) {
    const float x = src[i] / sc;
    switch (dt) {
      case dtype::fp32: std::memcpy(dst + 4 * i, &x, 4); break;
      case dtype::bf16: {
        const bf16_t h = f32_to_bf16(x);
        std::memcpy(dst + 2 * i, &h, 2);
        break;
      }
      case dtype::int8: dst[i] = static_cast<std::uint8_t>(static_cast<std::int8_t>(std::lround(std::clamp(x, -127.0f, 127.0f)))); break;
      case dtype::fp8: dst[i] = x == 0.0f ? 0 : f32_to_fp8_e4m3(x); break;
    }
  }
}

class attention_case final : public kernel_case {
 public:
  attention_case(const descriptor& x, const attention_impl& impl, std::uint64_t seed, int max_threads)
      : p_(to_problem(x)), impl_(impl) {
    const attention_desc& d = p_.d;
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
    const std::int64_t slots = d.num_blocks * d.hkv * d.block_size;
    const std::size_t es = dtype_size(d.kv_dt);
    const bool scaled = d.kv_dt == dtype::int8 || d.kv_dt == dtype::fp8;
    k_.assign(static_cast<std::size_t>(slots * d.dk) * es, 0);
    if (!d.v_in_k) v_.assign(static_cast<std::size_t>(slots * d.dv) * es, 0);
    if (scaled) {
      ks_.assign(static_cast<std::size_t>(slots), 1.0f);
      vs_.assign(static_cast<std::size_t>(slots), 1.0f);
    }
    std::vector<float> row(static_cast<std::size_t>(std::max(d.dk, d.dv)));
    // Every copy of the cache holds the same values (the copies only defeat the caches), so one
    // verification covers all of them.
    const std::int64_t set_slots = p_.blocks_per_set * d.hkv * d.block_size;
    for (std::int64_t s = 0; s < set_slots; ++s) {
      for (std::int64_t i = 0; i < d.dk; ++i) row[i] = uni(rng);
      store_row(d.kv_dt, &k_[static_cast<std::size_t>(s * d.dk) * es], row.data(), d.dk, scaled ? &ks_[s] : nullptr);
      if (!d.v_in_k) {
        for (std::int64_t i = 0; i < d.dv; ++i) row[i] = uni(rng);
        store_row(d.kv_dt, &v_[static_cast<std::size_t>(s * d.dv) * es], row.data(), d.dv, scaled ? &vs_[s] : nullptr);
      }
    }
    for (int set = 1; set < p_.sets; ++set) {
      std::memcpy(&k_[static_cast<std::size_t>(set * set_slots * d.dk) * es], k_.data(), static_cast<std::size_t>(set_slots * d.dk) * es);
      if (!d.v_in_k) std::memcpy(&v_[static_cast<std::size_t>(set * set_slots * d.dv) * es], v_.data(), static_cast<std::size_t>(set_slots * d.dv) * es);
      if (scaled) {
        std::copy_n(ks_.begin(), set_slots, ks_.begin() + set * set_slots);
        std::copy_n(vs_.begin(), set_slots, vs_.begin() + set * set_slots);
      }
    }
    // Block tables: logical blocks of all sequences over a copy's physical blocks, shuffled (blocks=shuffled)
    // or in order (blocks=contiguous).
    std::vector<std::int32_t> phys(static_cast<std::size_t>(p_.blocks_per_set));
    std::iota(phys.begin(), phys.end(), 0);
    if (x.option("blocks") == "shuffled") std::shuffle(phys.begin(), phys.end(), rng);
    tables_.resize(static_cast<std::size_t>(p_.sets));
    for (int set = 0; set < p_.sets; ++set) {
      auto& t = tables_[static_cast<std::size_t>(set)];
      t.assign(static_cast<std::size_t>(d.batch * d.max_blocks_per_seq), 0);
      std::size_t next = 0;
      for (std::int64_t b = 0; b < d.batch; ++b)
        for (std::int64_t blk = 0; blk < div_up(p_.ctx[b], d.block_size); ++blk)
          t[b * d.max_blocks_per_seq + blk] = static_cast<std::int32_t>(phys[next++] + set * p_.blocks_per_set);
    }
    q_.resize(static_cast<std::size_t>(d.total_q * d.hq * d.dk) * dtype_size(d.q_dt));
    for (std::int64_t i = 0; i < d.total_q * d.hq; ++i) {
      for (std::int64_t j = 0; j < d.dk; ++j) row[j] = 2.0f * uni(rng);
      store_row(d.q_dt, &q_[static_cast<std::size_t>(i * d.dk) * dtype_size(d.q_dt)], row.data(), d.dk, nullptr);
    }
    for (std::int64_t h = 0; h < d.hq; ++h) sinks_.push_back(2.0f * uni(rng));
    out_.assign(static_cast<std::size_t>(d.total_q * d.hq * d.dv), 0.0f);
    scratch_.resize(impl_.scratch_bytes(d, max_threads) / sizeof(std::max_align_t) + 1);
    attention_validate(d, args(0, out_.data()));
  }

  std::string impl_name() const override { return std::string(impl_.name); }
  work_model work() const override { return attention_work(p_.d, p_.q_start, p_.ctx); }

  void run(const backend& be) override {
    const attention_args a = args(set_, out_.data());
    for (int stage = 0; stage < impl_.stages(p_.d); ++stage)
      be.parallel([&](int ithr, int nthr) { impl_.execute(p_.d, a, stage, ithr, nthr); });
    last_set_ = set_;
    set_ = (set_ + 1) % p_.sets;
  }

  verdict verify(const backend& be) override {
    // Re-computes, sequence by sequence until the budget is spent (at least one), the last k query
    // tokens of each with the reference -- the most expensive rows, which see the whole context --
    // as a one-sequence chunked-prefill problem over the same cache.
    const attention_desc& d = p_.d;
    const attention_impl& ref = attention_reference();
    std::vector<std::max_align_t> ref_scratch(ref.scratch_bytes(d, be.threads()) / sizeof(std::max_align_t) + 1);
    const std::size_t q_row = static_cast<std::size_t>(d.hq * d.dk) * dtype_size(d.q_dt);
    verdict v;
    double max_ref = 0, err2 = 0, ref2 = 0, budget = kVerifyFlops;
    std::int64_t seqs = 0, rows = 0;
    for (std::int64_t b = 0; b < d.batch && (seqs == 0 || budget > 0); ++b) {
      const std::int64_t q_len = p_.q_start[b + 1] - p_.q_start[b], ctx = p_.ctx[b];
      const double row_flops = static_cast<double>(ctx) * static_cast<double>(d.hq * (2 * d.dk + 2 * d.dv));
      const std::int64_t k = std::clamp<std::int64_t>(static_cast<std::int64_t>(budget / row_flops), 1, q_len);
      budget -= static_cast<double>(k) * row_flops;
      attention_desc sub = d;
      sub.batch = 1;
      sub.total_q = k;
      sub.splits = 1;
      const std::int32_t sub_q_start[2] = {0, static_cast<std::int32_t>(k)};
      const std::int64_t first_row = p_.q_start[b] + q_len - k;
      std::vector<float> want(static_cast<std::size_t>(k * d.hq * d.dv));
      attention_args a = args(last_set_, want.data());
      a.q = q_.data() + static_cast<std::size_t>(first_row) * q_row;
      a.block_table += b * d.max_blocks_per_seq;
      a.q_start = sub_q_start;
      a.ctx_lens = &p_.ctx[static_cast<std::size_t>(b)];
      a.scratch = ref_scratch.data();
      be.parallel([&](int ithr, int nthr) { ref.execute(sub, a, 0, ithr, nthr); });
      const float* got = out_.data() + first_row * d.hq * d.dv;
      for (std::size_t i = 0; i < want.size(); ++i) {
        max_ref = std::max(max_ref, std::fabs(static_cast<double>(want[i])));
        const double e = std::fabs(static_cast<double>(got[i]) - want[i]);
        v.max_abs_err = std::isnan(e) ? INFINITY : std::max(v.max_abs_err, e);
        err2 += std::isnan(e) ? INFINITY : e * e;
        ref2 += static_cast<double>(want[i]) * want[i];
        ++v.checked;
      }
      ++seqs;
      rows += k;
    }
    v.max_rel_err = max_ref > 0 ? v.max_abs_err / max_ref : v.max_abs_err;
    // fp32 softmax/accumulation over exactly dequantized values vs the fp64 reference on the same stored
    // values: 1e-5 normwise for every format; a path that rounds P to bf16 has its own NMSE bound.
    const double nmse = ref2 > 0 ? err2 / ref2 : err2;
    if (impl_.nmse_bound > 0) {
      v.ok = nmse <= impl_.nmse_bound;
      v.detail = fmt::format("{} query tokens of {} of {} sequences ({} elements) vs fp64 reference: NMSE = {:.3g} (bound {:.3g}, "
                             "P rounded to bf16), max |err| / max |ref| = {:.3g}", rows, seqs, d.batch, v.checked, nmse,
                             impl_.nmse_bound, v.max_rel_err);
    } else {
      v.ok = v.max_rel_err <= 1e-5;
      v.detail = fmt::format("{} query tokens of {} of {} sequences ({} elements) vs fp64 reference: max |err| / max |ref| = {:.3g} "
                             "(bound 1e-5)", rows, seqs, d.batch, v.checked, v.max_rel_err);
    }
    return v;
  }

 private:
  attention_args args(int set, float* out) {
    attention_args a;
    a.q = q_.data();
    a.k_cache = k_.data();
    a.v_cache = p_.d.v_in_k ? nullptr : v_.data();
    a.k_scale = ks_.empty() ? nullptr : ks_.data();
    a.v_scale = vs_.empty() || p_.d.v_in_k ? nullptr : vs_.data();
    a.block_table = tables_[static_cast<std::size_t>(set)].data();
    a.q_start = p_.q_start.data();
    a.ctx_lens = p_.ctx.data();
    a.sinks = p_.d.sinks ? sinks_.data() : nullptr;
    a.out = out;
    a.scratch = scratch_.data();
    return a;
  }

  attn_problem p_;
  const attention_impl& impl_;
  host_vector<std::uint8_t> q_, k_, v_;  // the KV cache (cold: rotated copies) on huge pages
  std::vector<float> ks_, vs_, sinks_, out_;
  std::vector<std::vector<std::int32_t>> tables_;
  std::vector<std::max_align_t> scratch_;
  int set_ = 0, last_set_ = 0;
};

std::vector<impl_choice> attention_choices(const descriptor& x) {
  const attn_problem p = to_problem(x);
  std::vector<impl_choice> out;
  for (const auto& impl : attention_impls()) out.push_back({std::string(impl.name), impl.check(p.d).value_or("")});
  return out;
}

}  // namespace

op_def make_attention_op() {
  op_def op;
  op.spec = descriptor_spec{
      "attn",
      "attention over a paged KV cache: decode (q1/q2), prefill (q = ctx), chunked prefill, MLA, sliding window",
      {{"b", "sequences in the batch"},
       {"q", "new query tokens per sequence (1 decode, 2 multi-token prediction, ctx prefill)"},
       {"ctx", "tokens in the cache per sequence, new ones included"},
       {"hq", "query heads"},
       {"hkv", "KV heads (hq must be a multiple)"},
       {"dk", "q/k head dim"},
       {"dv", "v/out head dim; 0 = dk", false, 0, 0},
       {"bs", "tokens per cache block", false, 16},
       {"win", "sliding window in tokens; 0 = none", false, 0, 0},
       {"split", "KV splits per work item (split-KV + merge stage)", false, 1}},
      {dtype::fp32, dtype::bf16, dtype::int8, dtype::fp8},
      {{"sinks", "one attention-sink logit per query head (gpt-oss)", {"off", "on"}, "off"},
       {"mla", "absorbed MLA: one shared cache row, v = its first dv values", {"off", "on"}, "off"},
       {"lens", "equal: every sequence has ctx tokens; mixed: seeded lengths in [ctx/2, ctx]", {"equal", "mixed"}, "equal"},
       {"cache", "hot: one KV cache; cold: copies rotated over >= 4x the last-level cache", {"hot", "cold"}, "hot"},
       {"blocks", "shuffled: sequences' blocks scattered over the cache (a long-running server's allocator); contiguous: each sequence's blocks in order, one after the other", {"shuffled", "contiguous"}, "shuffled"}}};
  op.implementations = attention_choices;
  op.footprint_bytes = [](const descriptor& x) {
    const attn_problem p = to_problem(x);
    const attention_desc& d = p.d;
    return kv_set_bytes(d, d.num_blocks) + static_cast<std::uint64_t>(d.total_q * d.hq) * (d.dk * 2 + d.dv * 8) +
           attention_reference().scratch_bytes(d, max_threads()) + static_cast<std::uint64_t>(d.total_q * d.hq * d.splits * (d.dv + 2) * 4) +
           static_cast<std::uint64_t>(d.batch * d.max_blocks_per_seq * 4 * p.sets);
  };
  op.make = [](const descriptor& x, const std::string& impl, std::uint64_t seed) -> std::unique_ptr<kernel_case> {
    const attn_problem p = to_problem(x);
    std::string refusals, names;
    for (const auto& k : attention_impls()) {
      names += (names.empty() ? "" : ", ") + std::string(k.name);
      if (!impl.empty() && k.name != impl) continue;
      if (const auto why = k.check(p.d)) {
        refusals += fmt::format("\n  {}: {}", k.name, *why);
        continue;
      }
      return std::make_unique<attention_case>(x, k, seed, max_threads());
    }
    if (refusals.empty())
      throw unsupported_error(fmt::format("{}: no implementation named '{}'; valid choices: {}", to_string(x), impl, names));
    throw unsupported_error(fmt::format("{}: no implementation accepts it:{}", to_string(x), refusals));
  };
  return op;
}

}  // namespace infermark
