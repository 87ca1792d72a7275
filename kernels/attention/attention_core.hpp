// The optimized attention framework, written once and instantiated per ISA (attention_avx512.cpp,
// attention_avx2.cpp, attention_generic.cpp) with a small SIMD trait `S` (BLIS style: only the
// conversions, the reduction, transposes and exp2 differ per ISA). Include only from those files.
//
// Work item = (sequence, query tile of qt tokens, KV head, KV split). Its rows are the qt x group query
// heads that share the KV head, so each K/V tile is read once for every row: for each tile of kTile keys
//   S[rows][keys] = Q K^T        (reduction register tiles, or broadcast tiles against K transposed)
//   online softmax in base 2     (Q is pre-scaled by scale*log2(e); or S scaled after, bf16 Q)
//   acc[rows][dv] += P V         (broadcast register tiles GR rows x kNV vectors)
// The direct path (run_items_fast, traits with kFast) reads cache rows in place; the portable one
// (run_item) dequantizes each tile into fp32 scratch first. See README.md for when each form is used.
// Threads take contiguous runs of items of about equal cost (rows x keys), so causal prefill and mixed
// context lengths balance.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "kernels/attention/attention.hpp"
#include "kernels/common/partition.hpp"

// Everything here has internal linkage (anonymous namespace): each ISA file compiles its own copy with
// its own flags, and a shared inline definition could otherwise be merged by the linker into an AVX-512
// body called on a CPU without AVX-512.
namespace infermark::attn_core {
namespace {

inline constexpr std::int64_t kTile = 32;        // keys per tile (K tile of 32 x 576 fp32 stays in L2)
inline constexpr std::int64_t kMaxHeadChunk = 16;  // KV heads per multi-head decode item
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
  std::int64_t rows_pad, q, qb, k, kt, v, vb, s, pb, acc, m, l, ks, vs, rlo, total;  // offsets / sizes in floats
};

inline workspace_layout workspace(const attention_desc& d) {
  workspace_layout w{};
  const std::int64_t group = d.hq / d.hkv;
  w.rows_pad = round_up(q_tile(d) * group, 16);  // whole vectors of rows (row-lane path)
  std::int64_t off = 0;
  auto take = [&](std::int64_t n) {
    const std::int64_t at = off;
    off += round_up(n, 16);  // 64-byte aligned pieces
    return at;
  };
  w.q = take(w.rows_pad * d.dk);
  w.qb = take(w.rows_pad * d.dk / 2 + 1);  // bf16 copy of Q (vdpbf16ps paths)
  w.k = take(kTile * d.dk);
  w.kt = take(kTile * d.dk);  // K tile transposed to [dk (or dk/2 bf16 pairs)][kTile]
  w.v = take(kTile * d.dv);
  w.vb = take(kTile * d.dv);  // row-lane path, int8 / fp8 cache: V rows converted to bf16
  w.s = take(w.rows_pad * kTile);
  w.pb = take(w.rows_pad * kTile / 2);  // P rounded to bf16 (bf16 P.V path)
  w.acc = take(w.rows_pad * d.dv);
  w.m = take(w.rows_pad);
  w.l = take(w.rows_pad);
  w.ks = take(kTile);  // per-token K / V scales of the tile (direct int8 / fp8 reads)
  w.vs = take(kTile);
  w.rlo = take(3 * w.rows_pad);  // row-lane path: int32 first / last visible key per row, acc factors
  w.total = off;
  return w;
}

// Split-KV partial states: [total_q][hq][splits] of (m, l) and of acc[dv].
inline std::int64_t partial_floats(const attention_desc& d) {
  return d.splits > 1 ? round_up(d.total_q * d.hq * d.splits * (d.dv + 2), 16) : 0;
}

// Per-head state of a multi-head decode item: the direct path's q (4 rows), acc (4 rows), m, l, or the
// two-lanes-per-row path's Q^T [dk / 4][16], O^T [dv / 2][16], m [16], l [16].
inline std::int64_t head_state_floats(const attention_desc& d) {
  return round_up(std::max(4 * (d.dk + d.dv) + 8, 4 * d.dk + 8 * d.dv + 32), 16);
}
// Per worker: the workspace, then the state of up to kMaxHeadChunk heads of a multi-head decode item.
inline std::int64_t worker_floats(const attention_desc& d) {
  return workspace(d).total + std::min(d.hkv, kMaxHeadChunk) * head_state_floats(d);
}
inline std::size_t scratch_bytes(const attention_desc& d, int nthr) {
  return static_cast<std::size_t>(partial_floats(d) + worker_floats(d) * nthr) * sizeof(float);
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
  std::int64_t kvh_end = 0;  // KV heads [kvh, kvh_end) when several heads share the item (decode)
};

// Calls f(item) for every item of thread ithr, in order. Two passes: total cost, then the share.
// KV heads per item: head_chunk(d, rows) consecutive heads when an item of `rows` rows per head takes
// several (0 or 1: one).
template <class F, class H>
void for_each_item(const attention_desc& d, const attention_args& a, int ithr, int nthr, F&& f, H&& head_chunk) {
  const std::int64_t qt = q_tile(d), group = d.hq / d.hkv;
  auto visit = [&](auto&& g) {
    for (std::int64_t b = 0; b < d.batch; ++b) {
      const std::int64_t q_len = a.q_start[b + 1] - a.q_start[b], ctx = a.ctx_lens[b];
      for (std::int64_t q0 = 0; q0 < q_len; q0 += qt) {
        const std::int64_t q1 = std::min(q_len, q0 + qt);
        const std::int64_t lo = attention_visible(d, ctx - q_len + q0).lo, hi = ctx - q_len + q1;
        const std::int64_t tiles = div_up(hi - lo, kTile);
        const std::int64_t hc = std::max<std::int64_t>(1, head_chunk((q1 - q0) * group));
        for (std::int64_t h = 0; h < d.hkv; h += hc)
          for (std::int64_t s = 0; s < d.splits; ++s) {
            const auto [t0, t1] = balance(tiles, static_cast<int>(s), static_cast<int>(d.splits));
            const std::int64_t klo = lo + t0 * kTile, khi = std::min(hi, lo + t1 * kTile);
            const std::int64_t h1 = std::min(d.hkv, h + hc);
            const double cost = static_cast<double>((q1 - q0) * group * (h1 - h)) * static_cast<double>(std::max<std::int64_t>(khi - klo, 0) + kTile);
            g(item{b, q0, q1, h, klo, std::max(klo, khi), s, h1}, cost);
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

// Calls f(t, count, slot) for each run of keys [k0 + t, k0 + t + count) of (sequence, KV head) that
// sits in one cache block, whose first slot (row index into the cache) is `slot`. One division per
// call: per-key divisions by the block size cost as much as the decode tile's arithmetic.
template <class F>
void for_each_run(const attention_desc& d, const attention_args& a, const item& it, std::int64_t k0, std::int64_t n, F&& f) {
  const std::int32_t* bt = a.block_table + it.b * d.max_blocks_per_seq;
  std::int64_t blk = k0 / d.block_size, off = k0 - blk * d.block_size;
  for (std::int64_t t = 0; t < n; ++blk, off = 0) {
    const std::int64_t count = std::min(n - t, d.block_size - off);
    f(t, count, (static_cast<std::int64_t>(bt[blk]) * d.hkv + it.kvh) * d.block_size + off);
    t += count;
  }
}

// Dequantizes the first `len` values of the cache rows (of `dim` values) of keys [k0, k0+n) of
// (sequence, KV head) into dst[n][len] fp32.
template <class S>
void gather_rows(const attention_desc& d, const attention_args& a, const void* cache, const float* scale, std::int64_t dim,
                 const item& it, std::int64_t k0, std::int64_t n, float* dst, std::int64_t len = 0) {
  if (len == 0) len = dim;
  const std::size_t es = dtype_size(d.kv_dt);
  for_each_run(d, a, it, k0, n, [&](std::int64_t t0, std::int64_t count, std::int64_t slot0) {
    for (std::int64_t i = 0; i < count; ++i) {
      const std::int64_t slot = slot0 + i;
      const auto* src = static_cast<const unsigned char*>(cache) + static_cast<std::size_t>(slot * dim) * es;
      S::dequant(d.kv_dt, src, scale != nullptr ? scale[slot] : 1.0f, dst + (t0 + i) * len, len);
    }
  });
}

// Prefetches the cache rows of keys [k0, k0+n) into L2: blocks are scattered few-KiB pieces, which the
// hardware prefetchers do not follow across. L2 rather than L1 because the L1 has few miss buffers: on
// this host (Zen 4) one core streams shuffled 4-8 KiB blocks at 9-10 GB/s with L1 prefetches (or none)
// and 15-18 GB/s with L2 prefetches issued ~32 KiB ahead (sequential: 24 GB/s).
inline constexpr std::int64_t kPrefetchBytes = 32 << 10;
inline void prefetch_rows(const attention_desc& d, const attention_args& a, const void* cache, std::int64_t dim, const item& it,
                          std::int64_t k0, std::int64_t n) {
  const std::int64_t row_bytes = dim * static_cast<std::int64_t>(dtype_size(d.kv_dt));
  // Row by row, each through the block table (shift and mask for the usual power-of-two block sizes):
  // measured, the same lines issued per contiguous block run in one tight loop stream at 9 GB/s per
  // core instead of 15 (the L2 appears to drop software prefetches that arrive back to back).
  const std::int32_t* bt = a.block_table + it.b * d.max_blocks_per_seq;
  const bool pow2 = (d.block_size & (d.block_size - 1)) == 0;
  const int sh = __builtin_ctzll(static_cast<unsigned long long>(d.block_size));
  for (std::int64_t t = 0; t < n; ++t) {
    const std::int64_t j = k0 + t;
    const std::int64_t blk = pow2 ? j >> sh : j / d.block_size;
    const std::int64_t slot = (static_cast<std::int64_t>(bt[blk]) * d.hkv + it.kvh) * d.block_size + (j - blk * d.block_size);
    const auto* src = static_cast<const char*>(cache) + slot * row_bytes;
    for (std::int64_t off = 0; off < row_bytes; off += 64) __builtin_prefetch(src + off, 0, 2);  // T1
  }
}
// Tiles to prefetch ahead so that about kPrefetchBytes of K/V are in flight.
inline std::int64_t prefetch_tiles(const attention_desc& d) {
  const std::int64_t tile_bytes = kTile * (d.dk + (d.v_in_k ? 0 : d.dv)) * static_cast<std::int64_t>(dtype_size(d.kv_dt));
  return std::clamp<std::int64_t>(kPrefetchBytes / tile_bytes, 1, 8);
}
// Prefetches what tile k0 needs `ahead` tiles later, in four parts (0: K of its first half of keys,
// 1: K second half, 2: V first half, 3: V second half) issued between the phases of tile k0: a burst of
// several hundred prefetches at once is what the spreading avoids. At the item's first tile the tiles
// before are prefetched at once.
inline void prefetch_ahead(const attention_desc& d, const attention_args& a, const item& it, std::int64_t k0, std::int64_t ahead,
                           int part, bool lead = true) {
  if (lead && k0 == it.klo && part == 0)
    for (std::int64_t p = k0 + kTile; p < k0 + ahead * kTile && p < it.khi; p += kTile) {
      const std::int64_t nn = std::min(kTile, it.khi - p);
      prefetch_rows(d, a, a.k_cache, d.dk, it, p, nn);
      if (!d.v_in_k) prefetch_rows(d, a, a.v_cache, d.dv, it, p, nn);
    }
  const std::int64_t p = k0 + ahead * kTile + (part % 2) * (kTile / 2);
  if (p >= it.khi) return;
  const std::int64_t nn = std::min(kTile / 2, it.khi - p);
  if (part < 2) prefetch_rows(d, a, a.k_cache, d.dk, it, p, nn);
  else if (!d.v_in_k) prefetch_rows(d, a, a.v_cache, d.dv, it, p, nn);
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

// Writes the item's rows: out = acc / l (with the sink in the denominator), or with splits the partial
// state (m, l, acc) of this split.
// Masks the tile's scores S[rows_pad][kTile] of keys [k0, k0 + nt) (causal / window; entries past nt
// and pad rows too), then the online softmax in base 2: S becomes P, m / l / acc are rescaled. Row r is
// query position p0 + r / group.
template <class S>
void softmax_tile(const attention_desc& d, float* scores, float* m, float* l, float* acc, std::int64_t rows, std::int64_t rows_pad,
                  std::int64_t p0, std::int64_t k0, std::int64_t nt) {
  const std::int64_t group = d.hq / d.hkv;
  for (std::int64_t r = 0; r < rows_pad; ++r) {
    float* s = scores + r * kTile;
    if (r >= rows) {
      std::fill(s, s + kTile, 0.0f);
      continue;
    }
    const auto vis = attention_visible(d, p0 + r / group);
    const std::int64_t a0 = std::clamp<std::int64_t>(vis.lo - k0, 0, nt), a1 = std::clamp<std::int64_t>(vis.hi - k0, 0, nt);
    for (std::int64_t t = 0; t < a0; ++t) s[t] = kNegInf;
    for (std::int64_t t = a1; t < kTile; ++t) s[t] = kNegInf;
    const float m_tile = S::row_max(s);
    const float m_new = std::max(m[r], m_tile);
    if (m_new == kNegInf) {  // nothing visible to this row yet: contributes nothing
      std::fill(s, s + kTile, 0.0f);
      continue;
    }
    const float sum = S::row_exp2(s, m_new);
    if (m_new == m[r]) {  // the common case once a row has seen some keys: nothing to rescale
      l[r] += sum;
      continue;
    }
    const float corr = m[r] == kNegInf ? 0.0f : std::exp2(m[r] - m_new);
    l[r] = l[r] * corr + sum;
    m[r] = m_new;
    if (corr != 1.0f) S::scale(acc + r * d.dv, corr, d.dv);
  }
}

// acc / m / l hold rows [r_first, r_first + rows) of the item.
template <class S>
void finish_rows(const attention_desc& d, const attention_args& a, const item& it, const float* acc, const float* m,
                 const float* l, std::int64_t rows, std::int64_t row0, float* partial, std::int64_t r_first = 0) {
  const std::int64_t group = d.hq / d.hkv;
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::int64_t row = row0 + (r_first + r) / group, head = it.kvh * group + (r_first + r) % group;
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
  const std::int64_t ahead = prefetch_tiles(d);
  for (std::int64_t k0 = it.klo; k0 < it.khi; k0 += kTile) {
    const std::int64_t nt = std::min(kTile, it.khi - k0);
    const std::int64_t nt_pad = round_up(nt, S::kAcc / gr);
    for (int part = 0; part < 4; ++part) prefetch_ahead(d, a, it, k0, ahead, part);
    gather_rows<S>(d, a, a.k_cache, a.k_scale, d.dk, it, k0, nt, ws + L.k);
    std::fill(ws + L.k + nt * d.dk, ws + L.k + nt_pad * d.dk, 0.0f);
    if (gr == 4) tile_products<S, 4>(d, ws, L, rows_pad, nt_pad, nullptr, 0, true);
    else if (gr == 2) tile_products<S, 2>(d, ws, L, rows_pad, nt_pad, nullptr, 0, true);
    else tile_products<S, 1>(d, ws, L, rows_pad, nt_pad, nullptr, 0, true);
    softmax_tile<S>(d, ws + L.s, m, l, acc, rows, rows_pad, ctx - q_len + it.q0, k0, nt);
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
  finish_rows<S>(d, a, it, acc, m, l, rows, row0, partial);
}

// ---- The direct path (traits with kFast: AVX-512) ---------------------------------------------------
// No copy of the cache where none is needed: each tile keeps pointers to its kTile cache rows and the
// products read them in place, converting in registers (bf16 shift, int8 / fp8 convert; the per-token
// scale of int8 / fp8 multiplies the score and the probability instead of every value). That halves the
// traffic through L1 in decode, where each cache row is used by 1-4 query rows. With many rows per item
// (prefill, large GQA groups, MLA with many heads) a low-precision tile is still dequantized once into
// scratch, and S = Q K^T is computed against the K tile transposed to [dk][kTile] -- broadcast-FMA
// register tiles of up to 12 rows x 32 keys with no horizontal reduction. bf16 Q with a bf16 cache uses
// vdpbf16ps for S on unscaled bf16 Q: products of two bf16 are exact in fp32 and the pairs accumulate
// in fp32, so S keeps the fp32 path's accuracy.
struct path_opts {
  bool bf16_dot = false;  // CPU has vdpbf16ps (AVX512_BF16) under the ISA cap
  bool bf16_pv = false;   // P.V with vdpbf16ps on P rounded to bf16 (bf16 Q and cache; "avx512:bf16dot")
};

// ---- bf16 P.V (vdpbf16ps) ----
// V rows of a tile are interleaved by key pairs, (V[2u][c], V[2u+1][c]) in one 32-bit lane, with
// vpunpck{l,h}wd per 32 columns: the "lo" vector holds columns 8L+0..3 of each 128-bit lane L, the "hi"
// vector columns 8L+4..7. acc keeps that column order (lane j of lo: column 8(j/4) + j%4; of hi:
// 8(j/4) + 4 + j%4) until the item ends.
inline std::int64_t pv_perm_col(std::int64_t c) {  // original column of position c in a 32-column block
  const std::int64_t j = c % 16;
  return (c / 32) * 32 + (j / 4) * 8 + (c % 32 >= 16 ? 4 : 0) + j % 4;
}

// acc[MR rows][NV vectors at position c] += P2[rows][u] . Vp[u][c...] over np key pairs.
template <class S, int MR, int NV>
void pv_dp(const float* pb, const float* vp, std::int64_t dv, std::int64_t c, std::int64_t np, float* acc) {
  typename S::vf o[MR][NV];
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < NV; ++j) o[r][j] = S::load(acc + r * dv + c + j * S::W);
  for (std::int64_t u = 0; u < np; ++u) {
    typename S::vf vv[NV];
    for (int j = 0; j < NV; ++j) vv[j] = S::load(vp + u * dv + c + j * S::W);
    for (int r = 0; r < MR; ++r) {
      const auto b = S::bcast32(pb + r * (kTile / 2) + u);
      for (int j = 0; j < NV; ++j) o[r][j] = S::dp(o[r][j], b, vv[j]);
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int j = 0; j < NV; ++j) S::store(acc + r * dv + c + j * S::W, o[r][j]);
}

template <class T>
struct type_tag {
  using type = T;
};
template <class F>
decltype(auto) with_kv_type(dtype dt, F&& f) {
  switch (dt) {
    case dtype::bf16: return f(type_tag<bf16_t>{});
    case dtype::int8: return f(type_tag<std::int8_t>{});
    case dtype::fp8: return f(type_tag<fp8_t>{});
    default: return f(type_tag<float>{});
  }
}

// Calls f(std::integral_constant<int, MR>) for MR = n (1..12).
template <class F>
void with_rows(std::int64_t n, F&& f) {
  switch (n) {
    case 1: f(std::integral_constant<int, 1>{}); break;
    case 2: f(std::integral_constant<int, 2>{}); break;
    case 3: f(std::integral_constant<int, 3>{}); break;
    case 4: f(std::integral_constant<int, 4>{}); break;
    case 5: f(std::integral_constant<int, 5>{}); break;
    case 6: f(std::integral_constant<int, 6>{}); break;
    case 7: f(std::integral_constant<int, 7>{}); break;
    case 8: f(std::integral_constant<int, 8>{}); break;
    case 9: f(std::integral_constant<int, 9>{}); break;
    case 10: f(std::integral_constant<int, 10>{}); break;
    case 11: f(std::integral_constant<int, 11>{}); break;
    default: f(std::integral_constant<int, 12>{}); break;
  }
}
inline constexpr std::int64_t kBcastRows = 12;  // rows per broadcast-FMA register tile (24 accumulators)

// Row pointers (and, for int8 / fp8, scales times the trait's conversion factor) of keys [k0, k0+nt);
// rows past nt repeat row 0 (their scores are masked).
template <class S>
void tile_rows(const attention_desc& d, const attention_args& a, const void* cache, const float* scale, std::int64_t dim, const item& it,
               std::int64_t k0, std::int64_t nt, const void** rows, float* sc) {
  const std::int64_t row_bytes = dim * static_cast<std::int64_t>(dtype_size(d.kv_dt));
  const float factor = S::kv_factor(d.kv_dt);
  for_each_run(d, a, it, k0, nt, [&](std::int64_t t0, std::int64_t count, std::int64_t slot0) {
    for (std::int64_t i = 0; i < count; ++i) {
      rows[t0 + i] = static_cast<const char*>(cache) + (slot0 + i) * row_bytes;
      if (sc != nullptr) sc[t0 + i] = scale != nullptr ? scale[slot0 + i] * factor : 1.0f;
    }
  });
  for (std::int64_t t = nt; t < kTile; ++t) {
    rows[t] = rows[0];
    if (sc != nullptr) sc[t] = sc[0];
  }
}

// S[r][t0 + t] for GR rows x TR keys read in place (type KT, converted in registers), one reduction.
template <class S, int GR, class KT>
void qk_reduce(const float* q, std::int64_t dk, const void* const* krow, float* s) {
  constexpr int TR = S::kAcc / GR;
  const KT* k[TR];
  for (int t = 0; t < TR; ++t) k[t] = static_cast<const KT*>(krow[t]);
  typename S::vf acc[S::kAcc];
  for (auto& x : acc) x = S::zero();
  for (std::int64_t i = 0; i < dk; i += S::W) {
    typename S::vf kv[TR];
    for (int t = 0; t < TR; ++t) kv[t] = S::cvt(k[t] + i);
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

// Same with bf16 Q (qb, unscaled) and bf16 K: vdpbf16ps over pairs, times `post`.
template <class S, int GR>
void qk_reduce_dp(const bf16_t* qb, std::int64_t dk, const void* const* krow, float* s, float post) {
  constexpr int TR = S::kAcc / GR;
  const bf16_t* k[TR];
  for (int t = 0; t < TR; ++t) k[t] = static_cast<const bf16_t*>(krow[t]);
  typename S::vf acc[S::kAcc];
  for (auto& x : acc) x = S::zero();
  for (std::int64_t i = 0; i < dk; i += 2 * S::W) {
    typename S::vf kv[TR];
    for (int t = 0; t < TR; ++t) kv[t] = S::load_bits(k[t] + i);
    for (int r = 0; r < GR; ++r) {
      const auto qv = S::load_bits(qb + r * dk + i);
      for (int t = 0; t < TR; ++t) acc[r * TR + t] = S::dp(acc[r * TR + t], qv, kv[t]);
    }
  }
  alignas(64) float out[S::kAcc];
  S::reduce(acc, out);
  for (int r = 0; r < GR; ++r)
    for (int t = 0; t < TR; ++t) s[r * kTile + t] = out[r * TR + t] * post;
}

// S[MR rows][kTile] = Q . KT with KT [E][kTile] 32-bit elements (fp32 values, or bf16 pairs when DP),
// q rows of E 32-bit elements at stride ldq; broadcast one q element, two key vectors per step.
template <class S, int MR, bool DP>
void qk_bcast(const float* q, std::int64_t ldq, const float* kt, std::int64_t e_count, float* s, float post) {
  static_assert(kTile == 2 * S::W);
  typename S::vf acc[MR][2];
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = S::zero();
  for (std::int64_t e = 0; e < e_count; ++e) {
    const auto k0 = S::load(kt + e * kTile), k1 = S::load(kt + e * kTile + S::W);
    for (int r = 0; r < MR; ++r) {
      const auto b = S::bcast32(q + r * ldq + e);
      if constexpr (DP) {
        acc[r][0] = S::dp(acc[r][0], b, k0);
        acc[r][1] = S::dp(acc[r][1], b, k1);
      } else {
        acc[r][0] = S::fma(b, k0, acc[r][0]);
        acc[r][1] = S::fma(b, k1, acc[r][1]);
      }
    }
  }
  const auto pv = S::set1(post);
  for (int r = 0; r < MR; ++r) {
    S::store(s + r * kTile, DP ? S::mul(acc[r][0], pv) : acc[r][0]);
    S::store(s + r * kTile + S::W, DP ? S::mul(acc[r][1], pv) : acc[r][1]);
  }
}

// acc[GR rows][NV vectors at column c] += P[rows][t] * V[t][c...] over n keys, V rows read in place.
template <class S, int GR, int NV, class KT>
void pv_rows(const float* p, const void* const* vrow, std::int64_t c, std::int64_t n, float* acc, std::int64_t dv) {
  typename S::vf o[GR][NV];
  for (int r = 0; r < GR; ++r)
    for (int j = 0; j < NV; ++j) o[r][j] = S::load(acc + r * dv + j * S::W);
  for (std::int64_t t = 0; t < n; ++t) {
    const KT* v = static_cast<const KT*>(vrow[t]) + c;
    typename S::vf vv[NV];
    for (int j = 0; j < NV; ++j) vv[j] = S::cvt(v + j * S::W);
    for (int r = 0; r < GR; ++r) {
      const auto pr = S::set1(p[r * kTile + t]);
      for (int j = 0; j < NV; ++j) o[r][j] = S::fma(pr, vv[j], o[r][j]);
    }
  }
  for (int r = 0; r < GR; ++r)
    for (int j = 0; j < NV; ++j) S::store(acc + r * dv + j * S::W, o[r][j]);
}

// between() runs after each register tile (the decode path spreads its prefetches over them).
template <class S, int GR, class KT, class F>
void pv_all(const attention_desc& d, const float* p, const void* const* vrow, std::int64_t rows_pad, std::int64_t nt, float* acc,
            F&& between) {
  constexpr int NV = S::kNV;
  for (std::int64_t r = 0; r < rows_pad; r += GR) {
    std::int64_t c = 0;
    for (; c + NV * S::W <= d.dv; c += NV * S::W) {
      pv_rows<S, GR, NV, KT>(p + r * kTile, vrow, c, nt, acc + r * d.dv + c, d.dv);
      between();
    }
    for (; c < d.dv; c += S::W) pv_rows<S, GR, 1, KT>(p + r * kTile, vrow, c, nt, acc + r * d.dv + c, d.dv);
  }
}

// ---- The row-lane path (bf16 Q, bf16 cache, bf16 P.V; many rows: MLA decode, large GQA groups) ----
// One query row per vector lane, so both products are GEMM microkernels that broadcast from memory and
// never reduce horizontally:
//   S^T[t][rows] = sum_e K[t] pair e (broadcast, read in place) . Q^T[e][rows]   (Q^T packed per item)
//   O^T[c][rows] += sum_u Vp[u][c] (broadcast; key pairs interleaved) . P^T[u][rows] (P pairs per row)
// and the online softmax is vertical (a row's max / sum over keys is an elementwise max / sum over the
// tile's score vectors). No K transposition, no per-row scalar softmax. O^T is transposed back at the end.

// S^T[t][MR vectors of rows] for T keys: e_count broadcasts of H bf16 pairs per K row (H = 2: lane l gets
// pair l % 2 of each 64-bit broadcast, see run_item_lanes), times `post` and, with key_scale, times key t's
// scale key_scale[t].
template <class S, int MR, int T, int H>
void qk_lanes(const float* qt, std::int64_t ldq, const void* const* krow, std::int64_t e_count, float* st, std::int64_t lds, float post,
              const float* key_scale) {
  const char* k[T];
  for (int t = 0; t < T; ++t) k[t] = static_cast<const char*>(krow[t]);
  typename S::vf acc[T][MR];
  for (int t = 0; t < T; ++t)
    for (int m = 0; m < MR; ++m) acc[t][m] = S::zero();
  for (std::int64_t e = 0; e < e_count; ++e) {
    typename S::vf qv[MR];
    for (int m = 0; m < MR; ++m) qv[m] = S::load(qt + e * ldq + m * S::W);
    for (int t = 0; t < T; ++t) {
      const auto b = S::template bcast_pairs<H>(k[t] + 4 * H * e);
      for (int m = 0; m < MR; ++m) acc[t][m] = S::dp(acc[t][m], b, qv[m]);
    }
  }
  const auto pv = S::set1(post);
  for (int t = 0; t < T; ++t) {
    const auto f = key_scale != nullptr ? S::template bcast_pairs<H>(key_scale + t * H) : S::set1(1.0f);
    for (int m = 0; m < MR; ++m) {
      const auto x = S::mul(acc[t][m], pv);
      S::store(st + t * lds + m * S::W, key_scale != nullptr ? S::mul(x, f) : x);
    }
  }
}

// O^T[NC columns][MR vectors of rows] (times corr[m] first when corr) += over np key pairs u
// Vp[u][c] . P^T[u][rows], broadcasting H adjacent 32-bit elements of Vp (H = 2: lane l gets element l % 2).
template <class S, int MR, int NC, int H>
void pv_lanes(const float* pp, std::int64_t ldp, const float* vp, std::int64_t ldv, std::int64_t np, float* acc, std::int64_t lda,
              const float* corr) {
  typename S::vf o[NC][MR];
  for (int j = 0; j < NC; ++j)
    for (int m = 0; m < MR; ++m) {
      o[j][m] = S::load(acc + j * lda + m * S::W);
      if (corr != nullptr) o[j][m] = S::mul(o[j][m], S::load(corr + m * S::W));
    }
  for (std::int64_t u = 0; u < np; ++u) {
    typename S::vf p[MR];
    for (int m = 0; m < MR; ++m) p[m] = S::load(pp + u * ldp + m * S::W);
    for (int j = 0; j < NC; ++j) {
      const auto b = S::template bcast_pairs<H>(vp + (u * ldv + j) * H);
      for (int m = 0; m < MR; ++m) o[j][m] = S::dp(o[j][m], b, p[m]);
    }
  }
  for (int j = 0; j < NC; ++j)
    for (int m = 0; m < MR; ++m) S::store(acc + j * lda + m * S::W, o[j][m]);
}

// Calls f(r0, integral_constant<MR>) over the row vectors [0, nv) in chunks of up to 3 (4 as 2 + 2).
template <class F>
void row_vector_chunks(std::int64_t nv, F&& f) {
  for (std::int64_t r = 0; r < nv;) {
    const std::int64_t rem = nv - r;
    if (rem == 1) f(r, std::integral_constant<int, 1>{}), r += 1;
    else if (rem == 2 || rem == 4) f(r, std::integral_constant<int, 2>{}), r += 2;
    else f(r, std::integral_constant<int, 3>{}), r += 3;
  }
}

// The online-softmax step of one vector of lanes: mx is the lanes' max over the tile's n score vectors
// s[t * lds] (masked ones -inf), which become 2^(s - m); m and l are updated and corr gets the factor
// acc must be scaled by (1 where m did not move). Returns whether m moved in any lane.
template <class S>
bool online_update(float* s, std::int64_t lds, std::int64_t n, typename S::vf mx, float* m, float* l, float* corr) {
  const auto m_old = S::load(m), m_new = S::max(m_old, mx), m_use = S::finite_or_zero(m_new);
  auto sum = S::zero();
  for (std::int64_t t = 0; t < n; ++t) {
    const auto p = S::exp2(S::sub(S::load(s + t * lds), m_use));
    S::store(s + t * lds, p);
    sum = S::add(sum, p);
  }
  auto lv = S::load(l);
  const bool moved = S::any_ne(m_new, m_old);
  if (moved) {
    const auto c = S::exp2(S::sub(m_old, m_use));  // 0 for rows that had seen nothing
    lv = S::fma(lv, c, sum);
    S::store(corr, c);
  } else {
    lv = S::add(lv, sum);
    S::store(corr, S::set1(1.0f));
  }
  S::store(l, lv);
  S::store(m, m_new);
  return moved;
}

// Online softmax of S^T[nt keys][nv * W rows] (ld lds) in base 2, rows in lanes; keys outside a row's
// [rlo, rhi] get -inf when `masked`. S^T becomes P^T; corr[rows] is the factor acc must be scaled by.
// Returns whether any row's max moved (acc needs corr).
template <class S>
bool softmax_lanes(float* st, std::int64_t lds, std::int64_t nv, float* m, float* l, float* corr, std::int64_t k0, std::int64_t nt,
                   const std::int32_t* rlo, const std::int32_t* rhi, bool masked) {
  bool rescale = false;
  for (std::int64_t v = 0; v < nv; ++v) {
    float* s = st + v * S::W;
    auto mx = S::neg_inf();
    for (std::int64_t t = 0; t < nt; ++t) {
      auto x = S::load(s + t * lds);
      if (masked) {
        x = S::mask_outside(x, static_cast<std::int32_t>(k0 + t), rlo + v * S::W, rhi + v * S::W);
        S::store(s + t * lds, x);
      }
      mx = S::max(mx, x);
    }
    rescale |= online_update<S>(s, lds, nt, mx, m + v * S::W, l + v * S::W, corr + v * S::W);
    if (nt % 2 != 0) S::store(s + nt * lds, S::zero());  // partner of the last key in a pair
  }
  return rescale;
}

// softmax_lanes for two lanes per row with the keys packed in pairs (run_item_lanes<S, true>): vector u of
// sp holds row r's score of key 2u in lane 2r and of key 2u + 1 in lane 2r + 1 (np vectors for nt keys);
// m and corr are the row's in both its lanes, l the partial sum over the keys of the lane's parity (the
// row's l is the sum of its two lanes). sp becomes the probabilities; an odd nt's missing key gets 0.
template <class S>
bool softmax_pairs(float* sp, std::int64_t np, float* m, float* l, float* corr, std::int64_t k0, std::int64_t nt, const std::int32_t* rlo,
                   const std::int32_t* rhi, bool masked) {
  auto mx = S::neg_inf();
  for (std::int64_t u = 0; u < np; ++u) {
    auto x = S::load(sp + u * S::W);
    if (masked) x = S::mask_outside_pairs(x, static_cast<std::int32_t>(k0 + 2 * u), rlo, rhi);
    if (2 * u + 1 == nt) x = S::odd_neg_inf(x);
    S::store(sp + u * S::W, x);
    mx = S::max(mx, x);
  }
  return online_update<S>(sp, S::W, np, S::pair_max(mx), m, l, corr);
}

// Software prefetch (into L2) of the cache rows of a later tile, spread evenly over the microkernel
// calls of the current one (step() between calls): bursts of a few hundred prefetches at once leave
// most of them dropped or queued behind each other, and the demand loads then wait on DRAM.
struct row_prefetcher {
  const char* begin[4 * kTile];  // contiguous byte ranges (a block run of rows each; K and V)
  const char* end[4 * kTile];
  std::int64_t n = 0, r = 0, per_step = 1;
  const char* at = nullptr;
  std::int64_t add(const attention_desc& d, const attention_args& a, const void* cache, std::int64_t dim, const item& it, std::int64_t k0,
                   std::int64_t nt) {
    const std::int64_t row_bytes = dim * static_cast<std::int64_t>(dtype_size(d.kv_dt));
    for_each_run(d, a, it, k0, nt, [&](std::int64_t, std::int64_t count, std::int64_t slot0) {
      begin[n] = static_cast<const char*>(cache) + slot0 * row_bytes;
      end[n] = begin[n] + count * row_bytes;
      ++n;
    });
    return nt * div_up(row_bytes, 64);
  }
  // Targets the rows of keys [k0, k0 + nt) (K, and V unless v_in_k) of the item's KV head, issued over
  // `steps` calls of step().
  void start(const attention_desc& d, const attention_args& a, const item& it, std::int64_t k0, std::int64_t nt, std::int64_t steps) {
    n = r = 0;
    std::int64_t lines = add(d, a, a.k_cache, d.dk, it, k0, nt);
    if (!d.v_in_k) lines += add(d, a, a.v_cache, d.dv, it, k0, nt);
    per_step = div_up(lines, std::max<std::int64_t>(steps, 1));
    at = begin[0];
  }
  // Per contiguous run, not per line: a check per line cost one core 4-5 ns per KV-head key in GQA-8 decode
  // on cache-resident data (35 against 39 ns per key, pinned, four rounds; cold, 2 threads: 9.6-10.2
  // against 10.2-11.2 ms, three rounds).
  void step() {
    for (std::int64_t left = per_step; left > 0 && r < n;) {
      const std::int64_t k = std::min<std::int64_t>(left, (end[r] - at + 63) / 64);
      for (std::int64_t i = 0; i < k; ++i) __builtin_prefetch(at + 64 * i, 0, 2);  // T1: into L2
      at += 64 * k;
      left -= k;
      if (at >= end[r] && ++r < n) at = begin[r];
    }
  }
  void finish() {
    while (r < n) step();
  }
};

inline constexpr std::int64_t kLaneRows = 12;  // rows from which the row-lane path is taken (of 16 lanes)

// Split = false: lane l is row l of the item. Split = true (half a vector of rows: GQA group 8 decode, or
// two tokens of group 4): each row has two lanes, so the 64-bit broadcasts of the cache rows read in
// place feed every lane without any repacking of K:
//   S: lane 2r + j sums Q[r] pairs 2e + j against K pairs 2e + j (one 64-bit broadcast of a K row: pairs
//      2e, 2e + 1), over half the pairs; S::pack_pair adds each key's two halves and packs two keys per
//      vector (lane 2r: key 2u, 2r + 1: key 2u + 1), so the softmax (softmax_pairs) takes one vector
//      per two keys (GQA-8 decode cold, 2 threads: 9.9-10.1 against 10.0-10.5 ms, three rounds);
//   P.V: lane 2r + h accumulates row r's column position 2c + h (one 64-bit broadcast of V key pairs
//      [u][dv]: positions 2c, 2c + 1) against row r's P pair, which both lanes hold.
// (Before, two KV heads shared the vectors, with each tile's K rows and V pairs of the two heads
// interleaved per 32-bit element.) Split items take up to kMaxHeadChunk KV heads (it0.kvh_end), each with
// its own Q^T / O^T / m / l in `state`, taking turns tile by tile as in run_items_fast: the heads of one
// cache block are adjacent, so a worker reads runs of heads x 4-8 KiB instead of scattered pieces.
template <class S, bool Split>
void run_item_lanes(const attention_desc& d, const attention_args& a, const item& it0, float* ws, float* state, float* partial) {
  constexpr int X = Split ? 2 : 1;  // lanes per row, and bf16 pairs per broadcast
  const workspace_layout L = workspace(d);
  // KV heads of the item: several only for Split items (head_chunk), whose state fits head_state_floats.
  const std::int64_t heads = Split ? std::max<std::int64_t>(1, it0.kvh_end - it0.kvh) : 1;
  const std::int64_t group = d.hq / d.hkv, rows = (it0.q1 - it0.q0) * group, lanes = rows * X;
  const std::int64_t nv = div_up(lanes, S::W), ld = nv * S::W;  // row vectors; stride of every [x][lanes] array
  const std::int64_t q_len = a.q_start[it0.b + 1] - a.q_start[it0.b], ctx = a.ctx_lens[it0.b];
  const std::int64_t row0 = a.q_start[it0.b] + it0.q0, p0 = ctx - q_len + it0.q0;
  const std::int64_t e_count = d.dk / 2 / X;  // broadcasts per K row
  const std::int64_t npos = d.dv / X;        // acc vectors per row vector
  // Per head (one: in the workspace; several: head_state_floats each in `state`):
  struct head_arrays {
    float* qt;   // Q^T [e_count][ld]: bf16 pairs (Split: lane 2r + j holds row r's pair X e + j)
    float* acc;  // O^T [npos][ld]: position c (Split: 2c + lane % 2) in pair_rows column order (pv_perm_col)
    float* m;
    float* l;
  };
  auto arrays = [&](std::int64_t h) -> head_arrays {
    if (heads == 1) return {ws + L.q, ws + L.acc, ws + L.m, ws + L.l};
    float* at = state + h * head_state_floats(d);
    return {at, at + e_count * ld, at + (e_count + npos) * ld, at + (e_count + npos + 1) * ld};
  };
  float* st = ws + L.s;     // S^T / P^T [kTile][ld]
  float* pp = ws + L.pb;    // P^T pairs [kTile / 2][ld]
  float* vp = ws + L.v;     // V pairs [dv / 16][kTile / 2][16] (Split: [kTile / 2][dv])
  // int8 / fp8 cache: each tile's K / V rows converted to bf16 (exactly: the trait's conversion, whose
  // factor tile_rows folds into the per-token scales), [kTile][dim]; the K scale multiplies S, the V
  // scale P before its rounding to bf16.
  const bool quant = d.kv_dt != dtype::bf16;
  auto* kb = reinterpret_cast<bf16_t*>(ws + L.kt);
  auto* vb = reinterpret_cast<bf16_t*>(ws + L.vb);
  float ksc[kTile], vsc_own[kTile];  // per-token scales
  const float* vsc = d.v_in_k ? ksc : vsc_own;  // MLA: V is the first dv values of the K row
  auto* rlo = reinterpret_cast<std::int32_t*>(ws + L.rlo);  // first / last visible key per lane (every head)
  std::int32_t* rhi = rlo + L.rows_pad;
  float* corr = ws + L.rlo + 2 * L.rows_pad;  // per-lane factor of acc after a tile's softmax
  std::int64_t max_lo = 0, min_hi = std::numeric_limits<std::int64_t>::max();
  for (std::int64_t r = 0; r < ld; ++r) {
    const bool real = r < lanes;
    const std::int64_t row = r / X;
    for (std::int64_t h = 0; h < heads; ++h) {
      const head_arrays ha = arrays(h);
      ha.m[r] = kNegInf;
      ha.l[r] = 0;
      if (!real) {
        for (std::int64_t e = 0; e < e_count; ++e) ha.qt[e * ld + r] = 0.0f;
        continue;
      }
      const std::int64_t src_row = (row0 + row / group) * d.hq + (it0.kvh + h) * group + row % group;
      const auto* src = static_cast<const bf16_t*>(a.q) + src_row * d.dk;
      for (std::int64_t e = 0; e < e_count; ++e) std::memcpy(ha.qt + e * ld + r, src + 2 * (X * e + r % X), 4);
    }
    if (real) {
      const visible_range vis = attention_visible(d, p0 + row / group);
      rlo[r] = static_cast<std::int32_t>(vis.lo);
      rhi[r] = static_cast<std::int32_t>(vis.hi - 1);
      max_lo = std::max(max_lo, vis.lo);
      min_hi = std::min(min_hi, vis.hi - 1);
    } else {
      rlo[r] = 0;
      rhi[r] = std::numeric_limits<std::int32_t>::max();
    }
  }
  for (std::int64_t h = 0; h < heads; ++h) {
    float* acc = arrays(h).acc;
    std::fill(acc, acc + npos * ld, 0.0f);
  }
  const float qscale = attention_scale(d) * kLog2e;
  const void* krow[kTile];
  const void* vrow[kTile];
  // The row pointers of keys [k0, k0 + nt) of item `it` (rows past nt repeat row 0); for an int8 / fp8
  // cache the first `convert` rows are converted into buf ([kTile][dim] bf16) and the pointers moved
  // there, and scale[t] gets the per-token scales.
  auto stage = [&](const item& it, const void* cache, const float* cache_scale, std::int64_t dim, std::int64_t k0, std::int64_t nt,
                   std::int64_t convert, const void* (&rows)[kTile], bf16_t* buf, float* scale) {
    tile_rows<S>(d, a, cache, quant ? cache_scale : nullptr, dim, it, k0, nt, rows, quant ? scale : nullptr);
    if (!quant) return;
    for (std::int64_t t = 0; t < convert; ++t) {
      bf16_t* row = buf + t * dim;
      S::to_bf16(d.kv_dt, rows[t], dim, row);
      rows[t] = row;
    }
  };
  // Keys per S microkernel and columns (acc vectors) per P.V microkernel, for MR row vectors: 16 with one
  // (16 accumulators; 8 keys left one core's GQA group 8 and group 16 decode on cache-resident data at 31.3
  // and 42-51 instead of 29.0 and 41 ns per KV-head key), 8 with 2-3 (16-24 accumulators).
  const auto lane_tile = [](auto mrc) { return decltype(mrc)::value == 1 ? 16 : 8; };
  // Microkernel calls per step (a tile of one head): the points the prefetches are spread over.
  std::int64_t calls = 0;
  row_vector_chunks(nv, [&](std::int64_t, auto mrc) { calls += kTile / lane_tile(mrc) + npos / lane_tile(mrc); });
  // A step is one tile of one head. Several heads take turns of a cache block (a tile when blocks are
  // smaller), so each head's part of a block is read in one go: with blocks of 64 keys and turns of a
  // tile, GQA-8 decode ran 12.5-15.0 ms against 10.0-13.4 with one head per item. Steps run in (turn,
  // head, tile) order; the prefetches target the step `ahead` later.
  const std::int64_t turn_tiles = heads > 1 ? std::max<std::int64_t>(1, d.block_size / kTile) : 1;
  const std::int64_t ahead = prefetch_tiles(d);
  row_prefetcher pf;
  auto prefetch_step = [&](std::int64_t step, std::int64_t points) {
    const std::int64_t per_turn = heads * turn_tiles, rem = step % per_turn;
    item pit = it0;
    pit.kvh = it0.kvh + rem / turn_tiles;
    const std::int64_t pk0 = it0.klo + (step / per_turn * turn_tiles + rem % turn_tiles) * kTile;
    if (pk0 < it0.khi) pf.start(d, a, pit, pk0, std::min(kTile, it0.khi - pk0), points);
  };
  for (std::int64_t step = 1; step < ahead; ++step) {  // the first steps ahead
    prefetch_step(step, 1);
    pf.finish();
  }
  constexpr std::int64_t kVpBlock = kTile / 2 * S::W;  // V pairs: [dv / 16][kTile / 2][16]
  std::int64_t step = 0;
  for (std::int64_t kt0 = it0.klo; kt0 < it0.khi; kt0 += turn_tiles * kTile)
    for (std::int64_t h = 0; h < heads; ++h)
      for (std::int64_t k0 = kt0; k0 < std::min(it0.khi, kt0 + turn_tiles * kTile); k0 += kTile, ++step) {
        const std::int64_t nt = std::min(kTile, it0.khi - k0);
        item it = it0;
        it.kvh = it0.kvh + h;
        const head_arrays ha = arrays(h);
        pf.finish();
        prefetch_step(step + ahead, calls);
        const std::int64_t nk = std::min(kTile, round_up(nt, 16));  // rows the S microkernels read
        stage(it, a.k_cache, a.k_scale, d.dk, k0, nt, nk, krow, kb, ksc);
        row_vector_chunks(nv, [&](std::int64_t v, auto mrc) {
          constexpr int MR = decltype(mrc)::value, T = lane_tile(mrc);
          for (std::int64_t t = 0; t < nt; t += T) {
            qk_lanes<S, MR, T, X>(ha.qt + v * S::W, ld, krow + t, e_count, st + t * ld + v * S::W, ld, qscale,
                                  quant && !Split ? ksc + t : nullptr);
            pf.step();
          }
        });
        const std::int64_t np = div_up(nt, 2);
        const bool masked = k0 < max_lo || k0 + nt - 1 > min_hi;
        bool rescale;
        if constexpr (Split) {
          // Each key's two halves summed and the keys packed in pairs (then, int8 / fp8, times the keys'
          // scales), so the softmax works on one vector per two keys.
          for (std::int64_t u = 0; u < np; ++u) {
            const auto x = S::pack_pair(S::load(st + 2 * u * ld), S::load(st + (2 * u + 1) * ld));
            S::store(st + u * ld, quant ? S::mul(x, S::pair_set(ksc[2 * u], ksc[2 * u + 1])) : x);
          }
          rescale = softmax_pairs<S>(st, np, ha.m, ha.l, corr, k0, nt, rlo, rhi, masked);
        } else {
          rescale = softmax_lanes<S>(st, ld, nv, ha.m, ha.l, corr, k0, nt, rlo, rhi, masked);
        }
        if (!d.v_in_k) stage(it, a.v_cache, a.v_scale, d.dv, k0, nt, nt, vrow, vb, vsc_own);
        if constexpr (Split) {
          for (std::int64_t u = 0; u < np; u += 2) {  // each row's pair of probabilities, in both its lanes
            auto p0v = S::load(st + u * ld), p1v = u + 1 < np ? S::load(st + (u + 1) * ld) : S::zero();
            if (quant) {  // an odd last key's probability is 0, its scale finite (tile_rows)
              p0v = S::mul(p0v, S::pair_set(vsc[2 * u], vsc[2 * u + 1]));
              if (u + 1 < np) p1v = S::mul(p1v, S::pair_set(vsc[2 * u + 2], vsc[2 * u + 3]));
            }
            S::dup_pairs(p0v, p1v, pp + u * ld, pp + (u + 1) * ld);
          }
        } else {
          for (std::int64_t u = 0; u < np; ++u)
            for (std::int64_t v = 0; v < nv; ++v) {
              auto p0v = S::load(st + 2 * u * ld + v * S::W), p1v = S::load(st + (2 * u + 1) * ld + v * S::W);
              if (quant) {  // the partner of an odd last key is 0 (softmax_lanes), its scale finite (tile_rows)
                p0v = S::mul(p0v, S::set1(vsc[2 * u]));
                p1v = S::mul(p1v, S::set1(vsc[2 * u + 1]));
              }
              S::store(pp + u * ld + v * S::W, S::pair_bf16(p0v, p1v));
            }
        }
        const void* const* vr = d.v_in_k ? krow : vrow;
        if constexpr (Split) {
          S::pair_rows(vr, nt, d.dv, vp, d.dv, S::W);  // [u][dv]: a broadcast's two positions are adjacent
          for (std::int64_t c = 0; c < npos; c += 16) {
            pv_lanes<S, 1, 16, 2>(pp, ld, vp + 2 * c, npos, np, ha.acc + c * ld, ld, rescale ? corr : nullptr);
            pf.step();
          }
        } else {
          // Blocks of 16 positions x kTile / 2 pairs: the broadcasts of one microkernel read contiguous lines
          // ([u][dv] puts them 2 KiB apart at dv 512: a few L1 sets).
          S::pair_rows(vr, nt, d.dv, vp, S::W, kVpBlock);
          row_vector_chunks(nv, [&](std::int64_t v, auto mrc) {
            constexpr int MR = decltype(mrc)::value, NC = lane_tile(mrc);
            for (std::int64_t c = 0; c < d.dv; c += NC) {
              pv_lanes<S, MR, NC, 1>(pp + v * S::W, ld, vp + (c / S::W) * kVpBlock + c % S::W, S::W, np, ha.acc + c * ld + v * S::W, ld,
                                     rescale ? corr + v * S::W : nullptr);
              pf.step();
            }
          });
        }
      }
  // Back to rows [r][dv] in column order, 16 rows of one head at a time.
  float* tmp = ws + L.v;
  for (std::int64_t h = 0; h < heads; ++h) {
    const head_arrays ha = arrays(h);
    item it = it0;
    it.kvh = it0.kvh + h;
    for (std::int64_t r0 = 0; r0 < rows; r0 += S::W) {
      const std::int64_t n = std::min<std::int64_t>(S::W, rows - r0);
      float mh[S::W], lh[S::W];
      for (std::int64_t r = 0; r < n; ++r) {
        mh[r] = ha.m[(r0 + r) * X];
        lh[r] = Split ? ha.l[(r0 + r) * X] + ha.l[(r0 + r) * X + 1] : ha.l[r0 + r];
      }
      for (std::int64_t c = 0; c < d.dv; ++c) {
        const std::int64_t col = pv_perm_col(c);
        for (std::int64_t r = 0; r < n; ++r) tmp[r * d.dv + col] = ha.acc[(c / X) * ld + (r0 + r) * X + c % X];
      }
      finish_rows<S>(d, a, it, tmp, mh, lh, n, row0, partial, r0);
    }
  }
}

// Which form each product of an item with `rows` rows takes (see the comment above path_opts).
struct fast_modes {
  bool dp, bcast, k_direct, v_direct, pv_dp;
  bool lanes;            // the row-lane path (run_item_lanes)
  bool lane_split;       // the row-lane path with two lanes per row (run_item_lanes<S, true>)
  std::int64_t e_count;  // 32-bit elements per K row (fp32 values or bf16 pairs)
};
template <class S>
fast_modes fast_mode(const attention_desc& d, std::int64_t rows, const path_opts& o) {
  fast_modes f{};
  const bool bf16_q = o.bf16_dot && d.q_dt == dtype::bf16 && d.dk % (2 * S::W) == 0;
  f.dp = bf16_q && d.kv_dt == dtype::bf16;
  f.e_count = f.dp ? d.dk / 2 : d.dk;
  f.bcast = rows >= std::max<std::int64_t>(4, f.e_count / 8);  // transposition pays for itself
  f.k_direct = f.dp || d.kv_dt == dtype::fp32 || (!f.bcast && rows <= 4);
  f.v_direct = d.kv_dt == dtype::fp32 || rows <= 4;
  f.pv_dp = o.bf16_pv && rows > 4 && d.kv_dt == dtype::bf16;  // a few rows: repacking V costs more than converting it in registers
  // Half a vector of rows (GQA group 8 decode): two lanes per row (run_item_lanes<S, true>).
  const bool split = rows * 2 == S::W;
  // int8 / fp8 caches too: the row-lane path converts each tile to bf16 once for all its rows.
  f.lanes = bf16_q && d.kv_dt != dtype::fp32 && o.bf16_pv && (rows >= kLaneRows || split);
  f.lane_split = f.lanes && split;
  return f;
}

// Runs the item `it0` for KV heads [it0.kvh, h1). One head: its state lives in the workspace. Several
// heads (decode with <= 4 rows per head, see head_chunk): each keeps q / acc / m / l in `state`
// (head_state_floats each) and the heads take turns tile by tile, so the cache is read block by block
// across heads -- the heads of one block are adjacent in memory ([block][hkv][slot][dim]), which turns
// scattered few-KiB reads into runs of heads x few KiB.
template <class S>
void run_items_fast(const attention_desc& d, const attention_args& a, const item& it0, std::int64_t h1, float* ws, float* state,
                    float* partial, const path_opts& o) {
  const workspace_layout L = workspace(d);
  const item& it = it0;
  const std::int64_t group = d.hq / d.hkv, rows = (it.q1 - it.q0) * group, heads = h1 - it0.kvh;
  const int gr = rows >= 4 ? 4 : (rows >= 2 ? 2 : 1);
  const std::int64_t rows_pad = round_up(rows, gr);
  const std::int64_t q_len = a.q_start[it.b + 1] - a.q_start[it.b], ctx = a.ctx_lens[it.b];
  const std::int64_t row0 = a.q_start[it.b] + it.q0;
  const float qscale = attention_scale(d) * kLog2e;
  const bool scaled = d.kv_dt == dtype::int8 || d.kv_dt == dtype::fp8;
  const fast_modes fm = fast_mode<S>(d, rows, o);
  if (fm.lanes) {
    if (fm.lane_split) run_item_lanes<S, true>(d, a, it0, ws, state, partial);
    else run_item_lanes<S, false>(d, a, it0, ws, state, partial);
    return;
  }
  const bool dp = fm.dp, bcast = fm.bcast, k_direct = fm.k_direct, v_direct = fm.v_direct, pv_dp_path = fm.pv_dp;
  const std::int64_t e_count = fm.e_count;
  float* sc = ws + L.s;
  // Per-head state: q (or its bf16 copy), acc, m, l (members, not a structured binding: clang 14 cannot
  // capture bindings in lambdas).
  struct head_ptrs {
    float* q;
    bf16_t* qb;
    float* acc;
    float* m;
    float* l;
  };
  auto head = [&](std::int64_t hi) -> head_ptrs {
    if (state == nullptr) return {ws + L.q, reinterpret_cast<bf16_t*>(ws + L.qb), ws + L.acc, ws + L.m, ws + L.l};
    float* st = state + hi * head_state_floats(d);
    return {st, reinterpret_cast<bf16_t*>(st), st + 4 * d.dk, st + 4 * (d.dk + d.dv), st + 4 * (d.dk + d.dv) + 4};
  };
  const std::size_t q_es = dtype_size(d.q_dt);
  for (std::int64_t hi = 0; hi < heads; ++hi) {
    const head_ptrs h = head(hi);
    const std::int64_t kvh = it0.kvh + hi;
    for (std::int64_t r = 0; r < rows_pad; ++r) {
      if (r < rows) {
        const std::int64_t src_row = (row0 + r / group) * d.hq + kvh * group + r % group;
        const auto* src = static_cast<const unsigned char*>(a.q) + static_cast<std::size_t>(src_row * d.dk) * q_es;
        if (dp) {
          std::copy_n(reinterpret_cast<const bf16_t*>(src), d.dk, h.qb + r * d.dk);
        } else {
          S::dequant(d.q_dt, src, 1.0f, h.q + r * d.dk, d.dk);
          S::scale(h.q + r * d.dk, qscale, d.dk);
        }
      } else {
        if (dp) std::fill(h.qb + r * d.dk, h.qb + (r + 1) * d.dk, bf16_t{0});
        else std::fill(h.q + r * d.dk, h.q + (r + 1) * d.dk, 0.0f);
      }
      h.m[r] = kNegInf;
      h.l[r] = 0;
      std::fill(h.acc + r * d.dv, h.acc + (r + 1) * d.dv, 0.0f);
    }
  }
  const void* krow[kTile];
  const void* vrow[kTile];
  const void* kscr[kTile];  // rows of a dequantized tile in scratch
  const void* vscr[kTile];
  for (std::int64_t t = 0; t < kTile; ++t) {
    kscr[t] = ws + L.k + t * d.dk;
    vscr[t] = ws + L.v + t * d.dv;
  }
  float* ks = ws + L.ks;
  float* vs = ws + L.vs;
  const std::int64_t ahead = prefetch_tiles(d);
  row_prefetcher pf;
  constexpr std::int64_t kPfPoints = 8;  // prefetch() and between() calls per step (with dv 128)
  for (std::int64_t k0 = it0.klo; k0 < it0.khi; k0 += kTile)
    for (std::int64_t hi = 0; hi < heads; ++hi) {
    const head_ptrs h = head(hi);
    item it = it0;
    it.kvh = it0.kvh + hi;
    const std::int64_t nt = std::min(kTile, it.khi - k0);
    // What to prefetch: `ahead` steps later in (tile, head) order.
    item pit = it;
    std::int64_t pk0 = k0, pahead = ahead;
    if (heads > 1) {
      const std::int64_t step = (k0 - it0.klo) / kTile * heads + hi + ahead;
      pit.kvh = it0.kvh + step % heads;
      pk0 = it0.klo + step / heads * kTile;
      pahead = 0;
      if (k0 == it0.klo && hi == 0)  // the first steps
        for (std::int64_t st = 1; st < ahead; ++st) {
          item fit = it0;
          fit.kvh = it0.kvh + st % heads;
          for (int part = 0; part < 4; ++part) prefetch_ahead(d, a, fit, it0.klo + st / heads * kTile, 0, part, false);
        }
    }
    // One head: the next tiles in four parts. Several heads: the step `ahead` later spread over the
    // phases and register tiles of this one (bursts of 64-128 prefetches capped one core at 13-15 GB/s
    // with an fp32 cache).
    if (heads > 1) {
      pf.finish();
      if (pk0 < it0.khi) pf.start(d, a, pit, pk0, std::min(kTile, it0.khi - pk0), kPfPoints);
    }
    auto prefetch = [&](int part) {
      if (heads == 1) prefetch_ahead(d, a, pit, pk0, pahead, part);
      else pf.step();
    };
    auto between = [&] {
      if (heads > 1) pf.step();
    };
    prefetch(0);
    tile_rows<S>(d, a, a.k_cache, a.k_scale, d.dk, it, k0, nt, krow, ks);
    // ---- S = Q K^T ----
    const void* const* ksrc = krow;
    if (!k_direct) {  // low-precision K used by many rows: dequantize once
      gather_rows<S>(d, a, a.k_cache, a.k_scale, d.dk, it, k0, nt, ws + L.k);
      for (std::int64_t t = nt; t < kTile; ++t) kscr[t] = kscr[0];
      ksrc = kscr;
    }
    if (bcast) {
      float* kt = ws + L.kt;
      for (std::int64_t e0 = 0; e0 < e_count; e0 += S::W)
        for (std::int64_t t0 = 0; t0 < kTile; t0 += S::W) S::transpose(ksrc + t0, e0, kt + e0 * kTile + t0, kTile);
      const float* qsrc = dp ? reinterpret_cast<const float*>(h.qb) : h.q;
      // Equal register tiles of at most kBcastRows rows (16 rows: 8 + 8, not 12 + 4).
      const std::int64_t mr_rows = div_up(rows, div_up(rows, kBcastRows));
      for (std::int64_t r = 0; r < rows; r += mr_rows)
        with_rows(std::min(mr_rows, rows - r), [&](auto mr) {
          if (dp) qk_bcast<S, mr.value, true>(qsrc + r * e_count, e_count, kt, e_count, sc + r * kTile, qscale);
          else qk_bcast<S, mr.value, false>(qsrc + r * e_count, e_count, kt, e_count, sc + r * kTile, 1.0f);
        });
    } else {
      constexpr int kAcc = S::kAcc;
      auto block = [&](auto grc) {
        constexpr int G = decltype(grc)::value;
        constexpr int TR = kAcc / G;
        for (std::int64_t r = 0; r < rows_pad; r += G)
          for (std::int64_t t = 0; t < nt; t += TR) {
            if (dp) qk_reduce_dp<S, G>(h.qb + r * d.dk, d.dk, ksrc + t, sc + r * kTile + t, qscale);
            else if (ksrc == kscr) qk_reduce<S, G, float>(h.q + r * d.dk, d.dk, ksrc + t, sc + r * kTile + t);
            else with_kv_type(d.kv_dt, [&](auto tag) {
              qk_reduce<S, G, typename decltype(tag)::type>(h.q + r * d.dk, d.dk, ksrc + t, sc + r * kTile + t);
            });
            between();
          }
      };
      if (gr == 4) block(std::integral_constant<int, 4>{});
      else if (gr == 2) block(std::integral_constant<int, 2>{});
      else block(std::integral_constant<int, 1>{});
    }
    prefetch(1);
    if (scaled && k_direct)  // per-token K scale applied to the score
      for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t t = 0; t < nt; ++t) sc[r * kTile + t] *= ks[t];
    softmax_tile<S>(d, sc, h.m, h.l, h.acc, rows, rows_pad, ctx - q_len + it.q0, k0, nt);
    prefetch(2);
    // ---- acc += P V ----
    if (pv_dp_path) {
      if (!d.v_in_k) tile_rows<S>(d, a, a.v_cache, a.v_scale, d.dv, it, k0, nt, vrow, vs);
      float* vp = ws + L.v;
      S::pair_rows(d.v_in_k ? krow : vrow, nt, d.dv, vp, d.dv, S::W);
      float* pb = ws + L.pb;
      for (std::int64_t r = 0; r < rows_pad; ++r) S::to_bf16_pairs(sc + r * kTile, pb + r * (kTile / 2));
      const std::int64_t np = div_up(nt, 2);
      for (std::int64_t r = 0; r < rows_pad; r += 4) {
        auto rows_of = [&](auto mrc) {
          constexpr int MR = decltype(mrc)::value;
          std::int64_t c = 0;
          for (; c + 4 * S::W <= d.dv; c += 4 * S::W) pv_dp<S, MR, 4>(pb + r * (kTile / 2), vp, d.dv, c, np, h.acc + r * d.dv);
          for (; c < d.dv; c += S::W) pv_dp<S, MR, 1>(pb + r * (kTile / 2), vp, d.dv, c, np, h.acc + r * d.dv);
        };
        if (rows_pad - r >= 4) rows_of(std::integral_constant<int, 4>{});
        else if (rows_pad - r >= 2) rows_of(std::integral_constant<int, 2>{});
        else rows_of(std::integral_constant<int, 1>{});
      }
      prefetch(3);
      continue;
    }
    const void* const* vsrc;
    if (d.v_in_k) {  // V = the first dv values of each K row
      if (ksrc == kscr) {
        vsrc = kscr;
      } else if (v_direct) {
        vsrc = krow;
      } else {
        gather_rows<S>(d, a, a.k_cache, a.k_scale, d.dk, it, k0, nt, ws + L.v, d.dv);
        vsrc = vscr;
      }
    } else if (v_direct) {
      tile_rows<S>(d, a, a.v_cache, a.v_scale, d.dv, it, k0, nt, vrow, vs);
      vsrc = vrow;
    } else {
      gather_rows<S>(d, a, a.v_cache, a.v_scale, d.dv, it, k0, nt, ws + L.v);
      vsrc = vscr;
    }
    const bool v_in_place = vsrc == krow || vsrc == vrow;
    if (scaled && v_in_place) {  // per-token V scale applied to the probability (after l summed it)
      const float* vsc = d.v_in_k ? ks : vs;
      for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t t = 0; t < nt; ++t) sc[r * kTile + t] *= vsc[t];
    }
    auto pv = [&](auto grc) {
      constexpr int G = decltype(grc)::value;
      if (!v_in_place) pv_all<S, G, float>(d, sc, vsrc, rows_pad, nt, h.acc, between);
      else with_kv_type(d.kv_dt, [&](auto tag) { pv_all<S, G, typename decltype(tag)::type>(d, sc, vsrc, rows_pad, nt, h.acc, between); });
    };
    if (gr == 4) pv(std::integral_constant<int, 4>{});
    else if (gr == 2) pv(std::integral_constant<int, 2>{});
    else pv(std::integral_constant<int, 1>{});
    prefetch(3);
  }
  for (std::int64_t hi = 0; hi < heads; ++hi) {
    const head_ptrs h = head(hi);
    item it = it0;
    it.kvh = it0.kvh + hi;
    if (pv_dp_path) {  // back to column order (pv_perm_col)
      float* tmp = ws + L.v;
      for (std::int64_t r = 0; r < rows; ++r) {
        for (std::int64_t c = 0; c < d.dv; ++c) tmp[pv_perm_col(c)] = h.acc[r * d.dv + c];
        std::copy_n(tmp, d.dv, h.acc + r * d.dv);
      }
    }
    finish_rows<S>(d, a, it, h.acc, h.m, h.l, rows, row0, partial);
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
void execute(const attention_desc& d, const attention_args& a, int stage, int ithr, int nthr, const path_opts& o = {}) {
  float* partial = static_cast<float*>(a.scratch);
  if (stage == 1) {
    merge<S>(d, a, partial, ithr, nthr);
    return;
  }
  float* ws = partial + partial_floats(d) + worker_floats(d) * ithr;
  if constexpr (requires { S::kFast; }) {
    // Decode items with few rows per head and everything read in place take up to kMaxHeadChunk heads,
    // as long as that leaves >= 8 items per worker.
    const std::int64_t units = d.batch * d.hkv * d.splits;
    const std::int64_t chunk = std::clamp<std::int64_t>(units / (8 * nthr), 1, std::min(d.hkv, kMaxHeadChunk));
    auto head_chunk = [&](std::int64_t rows) -> std::int64_t {
      const fast_modes fm = fast_mode<S>(d, rows, o);
      if (fm.lanes) return fm.lane_split ? chunk : 1;
      return rows <= 4 && !fm.bcast && fm.k_direct && fm.v_direct && !fm.pv_dp ? chunk : 1;
    };
    for_each_item(d, a, ithr, nthr, [&](const item& it) {
      run_items_fast<S>(d, a, it, it.kvh_end, ws, it.kvh_end - it.kvh > 1 ? ws + workspace(d).total : nullptr, partial, o);
    }, head_chunk);
  } else {
    for_each_item(d, a, ithr, nthr, [&](const item& it) { run_item<S>(d, a, it, ws, partial); }, [](std::int64_t) { return 1; });
  }
}

}  // namespace
}  // namespace infermark::attn_core
