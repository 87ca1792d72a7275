// The optimized attention framework, written once and instantiated per ISA (attention_avx512.cpp,
// attention_avx2.cpp, attention_generic.cpp) with a small SIMD trait `S` (BLIS style: only the
// conversions, the reduction and exp2 differ per ISA). Include only from those files.
//
// Work item = (sequence, query tile of qt tokens, KV head, KV split). Its rows are the qt x group query
// heads that share the KV head, so each K/V tile is dequantized once (into fp32 scratch) and used by
// every row: for each tile of kTile keys
//   S[rows][keys] = Q K^T        (register tile GR rows x TR keys, S::kAcc accumulators, one reduction)
//   online softmax in base 2     (Q is pre-scaled by scale*log2(e))
//   acc[rows][dv] += P V         (register tile GR rows x kNV vectors)
// Threads take contiguous runs of items of about equal cost (rows x keys), so causal prefill and mixed
// context lengths balance.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "kernels/attention/attention.hpp"
#include "kernels/common/partition.hpp"

// Everything here has internal linkage (anonymous namespace): each ISA file compiles its own copy with
// its own flags, and a shared inline definition could otherwise be merged by the linker into an AVX-512
// body called on a CPU without AVX-512.
namespace infermark::attn_core {
namespace {

inline constexpr std::int64_t kTile = 32;        // keys per tile (K tile of 32 x 576 fp32 stays in L2)
inline constexpr std::int64_t kRowsTarget = 128;  // query rows per work item in prefill (Q + acc 128 KiB at d 128)
inline constexpr float kLog2e = 1.4426950408889634f;
inline constexpr float kNegInf = -std::numeric_limits<float>::infinity();

inline std::int64_t round_up(std::int64_t a, std::int64_t b) { return div_up(a, b) * b; }

// Query tokens per work item: enough rows to reuse each K/V tile, few enough to keep acc in L2.
inline std::int64_t q_tile(const attention_desc& d) {
  // At least 2 so both tokens of multi-token-prediction decode share one pass over the cache.
  const std::int64_t group = d.hq / d.hkv;
  return std::max<std::int64_t>(2, kRowsTarget / group);
}

struct workspace_layout {
  std::int64_t rows_pad, q, k, v, s, acc, m, l, total;  // offsets / sizes in floats
};

inline workspace_layout workspace(const attention_desc& d) {
  workspace_layout w{};
  const std::int64_t group = d.hq / d.hkv;
  w.rows_pad = round_up(q_tile(d) * group, 4);
  std::int64_t off = 0;
  auto take = [&](std::int64_t n) {
    const std::int64_t at = off;
    off += round_up(n, 16);  // 64-byte aligned pieces
    return at;
  };
  w.q = take(w.rows_pad * d.dk);
  w.k = take(kTile * d.dk);
  w.v = take(kTile * d.dv);
  w.s = take(w.rows_pad * kTile);
  w.acc = take(w.rows_pad * d.dv);
  w.m = take(w.rows_pad);
  w.l = take(w.rows_pad);
  w.total = off;
  return w;
}

// Split-KV partial states: [total_q][hq][splits] of (m, l) and of acc[dv].
inline std::int64_t partial_floats(const attention_desc& d) {
  return d.splits > 1 ? round_up(d.total_q * d.hq * d.splits * (d.dv + 2), 16) : 0;
}

inline std::size_t scratch_bytes(const attention_desc& d, int nthr) {
  return static_cast<std::size_t>(partial_floats(d) + workspace(d).total * nthr) * sizeof(float);
}

inline int stages(const attention_desc& d) { return d.splits > 1 ? 2 : 1; }

// Common refusals of the optimized implementations (vector width `w` must divide the head dims).
inline std::optional<std::string> check_dims(const attention_desc& d, std::int64_t w, std::string_view isa) {
  if (d.dk % w != 0 || d.dv % w != 0)
    return std::string(isa) + " needs head dims divisible by " + std::to_string(w) + " (dk = " + std::to_string(d.dk) +
           ", dv = " + std::to_string(d.dv) + ")";
  return std::nullopt;
}

struct item {
  std::int64_t b, q0, q1, kvh, klo, khi;  // sequence, query tokens [q0,q1) of it, KV head, keys [klo,khi)
  std::int64_t split;
};

// Calls f(item) for every item of thread ithr, in order. Two passes: total cost, then the share.
template <class F>
void for_each_item(const attention_desc& d, const attention_args& a, int ithr, int nthr, F&& f) {
  const std::int64_t qt = q_tile(d), group = d.hq / d.hkv;
  auto visit = [&](auto&& g) {
    for (std::int64_t b = 0; b < d.batch; ++b) {
      const std::int64_t q_len = a.q_start[b + 1] - a.q_start[b], ctx = a.ctx_lens[b];
      for (std::int64_t q0 = 0; q0 < q_len; q0 += qt) {
        const std::int64_t q1 = std::min(q_len, q0 + qt);
        const std::int64_t lo = attention_visible(d, ctx - q_len + q0).lo, hi = ctx - q_len + q1;
        const std::int64_t tiles = div_up(hi - lo, kTile);
        for (std::int64_t h = 0; h < d.hkv; ++h)
          for (std::int64_t s = 0; s < d.splits; ++s) {
            const auto [t0, t1] = balance(tiles, static_cast<int>(s), static_cast<int>(d.splits));
            const std::int64_t klo = lo + t0 * kTile, khi = std::min(hi, lo + t1 * kTile);
            const double cost = static_cast<double>((q1 - q0) * group) * static_cast<double>(std::max<std::int64_t>(khi - klo, 0) + kTile);
            g(item{b, q0, q1, h, klo, std::max(klo, khi), s}, cost);
          }
      }
    }
  };
  double total = 0;
  visit([&](const item&, double c) { total += c; });
  double run = 0;
  visit([&](const item& it, double c) {
    const double mid = run + 0.5 * c;
    run += c;
    const int owner = std::min(nthr - 1, static_cast<int>(mid / total * nthr));
    if (owner == ithr) f(it);
  });
}

// Dequantizes cache rows of keys [k0, k0+n) of (sequence, KV head) into dst[n][dim] fp32.
template <class S>
void gather_rows(const attention_desc& d, const attention_args& a, const void* cache, const float* scale, std::int64_t dim,
                 const item& it, std::int64_t k0, std::int64_t n, float* dst) {
  const std::int32_t* bt = a.block_table + it.b * d.max_blocks_per_seq;
  const std::size_t es = dtype_size(d.kv_dt);
  for (std::int64_t t = 0; t < n; ++t) {
    const std::int64_t j = k0 + t;
    const std::int64_t slot = (static_cast<std::int64_t>(bt[j / d.block_size]) * d.hkv + it.kvh) * d.block_size + j % d.block_size;
    const auto* src = static_cast<const unsigned char*>(cache) + static_cast<std::size_t>(slot * dim) * es;
    S::dequant(d.kv_dt, src, scale != nullptr ? scale[slot] : 1.0f, dst + t * dim, dim);
  }
}

// Prefetches the cache rows of keys [k0, k0+n): blocks are scattered 4 KiB-ish pieces, which the hardware
// prefetchers do not follow across, so decode would otherwise run at a fraction of DRAM bandwidth.
inline void prefetch_rows(const attention_desc& d, const attention_args& a, const void* cache, std::int64_t dim, const item& it,
                          std::int64_t k0, std::int64_t n) {
  const std::int32_t* bt = a.block_table + it.b * d.max_blocks_per_seq;
  const std::int64_t row_bytes = dim * static_cast<std::int64_t>(dtype_size(d.kv_dt));
  for (std::int64_t t = 0; t < n; ++t) {
    const std::int64_t j = k0 + t;
    const std::int64_t slot = (static_cast<std::int64_t>(bt[j / d.block_size]) * d.hkv + it.kvh) * d.block_size + j % d.block_size;
    const auto* src = static_cast<const char*>(cache) + slot * row_bytes;
    for (std::int64_t off = 0; off < row_bytes; off += 64) __builtin_prefetch(src + off, 0, 3);
  }
}

// S[r][t] for GR rows x TR keys: S::kAcc dot products of length dk, reduced together.
template <class S, int GR>
void qk_block(const float* q, const float* k, std::int64_t dk, float* s) {
  constexpr int TR = S::kAcc / GR;
  typename S::vf acc[S::kAcc];
  for (auto& x : acc) x = S::zero();
  for (std::int64_t i = 0; i < dk; i += S::W) {
    typename S::vf kv[TR];
    for (int t = 0; t < TR; ++t) kv[t] = S::load(k + t * dk + i);
    for (int r = 0; r < GR; ++r) {
      const auto qv = S::load(q + r * dk + i);
      for (int t = 0; t < TR; ++t) acc[r * TR + t] = S::fma(qv, kv[t], acc[r * TR + t]);
    }
  }
  alignas(64) float out[S::kAcc];
  S::reduce(acc, out);
  for (int r = 0; r < GR; ++r)
    for (int t = 0; t < TR; ++t) s[r * kTile + t] = out[r * TR + t];
}

// acc[GR rows][NV vectors at column c] += P[rows][t] * V[t][c...] over n keys.
template <class S, int GR, int NV>
void pv_block(const float* p, const float* v, std::int64_t ldv, std::int64_t n, float* acc, std::int64_t dv) {
  typename S::vf c[GR][NV];
  for (int r = 0; r < GR; ++r)
    for (int j = 0; j < NV; ++j) c[r][j] = S::load(acc + r * dv + j * S::W);
  for (std::int64_t t = 0; t < n; ++t) {
    typename S::vf vv[NV];
    for (int j = 0; j < NV; ++j) vv[j] = S::load(v + t * ldv + j * S::W);
    for (int r = 0; r < GR; ++r) {
      const auto pr = S::set1(p[r * kTile + t]);
      for (int j = 0; j < NV; ++j) c[r][j] = S::fma(pr, vv[j], c[r][j]);
    }
  }
  for (int r = 0; r < GR; ++r)
    for (int j = 0; j < NV; ++j) S::store(acc + r * dv + j * S::W, c[r][j]);
}

template <class S, int GR>
void tile_products(const attention_desc& d, float* ws, const workspace_layout& L, std::int64_t rows_pad, std::int64_t nt,
                   const float* vsrc, std::int64_t ldv, bool qk) {
  if (qk) {
    constexpr int TR = S::kAcc / GR;
    for (std::int64_t r = 0; r < rows_pad; r += GR)
      for (std::int64_t t = 0; t < nt; t += TR) qk_block<S, GR>(ws + L.q + r * d.dk, ws + L.k + t * d.dk, d.dk, ws + L.s + r * kTile + t);
    return;
  }
  constexpr int NV = S::kNV;
  for (std::int64_t r = 0; r < rows_pad; r += GR) {
    std::int64_t c = 0;
    for (; c + NV * S::W <= d.dv; c += NV * S::W)
      pv_block<S, GR, NV>(ws + L.s + r * kTile, vsrc + c, ldv, nt, ws + L.acc + r * d.dv + c, d.dv);
    for (; c < d.dv; c += S::W) pv_block<S, GR, 1>(ws + L.s + r * kTile, vsrc + c, ldv, nt, ws + L.acc + r * d.dv + c, d.dv);
  }
}

template <class S>
void run_item(const attention_desc& d, const attention_args& a, const item& it, float* ws, float* partial) {
  const workspace_layout L = workspace(d);
  const std::int64_t group = d.hq / d.hkv, rows = (it.q1 - it.q0) * group;
  const int gr = rows >= 4 ? 4 : (rows >= 2 ? 2 : 1);
  const std::int64_t rows_pad = round_up(rows, gr);
  const std::int64_t q_len = a.q_start[it.b + 1] - a.q_start[it.b], ctx = a.ctx_lens[it.b];
  const std::int64_t row0 = a.q_start[it.b] + it.q0;  // first query row (token) of the item
  const float qscale = attention_scale(d) * kLog2e;
  float* q = ws + L.q;
  float* acc = ws + L.acc;
  float* m = ws + L.m;
  float* l = ws + L.l;
  const std::size_t q_es = dtype_size(d.q_dt);
  for (std::int64_t r = 0; r < rows_pad; ++r) {
    float* dst = q + r * d.dk;
    if (r < rows) {
      const std::int64_t src_row = (row0 + r / group) * d.hq + it.kvh * group + r % group;
      S::dequant(d.q_dt, static_cast<const unsigned char*>(a.q) + static_cast<std::size_t>(src_row * d.dk) * q_es, 1.0f, dst, d.dk);
      S::scale(dst, qscale, d.dk);
    } else {
      std::fill(dst, dst + d.dk, 0.0f);
    }
    m[r] = kNegInf;
    l[r] = 0;
    std::fill(acc + r * d.dv, acc + (r + 1) * d.dv, 0.0f);
  }
  for (std::int64_t k0 = it.klo; k0 < it.khi; k0 += kTile) {
    const std::int64_t nt = std::min(kTile, it.khi - k0);
    const std::int64_t nt_pad = round_up(nt, S::kAcc / gr);
    if (k0 + kTile < it.khi) {
      const std::int64_t nn = std::min(kTile, it.khi - k0 - kTile);
      prefetch_rows(d, a, a.k_cache, d.dk, it, k0 + kTile, nn);
      if (!d.v_in_k) prefetch_rows(d, a, a.v_cache, d.dv, it, k0 + kTile, nn);
    }
    gather_rows<S>(d, a, a.k_cache, a.k_scale, d.dk, it, k0, nt, ws + L.k);
    std::fill(ws + L.k + nt * d.dk, ws + L.k + nt_pad * d.dk, 0.0f);
    if (gr == 4) tile_products<S, 4>(d, ws, L, rows_pad, nt_pad, nullptr, 0, true);
    else if (gr == 2) tile_products<S, 2>(d, ws, L, rows_pad, nt_pad, nullptr, 0, true);
    else tile_products<S, 1>(d, ws, L, rows_pad, nt_pad, nullptr, 0, true);
    // Mask and online softmax, row by row; entries past nt (and masked ones) become -inf -> p = 0.
    for (std::int64_t r = 0; r < rows_pad; ++r) {
      float* s = ws + L.s + r * kTile;
      if (r >= rows) {
        std::fill(s, s + kTile, 0.0f);
        continue;
      }
      const std::int64_t p = ctx - q_len + it.q0 + r / group;
      const auto vis = attention_visible(d, p);
      const std::int64_t a0 = std::clamp<std::int64_t>(vis.lo - k0, 0, nt), a1 = std::clamp<std::int64_t>(vis.hi - k0, 0, nt);
      for (std::int64_t t = 0; t < a0; ++t) s[t] = kNegInf;
      for (std::int64_t t = a1; t < kTile; ++t) s[t] = kNegInf;
      const float m_tile = S::row_max(s);
      const float m_new = std::max(m[r], m_tile);
      if (m_new == kNegInf) {  // nothing visible to this row yet: contributes nothing
        std::fill(s, s + kTile, 0.0f);
        continue;
      }
      const float corr = m[r] == kNegInf ? 0.0f : std::exp2(m[r] - m_new);
      const float sum = S::row_exp2(s, m_new);
      l[r] = l[r] * corr + sum;
      m[r] = m_new;
      if (corr != 1.0f) S::scale(acc + r * d.dv, corr, d.dv);
    }
    const float* vsrc;
    std::int64_t ldv;
    if (d.v_in_k) {
      vsrc = ws + L.k;
      ldv = d.dk;
    } else {
      gather_rows<S>(d, a, a.v_cache, a.v_scale, d.dv, it, k0, nt, ws + L.v);
      vsrc = ws + L.v;
      ldv = d.dv;
    }
    if (gr == 4) tile_products<S, 4>(d, ws, L, rows_pad, nt, vsrc, ldv, false);
    else if (gr == 2) tile_products<S, 2>(d, ws, L, rows_pad, nt, vsrc, ldv, false);
    else tile_products<S, 1>(d, ws, L, rows_pad, nt, vsrc, ldv, false);
  }
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::int64_t row = row0 + r / group, head = it.kvh * group + r % group;
    if (d.splits > 1) {
      float* ml = partial + ((row * d.hq + head) * d.splits + it.split) * 2;
      float* pacc = partial + d.total_q * d.hq * d.splits * 2 + ((row * d.hq + head) * d.splits + it.split) * d.dv;
      ml[0] = m[r];
      ml[1] = l[r];
      std::copy(acc + r * d.dv, acc + (r + 1) * d.dv, pacc);
      continue;
    }
    float mm = m[r], w = 1.0f, denom = l[r];
    if (d.sinks) {
      const float sink = a.sinks[head] * kLog2e;
      const float mx = std::max(mm, sink);
      w = std::exp2(mm - mx);
      denom = l[r] * w + std::exp2(sink - mx);
    }
    float* o = a.out + (row * d.hq + head) * d.dv;
    std::copy(acc + r * d.dv, acc + (r + 1) * d.dv, o);
    S::scale(o, w / denom, d.dv);
  }
}

// Stage 1: out = sum_s acc_s 2^(m_s - M) / (sum_s l_s 2^(m_s - M) [+ 2^(sink - M)]).
template <class S>
void merge(const attention_desc& d, const attention_args& a, const float* partial, int ithr, int nthr) {
  const float* pacc_all = partial + d.total_q * d.hq * d.splits * 2;
  const auto [w0, w1] = balance(d.total_q * d.hq, ithr, nthr);
  for (std::int64_t w = w0; w < w1; ++w) {
    const float* ml = partial + w * d.splits * 2;
    const std::int64_t head = w % d.hq;
    float mx = d.sinks ? a.sinks[head] * kLog2e : kNegInf;
    for (std::int64_t s = 0; s < d.splits; ++s) mx = std::max(mx, ml[2 * s]);
    float denom = d.sinks ? std::exp2(a.sinks[head] * kLog2e - mx) : 0.0f;
    float* o = a.out + w * d.dv;
    std::fill(o, o + d.dv, 0.0f);
    for (std::int64_t s = 0; s < d.splits; ++s) {
      if (ml[2 * s] == kNegInf) continue;  // split saw no key of this row
      const float ws = std::exp2(ml[2 * s] - mx);
      denom += ml[2 * s + 1] * ws;
      S::axpy(o, pacc_all + (w * d.splits + s) * d.dv, ws, d.dv);
    }
    S::scale(o, 1.0f / denom, d.dv);
  }
}

template <class S>
void execute(const attention_desc& d, const attention_args& a, int stage, int ithr, int nthr) {
  float* partial = static_cast<float*>(a.scratch);
  if (stage == 1) {
    merge<S>(d, a, partial, ithr, nthr);
    return;
  }
  float* ws = partial + partial_floats(d) + workspace(d).total * ithr;
  for_each_item(d, a, ithr, nthr, [&](const item& it) { run_item<S>(d, a, it, ws, partial); });
}

}  // namespace
}  // namespace infermark::attn_core
