#include "profiles/model/workload.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

#include "kernels/attention/attention.hpp"
#include "kernels/gemm/gemm.hpp"
#include "kernels/norm/norm.hpp"

namespace infermark {

namespace {

double D(std::int64_t x) { return static_cast<double>(x); }
std::int64_t div_ceil(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

invocation from_work(std::string name, kernel_class k, std::string peak, const work_model& w, double times = 1) {
  invocation i;
  i.name = std::move(name);
  i.kclass = k;
  i.peak = std::move(peak);
  i.flops = w.flops() * times;
  i.bytes = w.bytes() * times;
  i.compute_on_vector = k == kernel_class::elementwise;
  return i;
}

invocation from_phase(std::string name, kernel_class k, std::string peak, const work_phase& p) {
  work_model w{{p}};
  return from_work(std::move(name), k, std::move(peak), w);
}

const work_phase& phase_named(const work_model& w, std::string_view name) {
  for (const auto& p : w.phases)
    if (p.name == name) return p;
  throw std::logic_error(fmt::format("work model lacks phase '{}'", name));
}

invocation comm(std::string name, double link_bytes, std::string link_dtype, int group) {
  invocation i;
  i.group = group;
  i.name = std::move(name);
  i.kclass = kernel_class::all_to_all;
  i.link_bytes = link_bytes;
  i.link_dtype = std::move(link_dtype);
  return i;
}

// Per-expert token counts for moe_work: the expectation under uniform routing, rounded to whole tokens:
// `hit` experts of the shard [0, local) get `rows` (token, expert) pairs as evenly as possible.
std::vector<std::int32_t> expected_counts(std::int64_t experts, std::int64_t local, double hit, double rows) {
  std::vector<std::int32_t> c(static_cast<std::size_t>(experts), 0);
  const std::int64_t h = std::clamp<std::int64_t>(std::llround(hit), 1, local);
  const std::int64_t r = std::max<std::int64_t>(std::llround(rows), h);
  for (std::int64_t e = 0; e < h; ++e) c[static_cast<std::size_t>(e)] = static_cast<std::int32_t>(r / h + (e < r % h ? 1 : 0));
  return c;
}

gemm_desc gd(std::int64_t m, std::int64_t n, std::int64_t k, dtype dt) { return gemm_desc{m, n, k, dt}; }

}  // namespace

const model_config& find_model(std::string_view slug) {
  std::string valid;
  for (const auto& m : known_models()) {
    if (m.slug == slug) return m;
    valid += (valid.empty() ? "" : ", ") + m.slug;
  }
  throw std::invalid_argument(fmt::format("unknown workload '{}'; valid choices: {}", slug, valid));
}

std::string_view to_string(phase p) { return p == phase::decode ? "decode" : "prefill"; }

phase parse_phase(std::string_view name) {
  if (name == "decode") return phase::decode;
  if (name == "prefill") return phase::prefill;
  throw std::invalid_argument(fmt::format("unknown phase '{}'; valid choices: decode, prefill", name));
}

dtype storage_dtype(std::string_view peak_name) {
  if (peak_name == "fp32") return dtype::fp32;
  if (peak_name == "bf16" || peak_name == "fp16") return dtype::bf16;
  if (peak_name == "int8") return dtype::int8;
  if (peak_name == "fp8") return dtype::fp8;
  throw std::invalid_argument(fmt::format("unknown dtype '{}'; valid choices: fp32, bf16, fp16, int8, fp8", peak_name));
}

namespace {

double attention_params(const model_config& m) {
  const double H = D(m.hidden), hq = D(m.heads);
  if (m.attn == attention_kind::gqa) {
    const double hd = D(m.head_dim), hkv = D(m.kv_heads);
    return H * (hq + 2 * hkv) * hd + hq * hd * H + (m.qk_norm ? 2 * hd : 0);
  }
  const double qk = D(m.qk_nope_dim + m.qk_rope_dim);
  const double q = m.q_lora_rank > 0 ? H * D(m.q_lora_rank) + D(m.q_lora_rank) + D(m.q_lora_rank) * hq * qk : H * hq * qk;
  return q + H * D(m.kv_lora_rank + m.qk_rope_dim) + D(m.kv_lora_rank) +
         D(m.kv_lora_rank) * hq * D(m.qk_nope_dim + m.v_head_dim) + hq * D(m.v_head_dim) * H;
}

}  // namespace

param_counts count_params(const model_config& m) {
  const double H = D(m.hidden);
  const double expert = 3 * H * D(m.expert_inter);
  const double norms = 2 * H;  // input and post-attention RMSNorm weights
  const double attn = attention_params(m) + norms;
  const double dense_ffn = 3 * H * D(m.dense_inter);
  const double router = D(m.experts) * H + (m.scoring == moe_scoring::sigmoid_group_topk ? D(m.experts) : 0);
  const double moe_all = D(m.experts) * expert + D(m.shared_experts) * expert + router;
  const double moe_active = D(m.top_k + m.shared_experts) * expert + router;
  const double n_dense = D(m.dense_layers), n_moe = D(m.layers - m.dense_layers);
  param_counts p;
  p.embedding = D(m.vocab) * H;
  const double head = D(m.vocab) * H + H;  // untied LM head (all seven models) and the final norm
  p.total = D(m.layers) * attn + n_dense * dense_ffn + n_moe * moe_all + p.embedding + head;
  p.active = D(m.layers) * attn + n_dense * dense_ffn + n_moe * moe_active + head;
  return p;
}

double kv_bytes_per_token(const model_config& m, double bytes_per_value) {
  if (m.attn == attention_kind::mla) return D(m.layers) * D(m.kv_lora_rank + m.qk_rope_dim) * bytes_per_value;
  return D(m.layers) * 2 * D(m.kv_heads) * D(m.head_dim) * bytes_per_value;
}

double expected_experts_hit(std::int64_t experts, std::int64_t top_k, std::int64_t local, double tokens) {
  return D(local) * (1 - std::pow(1 - D(top_k) / D(experts), tokens));
}

void validate(const workload_request& r) {
  const model_config& m = find_model(r.model);
  if (r.batch < 1) throw std::invalid_argument(fmt::format("batch {} is out of range; valid: >= 1", r.batch));
  if (r.context < 1) throw std::invalid_argument(fmt::format("context {} is out of range; valid: >= 1", r.context));
  const auto& p = r.par;
  auto divisors = [](std::int64_t n) {
    std::string s;
    for (std::int64_t d = 1; d <= n; ++d)
      if (n % d == 0) s += (s.empty() ? "" : ", ") + std::to_string(d);
    return s;
  };
  if (p.tp < 1) throw std::invalid_argument(fmt::format("tp {} is out of range; valid: >= 1", p.tp));
  if (p.attn_dp < 1) throw std::invalid_argument(fmt::format("attn-dp {} is out of range; valid: >= 1", p.attn_dp));
  if (p.ep < 1) throw std::invalid_argument(fmt::format("ep {} is out of range; valid: >= 1", p.ep));
  if (m.heads % p.tp != 0)
    throw std::invalid_argument(fmt::format("tp {} does not divide the {} query heads of {}; valid tp: {}", p.tp, m.heads,
                                            m.slug, divisors(m.heads)));
  if (m.attn == attention_kind::gqa && m.kv_heads % p.tp != 0 && p.tp % m.kv_heads != 0)
    throw std::invalid_argument(fmt::format("tp {} neither divides nor is a multiple of the {} KV heads of {}", p.tp,
                                            m.kv_heads, m.slug));
  if (r.batch % p.attn_dp != 0)
    throw std::invalid_argument(fmt::format("attn-dp {} does not divide batch {}: each data-parallel attention group "
                                            "holds whole sequences; valid attn-dp: {}", p.attn_dp, r.batch, divisors(r.batch)));
  if (p.ep > 1) {
    if (!m.moe()) throw std::invalid_argument(fmt::format("ep {} on the dense model {}; valid: 1", p.ep, m.slug));
    if (p.ep != p.chips())
      throw std::invalid_argument(fmt::format("ep {} must be 1 or the instance's chips tp x attn-dp = {} (experts are "
                                              "spread over every chip of the instance)", p.ep, p.chips()));
    if (p.ep > m.experts)
      throw std::invalid_argument(fmt::format("ep {} exceeds the {} routed experts of {}", p.ep, m.experts, m.slug));
  }
}

std::int64_t workload_plan::layers() const {
  std::int64_t n = 0;
  for (const auto& g : groups)
    if (g.kind != "head") n += g.count;
  return n;
}

double workload_plan::flops() const {
  double s = 0;
  for (const auto& g : groups)
    for (const auto& o : g.ops) s += o.flops * D(g.count);
  return s;
}

double workload_plan::bytes() const {
  double s = 0;
  for (const auto& g : groups)
    for (const auto& o : g.ops) s += o.bytes * D(g.count);
  return s;
}

nlohmann::json workload_plan::to_json() const {
  nlohmann::json gs = nlohmann::json::array();
  for (const auto& g : groups) {
    nlohmann::json ops = nlohmann::json::array();
    for (const auto& o : g.ops) {
      nlohmann::json j = {{"name", o.name}, {"class", std::string(to_string(o.kclass))}, {"flops", o.flops}, {"bytes", o.bytes}};
      if (!o.peak.empty()) j["dtype"] = o.peak;
      if (o.link_bytes > 0) j["link_bytes"] = o.link_bytes, j["link_dtype"] = o.link_dtype;
      ops.push_back(std::move(j));
    }
    gs.push_back({{"kind", g.kind}, {"count", g.count}, {"ops", ops}});
  }
  return {{"model", model->slug},
          {"phase", std::string(to_string(request.ph))},
          {"batch", request.batch},
          {"context", request.context},
          {"tp", request.par.tp},
          {"ep", request.par.ep},
          {"attn_dp", request.par.attn_dp},
          {"chips", chips},
          {"gemm_dtype", dt.gemm_peak},
          {"aux_dtype", dt.aux_peak},
          {"tokens_per_step", tokens_per_step},
          {"flops_per_chip", flops()},
          {"bytes_per_chip", bytes()},
          {"weight_bytes_per_chip", weight_bytes_per_chip},
          {"kv_bytes_per_chip", kv_bytes_per_chip},
          {"expected_experts_hit_per_chip", expected_experts_hit},
          {"routed_rows_per_chip", routed_rows_per_chip},
          {"groups", gs}};
}

workload_plan decompose(const workload_request& r, const dtype_choice& dt) {
  validate(r);
  const model_config& m = find_model(r.model);
  const parallel_config& p = r.par;
  workload_plan plan;
  plan.request = r;
  plan.dt = dt;
  plan.model = &m;
  plan.chips = p.chips();

  const bool decode = r.ph == phase::decode;
  const std::int64_t q_len = decode ? 1 : r.context;
  const std::int64_t seqs = r.batch / p.attn_dp;  // sequences of this chip's attention group
  const std::int64_t t_dp = seqs * q_len;         // tokens through this chip's attention and dense parts
  plan.tokens_per_step = D(r.batch) * D(q_len);
  const std::int64_t H = m.hidden, hq = m.heads / p.tp;
  const std::string& gp = dt.gemm_peak;
  const std::string& ap = dt.aux_peak;
  const double aux_es = D(dtype_size(dt.aux_dt)), gemm_es = D(dtype_size(dt.gemm_dt));
  auto gemm = [&](std::string name, std::int64_t mm, std::int64_t n, std::int64_t k, bool aux = false, double times = 1) {
    return from_work(std::move(name), kernel_class::gemm, aux ? ap : gp, gemm_work(gd(mm, n, k, aux ? dt.aux_dt : dt.gemm_dt)), times);
  };
  auto norm = [&](std::string name, std::int64_t rows, std::int64_t dim, bool residual) {
    rmsnorm_desc d;
    d.rows = rows, d.dim = dim, d.residual = residual, d.dt = dt.aux_dt;
    return from_work(std::move(name), kernel_class::elementwise, ap, rmsnorm_work(d));
  };
  auto rope = [&](std::int64_t heads, std::int64_t head_dim, std::int64_t rot_dim, std::int64_t rot_offset) {
    rope_desc d;
    d.tokens = t_dp, d.heads = heads, d.head_dim = head_dim, d.rot_dim = rot_dim, d.rot_offset = rot_offset;
    d.max_position = r.context, d.dt = dt.aux_dt;
    return from_work("attn.rope", kernel_class::elementwise, ap, rope_work(d));
  };
  auto kv_append = [&](std::int64_t hkv, std::int64_t dk, std::int64_t dv, bool v_in_k) {
    kv_append_desc d;
    d.tokens = t_dp, d.hkv = hkv, d.dk = dk, d.dv = dv, d.v_in_k = v_in_k, d.src_dt = dt.aux_dt, d.kv_dt = dt.aux_dt;
    d.block_size = 16, d.num_blocks = seqs * div_ceil(r.context, 16);
    return from_work("attn.kv_append", kernel_class::elementwise, ap, kv_append_work(d));
  };
  auto attention = [&](kernel_class k, std::int64_t heads, std::int64_t hkv, std::int64_t dk, std::int64_t dv, bool v_in_k,
                       std::int64_t window) {
    attention_desc d;
    d.batch = seqs, d.total_q = t_dp, d.hq = heads, d.hkv = hkv, d.dk = dk, d.dv = dv, d.v_in_k = v_in_k;
    d.block_size = 16, d.max_blocks_per_seq = div_ceil(r.context, 16), d.num_blocks = seqs * d.max_blocks_per_seq;
    d.window = window, d.sinks = m.sinks, d.q_dt = dt.aux_dt, d.kv_dt = dt.aux_dt;
    attention_validate(d);
    std::vector<std::int32_t> q_start(static_cast<std::size_t>(seqs) + 1), ctx(static_cast<std::size_t>(seqs), static_cast<std::int32_t>(r.context));
    for (std::int64_t b = 0; b <= seqs; ++b) q_start[static_cast<std::size_t>(b)] = static_cast<std::int32_t>(b * q_len);
    return from_work("attn.core", k, ap, attention_work(d, q_start, ctx));
  };
  // Ring all-reduce: each chip sends 2 (n-1)/n of the buffer.
  auto allreduce = [&](std::string name, int n, std::int64_t rows) {
    return comm(std::move(name), 2.0 * (n - 1) / n * D(rows) * D(H) * aux_es, ap, n);
  };

  // ---- attention block --------------------------------------------------------------------------------
  auto attention_ops = [&](bool sliding) {
    std::vector<invocation> ops;
    ops.push_back(norm("attn.input_norm", t_dp, H, true));
    if (m.attn == attention_kind::gqa) {
      const std::int64_t hd = m.head_dim, hkv = m.kv_heads >= p.tp ? m.kv_heads / p.tp : 1;  // KV heads replicated when tp > kv_heads
      ops.push_back(gemm("attn.qkv_proj", t_dp, (hq + 2 * hkv) * hd, H));
      if (m.qk_norm) ops.push_back(norm("attn.qk_norm", t_dp * (hq + hkv), hd, false));
      ops.push_back(rope(hq + hkv, hd, hd, 0));
      ops.push_back(kv_append(hkv, hd, hd, false));
      ops.push_back(attention(decode ? kernel_class::attention_decode : kernel_class::attention_prefill, hq, hkv, hd, hd,
                              false, sliding ? m.window : 0));
      ops.push_back(gemm("attn.o_proj", t_dp, H, hq * hd));
    } else {
      const std::int64_t qk = m.qk_nope_dim + m.qk_rope_dim, lat = m.kv_lora_rank;
      // The down projections produce the shared latent: replicated on every TP rank.
      if (m.q_lora_rank > 0) {
        ops.push_back(gemm("attn.q_a_proj", t_dp, m.q_lora_rank, H));
        ops.push_back(norm("attn.q_a_norm", t_dp, m.q_lora_rank, false));
        ops.push_back(gemm("attn.q_b_proj", t_dp, hq * qk, m.q_lora_rank));
      } else {
        ops.push_back(gemm("attn.q_proj", t_dp, hq * qk, H));
      }
      ops.push_back(gemm("attn.kv_a_proj", t_dp, lat + m.qk_rope_dim, H));
      ops.push_back(norm("attn.kv_a_norm", t_dp, lat, false));
      if (decode) {
        // Absorbed form (FlashMLA): q_nope is projected into the latent space per head (W_UK), attention
        // runs MQA-like over the 576-wide latent+rope rows, and W_UV maps the 512-wide output back.
        // Batched over heads: one GEMM per head, in the attention format.
        ops.push_back(gemm("attn.q_absorb", t_dp, lat, m.qk_nope_dim, true, D(hq)));
        ops.push_back(rope(hq + 1, m.qk_rope_dim, m.qk_rope_dim, 0));
        ops.push_back(kv_append(1, lat + m.qk_rope_dim, lat, true));
        ops.push_back(attention(kernel_class::mla_decode, hq, 1, lat + m.qk_rope_dim, lat, true, 0));
        ops.push_back(gemm("attn.v_absorb", t_dp, m.v_head_dim, lat, true, D(hq)));
      } else {
        // Decompressed form: K/V of every prompt token expanded per head from the latent.
        ops.push_back(gemm("attn.kv_b_proj", t_dp, hq * (m.qk_nope_dim + m.v_head_dim), lat));
        ops.push_back(rope(hq + 1, m.qk_rope_dim, m.qk_rope_dim, 0));
        ops.push_back(kv_append(1, lat + m.qk_rope_dim, lat, true));
        ops.push_back(attention(kernel_class::attention_prefill, hq, hq, qk, m.v_head_dim, false, 0));
      }
      ops.push_back(gemm("attn.o_proj", t_dp, H, hq * m.v_head_dim));
    }
    if (p.tp > 1) ops.push_back(allreduce("comm.attn_allreduce", p.tp, t_dp));
    ops.push_back(norm("ffn.post_attn_norm", t_dp, H, true));
    return ops;
  };

  // ---- FFN: dense (a one-expert MoE without router: moe_work's expert phases) ---------------------------
  auto dense_ffn_ops = [&]() {
    std::vector<invocation> ops;
    moe_desc d;
    d.tokens = t_dp, d.experts = 1, d.top_k = 1, d.hidden = H, d.inter = div_ceil(m.dense_inter, p.tp), d.dt = dt.gemm_dt;
    const std::vector<std::int32_t> counts{static_cast<std::int32_t>(t_dp)};
    const work_model w = moe_work(d, counts, true);
    ops.push_back(from_phase("ffn.gate_up", kernel_class::gemm, gp, phase_named(w, "experts.gate_up")));
    ops.push_back(from_phase("ffn.down", kernel_class::gemm, gp, phase_named(w, "experts.down")));
    if (p.tp > 1) ops.push_back(allreduce("comm.ffn_allreduce", p.tp, t_dp));
    return ops;
  };

  // ---- MoE ----------------------------------------------------------------------------------------------
  auto moe_ops = [&]() {
    std::vector<invocation> ops;
    const bool ep = p.ep > 1;
    const std::int64_t E = m.experts, k = m.top_k;
    // Tokens whose routing, dispatch and combine this chip does: with EP the TP ranks of a group split
    // their group's tokens; without EP every rank of the group works on all of them (then all-reduces).
    const std::int64_t t_home = ep ? div_ceil(t_dp, p.tp) : t_dp;
    moe_desc home;
    home.tokens = t_home, home.experts = E, home.top_k = k, home.hidden = H, home.inter = m.expert_inter;
    home.shared_inter = m.shared_experts * m.expert_inter / (ep ? 1 : p.tp);
    home.n_group = m.n_group, home.topk_group = m.topk_group, home.scoring = m.scoring, home.act = m.act, home.dt = dt.gemm_dt;
    const double home_rows = D(t_home) * D(k);
    const work_model hw = moe_work(home, expected_counts(E, E, expected_experts_hit(E, k, E, D(t_home)), home_rows), true);
    // The router GEMM is fp32 in the CPU kernel; accelerators run it in their attention format.
    ops.push_back(from_phase("moe.router", kernel_class::gemm, ap, phase_named(hw, "router")));

    // Routed experts of this chip's shard: all E sliced over tp (no EP), or E/ep whole experts receiving
    // the instance's tokens routed to them (EP).
    moe_desc ex = home;
    ex.shared_inter = 0;
    ex.tokens = ep ? static_cast<std::int64_t>(plan.tokens_per_step) : t_dp;
    ex.local_first = 0;
    ex.local_count = ep ? div_ceil(E, p.ep) : E;
    ex.inter = ep ? m.expert_inter : div_ceil(m.expert_inter, p.tp);
    const double tokens_in = D(ex.tokens);
    plan.expected_experts_hit = expected_experts_hit(E, k, ex.local(), tokens_in);
    plan.routed_rows_per_chip = tokens_in * D(k) * D(ex.local()) / D(E);
    const work_model ew = moe_work(ex, expected_counts(E, ex.local(), plan.expected_experts_hit, plan.routed_rows_per_chip));
    if (ep) {
      // DeepEP-style dispatch: each home token goes to its k experts, (ep-1)/ep of them on other chips, in
      // the expert format (with its scales); combine returns bf16 rows.
      const double remote = D(t_home) * D(k) * (p.ep - 1) / p.ep;
      ops.push_back(comm("comm.ep_dispatch", remote * (D(H) * gemm_es + 4.0 * D(moe_row_scales(dt.gemm_dt, H))), gp, p.ep));
    }
    ops.push_back(from_phase("moe.dispatch", kernel_class::elementwise, ap, phase_named(ew, "dispatch")));
    ops.push_back(from_phase("moe.experts.gate_up", kernel_class::grouped_gemm, gp, phase_named(ew, "experts.gate_up")));
    ops.push_back(from_phase("moe.experts.down", kernel_class::grouped_gemm, gp, phase_named(ew, "experts.down")));
    if (ep) ops.push_back(comm("comm.ep_combine", D(t_home) * D(k) * (p.ep - 1) / p.ep * D(H) * 2.0, "bf16", p.ep));
    ops.push_back(from_phase("moe.combine", kernel_class::elementwise, ap, phase_named(hw, "combine")));
    if (m.shared_experts > 0) ops.push_back(from_phase("moe.shared", kernel_class::gemm, gp, phase_named(hw, "shared")));
    if (!ep && p.tp > 1) ops.push_back(allreduce("comm.moe_allreduce", p.tp, t_dp));
    if (ep && p.tp > 1)  // the group's TP ranks gather each other's combined rows
      ops.push_back(comm("comm.moe_allgather", D(p.tp - 1) / p.tp * D(t_dp) * D(H) * aux_es, ap, p.tp));
    return ops;
  };

  // ---- layer kinds ----------------------------------------------------------------------------------------
  const std::string attn_name = m.attn == attention_kind::mla ? "mla" : "gqa";
  for (int sliding = 0; sliding < 2; ++sliding) {
    for (int moe_layer = 0; moe_layer < 2; ++moe_layer) {
      std::int64_t count = 0;
      for (std::int64_t l = 0; l < m.layers; ++l) {
        const bool is_moe = m.moe() && l >= m.dense_layers;
        if (m.sliding(l) == (sliding == 1) && is_moe == (moe_layer == 1)) ++count;
      }
      if (count == 0) continue;
      layer_group g;
      g.kind = attn_name + (sliding ? "-sliding" : "") + (moe_layer ? "+moe" : "+dense");
      g.count = count;
      g.ops = attention_ops(sliding == 1);
      for (auto& o : moe_layer ? moe_ops() : dense_ffn_ops()) g.ops.push_back(std::move(o));
      plan.groups.push_back(std::move(g));
    }
  }
  // ---- head: embedding gather, final norm, LM head (logits of the last position of each sequence) -------
  {
    layer_group g;
    g.kind = "head";
    g.count = 1;
    // No kernel models the embedding gather: each token reads its row and writes it (2 x hidden values).
    invocation emb;
    emb.name = "head.embedding";
    emb.kclass = kernel_class::elementwise;
    emb.peak = ap;
    emb.bytes = 2.0 * D(t_dp) * D(H) * aux_es;
    emb.compute_on_vector = true;
    g.ops.push_back(emb);
    g.ops.push_back(norm("head.final_norm", t_dp, H, true));
    g.ops.push_back(gemm("head.lm_head", decode ? t_dp : seqs, div_ceil(m.vocab, p.tp), H, true));
    plan.groups.push_back(std::move(g));
  }

  // ---- resident memory per chip ---------------------------------------------------------------------------
  {
    const double Hd = D(H);
    double attn_w = 0;
    if (m.attn == attention_kind::gqa) {
      const double hkv = D(m.kv_heads >= p.tp ? m.kv_heads / p.tp : 1), hd = D(m.head_dim);
      attn_w = Hd * (D(hq) + 2 * hkv) * hd + D(hq) * hd * Hd;
    } else {
      const double qk = D(m.qk_nope_dim + m.qk_rope_dim);
      attn_w = (m.q_lora_rank > 0 ? Hd * D(m.q_lora_rank) + D(m.q_lora_rank) * D(hq) * qk : Hd * D(hq) * qk) +
               Hd * D(m.kv_lora_rank + m.qk_rope_dim) + D(m.kv_lora_rank) * D(hq) * D(m.qk_nope_dim + m.v_head_dim) +
               D(hq) * D(m.v_head_dim) * Hd;
    }
    const double expert = 3 * Hd * D(m.expert_inter);
    const double moe_w = p.ep > 1 ? D(div_ceil(m.experts, p.ep)) * expert + D(m.shared_experts) * expert
                                  : (D(m.experts) + D(m.shared_experts)) * expert / p.tp;
    const double n_dense = D(m.dense_layers), n_moe = D(m.layers - m.dense_layers);
    plan.weight_bytes_per_chip = gemm_es * (D(m.layers) * attn_w + n_dense * 3 * Hd * D(m.dense_inter) / p.tp + n_moe * moe_w) +
                                 n_moe * D(m.experts) * Hd * 4 + 2 * D(m.vocab) * Hd * aux_es / p.tp;
    double kv = 0;
    for (std::int64_t l = 0; l < m.layers; ++l) {
      const double toks = D(m.sliding(l) ? std::min(m.window, r.context) : r.context);
      kv += m.attn == attention_kind::mla ? toks * D(m.kv_lora_rank + m.qk_rope_dim) * aux_es
                                          : toks * 2 * D(m.kv_heads >= p.tp ? m.kv_heads / p.tp : 1) * D(m.head_dim) * aux_es;
    }
    plan.kv_bytes_per_chip = kv * D(seqs);
  }
  return plan;
}

}  // namespace infermark
