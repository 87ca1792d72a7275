// Optimized MoE layer on top of the GEMM implementations (kernels/gemm/gemm.hpp): one "grouped:<gemm>"
// implementation per GEMM implementation. The MoE code owns routing, data movement and the work split;
// all arithmetic-heavy work is GEMM sub-problems executed whole by one worker (execute(sub, args, 0, 1)).
//
// Packed form: a header naming the GEMM implementations that packed it (packed layouts differ between
// them), the router gate packed as an fp32 GEMM [E][H], the correction bias, then the shared expert and
// the local experts. Each expert is cut into column chunks so that its work can be split across threads
// without knowing the GEMM's packed layout: gate and up in chunks of kGateUpChunk intermediate channels
// (separately packed, so chunk c's gate and up outputs are the same channels and SwiGLU applies on the
// chunk while it is in cache), down in chunks of kDownChunk hidden channels. Both chunk widths are
// multiples of 128, so fp8 block scales and int8 channel scales of a chunk are a plain offset into the
// expert's scales.
//
// Steps (a barrier between consecutive ones):
//  router           token chunks: gate GEMM on the chunk's rows, scoring, per-chunk expert histogram,
//                   activation quantization of x (non-fp32 formats).
//  dispatch         token chunks: every worker derives its chunks' write cursors from the histograms
//                   (a counting sort, so positions do not depend on the thread count) and copies its
//                   tokens' activation rows to their expert-ordered positions.
//  experts.gate_up  tasks (expert, chunk, block of <= kRows rows) with the shared expert as one more
//                   expert over all tokens; costs (rows + kWeightRows) x width x k (arithmetic and the
//                   weight stream); each worker takes the tasks whose
//                   cost midpoint falls in its 1/nthr of the total, so a hot expert's rows spread over
//                   all workers.
//  experts.quantize the intermediate rows into the down GEMM's source format (non-fp32 formats).
//  experts.down     tasks as for gate_up over the hidden-channel chunks of down; outputs chunk-major.
//  combine          token ranges: dst = shared + sum_j weight_j * expert_out_j in slot order.
#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "kernels/common/isa.hpp"
#include "kernels/common/partition.hpp"
#include "kernels/moe/moe_act.hpp"
#include "kernels/moe/moe_internal.hpp"

namespace infermark {
namespace moe_detail {
namespace {

constexpr std::int64_t kGateUpChunk = 128;  // intermediate channels per gate/up task
constexpr std::int64_t kDownChunk = 256;    // hidden channels per down task
constexpr std::int64_t kRows = 256;         // rows per task at most (big experts are cut into blocks)
// A task's cost in the work split is (rows + kWeightRows) x width x depth: besides its arithmetic, every
// task streams its weight chunk once, which takes about as long as this many rows of arithmetic on CPUs
// whose FLOP:byte ridge is ~8-16 (bf16 / int8 / fp8 on AVX-512). Counting rows only gave a worker with
// the shared expert's many rows a fair share of FLOPs but the other worker most of the weight bytes.
// DeepSeek-V3 shard t64 fp8, 2 threads / 1 thread, three alternating runs: 1.56 / 1.61 / 1.30 counting
// rows only, 1.68 / 1.73 / 1.28 with this (its 2-token local experts are DRAM-bound and DRAM does not
// scale 2x from one core to two).
constexpr std::int64_t kWeightRows = 8;
constexpr std::uint64_t kMagic = 0x6d6f652d67726f75ull;  // "moe-grou"

struct header {
  std::uint64_t magic;
  std::int32_t router_gemm;  // index into gemm_impls()
  std::int32_t expert_gemm;
};

// Rows per router task. Every task reads the whole gate matrix (E x H fp32: 7.3 MiB for DeepSeek-V3), so
// small tasks multiply that traffic: a quarter of the tokens (up to 64 rows) keeps it to <= 4 passes
// at decode sizes while 64-token prefill chunks still spread over the workers.
std::int64_t router_chunk(const moe_desc& d) { return std::clamp<std::int64_t>(div_up(d.tokens, 4), 1, 64); }
std::int64_t router_chunks(const moe_desc& d) { return div_up(d.tokens, router_chunk(d)); }
std::int64_t max_rows(const moe_desc& d) { return d.tokens * std::min(d.top_k, d.local()); }

gemm_desc sub(std::int64_t m, std::int64_t n, std::int64_t k, dtype dt) { return gemm_desc{m, n, k, dt}; }

// Byte offsets of one expert of intermediate width `inter` relative to its start.
struct expert_offsets {
  std::int64_t inter = 0, gu_chunks = 0, dn_chunks = 0;
  std::size_t gate_chunk_bytes = 0;  // packed bytes of a full-width gate (or up) chunk
  std::size_t gate_last_bytes = 0;   // ... of the last chunk
  std::size_t down_chunk_bytes = 0, down_last_bytes = 0;
  std::size_t gate_at = 0, up_at = 0, down_at = 0;  // first chunk of each (chunks are consecutive)
  std::size_t gate_scale_at = 0, up_scale_at = 0, down_scale_at = 0;
  std::size_t bytes = 0;

  std::size_t gu_chunk_at(std::size_t base, std::int64_t c) const { return base + static_cast<std::size_t>(c) * gate_chunk_bytes; }
  std::size_t dn_chunk_at(std::int64_t c) const { return down_at + static_cast<std::size_t>(c) * down_chunk_bytes; }
};

expert_offsets expert_layout(const moe_desc& d, const gemm_impl& g, std::int64_t inter) {
  expert_offsets o;
  o.inter = inter;
  o.gu_chunks = div_up(inter, kGateUpChunk);
  o.dn_chunks = div_up(d.hidden, kDownChunk);
  auto pb = [&](std::int64_t n, std::int64_t k) { return align64(g.packed_bytes(sub(1, n, k, d.dt))); };
  o.gate_chunk_bytes = pb(std::min(kGateUpChunk, inter), d.hidden);
  o.gate_last_bytes = pb(inter - (o.gu_chunks - 1) * kGateUpChunk, d.hidden);
  o.down_chunk_bytes = pb(std::min(kDownChunk, d.hidden), inter);
  o.down_last_bytes = pb(d.hidden - (o.dn_chunks - 1) * kDownChunk, inter);
  std::size_t at = 0;
  const std::size_t gu = static_cast<std::size_t>(o.gu_chunks - 1) * o.gate_chunk_bytes + o.gate_last_bytes;
  o.gate_at = at, at += gu;
  o.up_at = at, at += gu;
  o.down_at = at, at += static_cast<std::size_t>(o.dn_chunks - 1) * o.down_chunk_bytes + o.down_last_bytes;
  const auto ws = [&](std::int64_t n, std::int64_t k) { return align64(static_cast<std::size_t>(weight_scales(d.dt, n, k)) * 4); };
  o.gate_scale_at = at, at += ws(inter, d.hidden);
  o.up_scale_at = at, at += ws(inter, d.hidden);
  o.down_scale_at = at, at += ws(d.hidden, inter);
  o.bytes = at;
  return o;
}

struct packed_layout {
  std::size_t router_at = 0, bias_at = 0, shared_at = 0, experts_at = 0, bytes = 0;
  expert_offsets routed, shared;
  std::size_t expert_at(std::int64_t e) const {
    return e == moe_shared_expert ? shared_at : experts_at + static_cast<std::size_t>(e) * routed.bytes;
  }
};

packed_layout layout(const moe_desc& d, const gemm_impl& router_g, const gemm_impl& expert_g) {
  packed_layout l;
  std::size_t at = align64(sizeof(header));
  l.router_at = at, at += align64(router_g.packed_bytes(sub(1, d.experts, d.hidden, moe_router_dtype(d))));
  l.bias_at = at, at += align64(static_cast<std::size_t>(d.experts) * 4);
  l.routed = expert_layout(d, expert_g, d.inter);
  if (d.shared_inter > 0) l.shared = expert_layout(d, expert_g, d.shared_inter);
  l.shared_at = at, at += l.shared.bytes;
  l.experts_at = at, at += l.routed.bytes * static_cast<std::size_t>(d.local());
  l.bytes = at;
  return l;
}

// The GEMM for the router (format moe_router_dtype): the experts' GEMM when it takes that format, else
// the best one that does.
const gemm_impl& router_gemm_for(const moe_desc& d, const gemm_impl& expert_g) {
  const gemm_desc r = sub(std::max<std::int64_t>(1, d.tokens), d.experts, d.hidden, moe_router_dtype(d));
  return expert_g.check(r) ? gemm_select(r) : expert_g;
}

// Bytes of GEMM workspace one worker needs for every sub-problem it can run (execute(sub, args, 0, 1)):
// the largest over the router's row chunks and the experts' row blocks, chunk widths and reductions
// (workspace grows with rows and k, so the largest shapes bound it).
std::size_t gemm_ws_per_worker(const moe_desc& d, const gemm_impl& router_g, const gemm_impl& expert_g) {
  const std::int64_t m = std::max<std::int64_t>(1, std::min(d.tokens, kRows));
  std::size_t ws = router_g.workspace_bytes(sub(std::max<std::int64_t>(1, std::min(d.tokens, std::int64_t{64})),
                                                d.experts, d.hidden, moe_router_dtype(d)), 1);
  ws = std::max(ws, expert_g.workspace_bytes(sub(m, std::min(kGateUpChunk, d.inter), d.hidden, d.dt), 1));
  ws = std::max(ws, expert_g.workspace_bytes(sub(m, std::min(kDownChunk, d.hidden), d.inter, d.dt), 1));
  if (d.shared_inter > 0) {
    ws = std::max(ws, expert_g.workspace_bytes(sub(m, std::min(kGateUpChunk, d.shared_inter), d.hidden, d.dt), 1));
    ws = std::max(ws, expert_g.workspace_bytes(sub(m, std::min(kDownChunk, d.hidden), d.shared_inter, d.dt), 1));
  }
  return (ws + 63) / 64 * 64;
}

std::int32_t gemm_index(const gemm_impl& g) {
  const auto list = gemm_impls();
  for (std::size_t i = 0; i < list.size(); ++i)
    if (&list[i] == &g) return static_cast<std::int32_t>(i);
  throw std::logic_error("moe: GEMM implementation not in gemm_impls()");
}

struct bound {
  const header* h;
  const gemm_impl* router_g;
  const gemm_impl* expert_g;
  packed_layout l;
  const unsigned char* base;
};

bound bind(const moe_desc& d, const void* packed) {
  bound b{};
  b.base = static_cast<const unsigned char*>(packed);
  b.h = reinterpret_cast<const header*>(packed);
  const auto list = gemm_impls();
  b.router_g = &list[static_cast<std::size_t>(b.h->router_gemm)];
  b.expert_g = &list[static_cast<std::size_t>(b.h->expert_gemm)];
  b.l = layout(d, *b.router_g, *b.expert_g);
  return b;
}

// Scratch carved from args.scratch; the shared part first so its offsets do not depend on nthr.
struct scratch_view {
  float* logits;           // [t][E]
  unsigned char* xq;       // [t][H] in dt (non-fp32)
  float* xq_scale;         // [t][sbH]
  std::int32_t* hist;      // [router chunks][E]
  std::int32_t* offsets;   // [L + 1] expert-ordered row offsets of the local experts
  std::int32_t* slot_pos;  // [t][k] row of each slot, -1 when not local
  unsigned char* xs;       // [max_rows][H] in dt
  float* xs_scale;         // [max_rows][sbH]
  float* hf;               // [max_rows][I] fp32
  float* hs;               // [t][SI] fp32
  unsigned char* hq;       // [max_rows][I] in dt (non-fp32)
  float* hq_scale;         // [max_rows][sbI]
  unsigned char* hsq;      // [t][SI] in dt (non-fp32)
  float* hsq_scale;        // [t][sbSI]
  float* y;                // chunk-major: chunk c holds [max_rows][width_c] at y + c*kDownChunk*max_rows
  float* ys;               // chunk-major: chunk c holds [t][width_c] at ys + c*kDownChunk*t
  float* score_work;       // [nthr][moe_score_work]
  std::int32_t* cursor;    // [nthr][L]
  bf16_t* xr;              // [t][H] the router's own rows (router_rows_own)
  float* tile;             // [nthr][2][kRows][kGateUpChunk]
  unsigned char* gemm_ws;  // [nthr][gemm_ws_bytes]: each worker's GEMM workspace
  std::size_t gemm_ws_bytes;
  void* gemm_workspace(int ithr) const { return gemm_ws + static_cast<std::size_t>(ithr) * gemm_ws_bytes; }
};

// Whether the router needs rows of its own: its format (moe_router_dtype) differs from the experts' rows
// (xq), as in int8 / fp8 layers; fp32 and bf16 layers' routers read src / xq.
bool router_rows_own(const moe_desc& d) { return d.dt != dtype::fp32 && moe_router_dtype(d) != d.dt; }

scratch_view carve_scratch(const moe_desc& d, std::size_t gemm_ws, void* base, int nthr, std::size_t* bytes = nullptr) {
  carver c(base);
  const std::int64_t t = d.tokens, E = d.experts, H = d.hidden, I = d.inter, SI = d.shared_inter, L = d.local();
  const std::int64_t R = max_rows(d);
  const bool q = d.dt != dtype::fp32;
  const std::size_t es = dtype_size(d.dt);
  auto sz = [](std::int64_t n) { return static_cast<std::size_t>(n); };
  scratch_view s{};
  s.logits = c.take<float>(sz(t * E));
  s.xq = c.take<unsigned char>(q ? sz(t * H) * es : 0);
  s.xq_scale = c.take<float>(sz(t * moe_row_scales(d.dt, H)));
  s.xr = c.take<bf16_t>(router_rows_own(d) ? sz(t * H) : 0);
  s.hist = c.take<std::int32_t>(sz(router_chunks(d) * E));
  s.offsets = c.take<std::int32_t>(sz(L + 1));
  s.slot_pos = c.take<std::int32_t>(sz(t * d.top_k));
  s.xs = c.take<unsigned char>(sz(R * H) * es);
  s.xs_scale = c.take<float>(sz(R * moe_row_scales(d.dt, H)));
  s.hf = c.take<float>(sz(R * I));
  s.hs = c.take<float>(sz(t * SI));
  s.hq = c.take<unsigned char>(q ? sz(R * I) * es : 0);
  s.hq_scale = c.take<float>(sz(R * moe_row_scales(d.dt, I)));
  s.hsq = c.take<unsigned char>(q ? sz(t * SI) * es : 0);
  s.hsq_scale = c.take<float>(sz(t * moe_row_scales(d.dt, SI)));
  s.y = c.take<float>(sz(R * H));
  s.ys = c.take<float>(SI > 0 ? sz(t * H) : 0);
  s.score_work = c.take<float>(sz(nthr * moe_score_work(d)));
  s.cursor = c.take<std::int32_t>(sz(nthr * L));
  s.tile = c.take<float>(sz(nthr * 2 * kRows * kGateUpChunk));
  s.gemm_ws_bytes = gemm_ws;
  s.gemm_ws = c.take<unsigned char>(static_cast<std::size_t>(nthr) * gemm_ws);
  if (bytes) *bytes = c.used();
  return s;
}

const std::int32_t* routed_ids(const moe_args& a) { return a.forced_ids ? a.forced_ids : a.topk_ids; }
const float* routed_weights(const moe_args& a) { return a.forced_ids ? a.forced_weights : a.topk_weights; }

// Activation quantization for the ISA level in effect (moe_quantize_row, bit-identical).
quantize_row_fn pick_quantize() {
#if defined(__x86_64__) || defined(_M_X64)
  if (effective_isa() >= isa_level::avx512) return quantize_row_avx512;
#endif
  return moe_quantize_row;
}

void step_router(const moe_desc& d, const moe_args& a, int ithr, int nthr) {
  const bound b = bind(d, a.packed);
  const scratch_view s = carve_scratch(d, gemm_ws_per_worker(d, *b.router_g, *b.expert_g), a.scratch, nthr);
  const std::int64_t rc = router_chunk(d), E = d.experts, H = d.hidden, k = d.top_k;
  const std::int64_t sbH = moe_row_scales(d.dt, H);
  const auto* router = b.base + b.l.router_at;
  const auto* bias = reinterpret_cast<const float*>(b.base + b.l.bias_at);
  float* work = s.score_work + ithr * moe_score_work(d);
  const quantize_row_fn quantize = pick_quantize();
  const std::int32_t* ids = routed_ids(a);
  const auto [c0, c1] = balance(router_chunks(d), ithr, nthr);
  const dtype rdt = moe_router_dtype(d);
  const bool own_rows = router_rows_own(d);
  const std::size_t es = dtype_size(d.dt);
  for (std::int64_t c = c0; c < c1; ++c) {
    const std::int64_t r0 = c * rc, r1 = std::min(d.tokens, r0 + rc);
    // The rows in the experts' format, and the router's own rows where it needs them: row by row, so the
    // second conversion reads the row from L1.
    for (std::int64_t t = r0; t < r1 && d.dt != dtype::fp32; ++t) {
      quantize(d.dt, a.src + t * H, H, s.xq + static_cast<std::size_t>(t * H) * es, s.xq_scale + t * sbH);
      if (own_rows) quantize(rdt, a.src + t * H, H, s.xr + t * H, nullptr);
    }
    const void* rows = own_rows ? static_cast<const void*>(s.xr + r0 * H)
                       : d.dt == dtype::fp32 ? static_cast<const void*>(a.src + r0 * H)
                                             : static_cast<const void*>(s.xq + static_cast<std::size_t>(r0 * H) * es);
    gemm_args ga{rows, router, s.logits + r0 * E};
    ga.workspace = s.gemm_workspace(ithr);
    b.router_g->execute(sub(r1 - r0, E, H, rdt), ga, 0, 1);
    std::int32_t* hist = s.hist + c * E;
    std::fill(hist, hist + E, 0);
    for (std::int64_t t = r0; t < r1; ++t) {
      moe_score(d, s.logits + t * E, bias, work, a.topk_ids + t * k, a.topk_weights + t * k);
      for (std::int64_t j = 0; j < k; ++j) {
        const std::int32_t e = ids[t * k + j];
        if (e >= 0 && e < E) ++hist[e];
      }
    }
  }
}

void step_dispatch(const moe_desc& d, const moe_args& a, int ithr, int nthr) {
  const scratch_view s = carve_scratch(d, 0, a.scratch, nthr);  // no GEMM here (its workspace is carved last)
  const std::int64_t E = d.experts, L = d.local(), H = d.hidden, k = d.top_k, nch = router_chunks(d);
  const std::int64_t rc = router_chunk(d), sbH = moe_row_scales(d.dt, H);
  const std::size_t row_bytes = static_cast<std::size_t>(H) * dtype_size(d.dt);
  const auto [c0, c1] = balance(nch, ithr, nthr);
  std::int32_t* cursor = s.cursor + ithr * L;
  // Counting sort: expert e's rows start after all rows of experts < e; within an expert, rows follow
  // token order, so a chunk's first row is the expert's start plus the chunks before it.
  std::int64_t base = 0;
  for (std::int64_t le = 0; le < L; ++le) {
    const std::int64_t ge = d.local_first + le;
    std::int64_t before = 0, total = 0;
    for (std::int64_t c = 0; c < nch; ++c) {
      const std::int32_t n = s.hist[c * E + ge];
      if (c < c0) before += n;
      total += n;
    }
    if (ithr == 0) s.offsets[le] = static_cast<std::int32_t>(base);
    cursor[le] = static_cast<std::int32_t>(base + before);
    base += total;
  }
  if (ithr == 0) {
    s.offsets[L] = static_cast<std::int32_t>(base);
    if (a.expert_counts)
      for (std::int64_t e = 0; e < E; ++e) {
        std::int32_t n = 0;
        for (std::int64_t c = 0; c < nch; ++c) n += s.hist[c * E + e];
        a.expert_counts[e] = n;
      }
  }
  const std::int32_t* ids = routed_ids(a);
  const bool q = d.dt != dtype::fp32;
  const auto* src_rows = q ? s.xq : reinterpret_cast<const unsigned char*>(a.src);
  for (std::int64_t t = c0 * rc; t < std::min(d.tokens, c1 * rc); ++t)
    for (std::int64_t j = 0; j < k; ++j) {
      const std::int64_t le = static_cast<std::int64_t>(ids[t * k + j]) - d.local_first;
      if (ids[t * k + j] < 0 || le < 0 || le >= L) {
        s.slot_pos[t * k + j] = -1;
        continue;
      }
      const std::int32_t pos = cursor[le]++;
      s.slot_pos[t * k + j] = pos;
      std::memcpy(s.xs + static_cast<std::size_t>(pos) * row_bytes, src_rows + static_cast<std::size_t>(t) * row_bytes, row_bytes);
      if (sbH) std::memcpy(s.xs_scale + pos * sbH, s.xq_scale + t * sbH, static_cast<std::size_t>(sbH) * 4);
    }
}

// Visits this worker's tasks of one expert phase (0: gate_up, 1: down) as f(expert, chunk, r0, r1):
// expert in [0, L) routed (rows relative to the expert's offset) or moe_shared_expert (rows = tokens).
template <class F>
void for_my_tasks(const moe_desc& d, const std::int32_t* offsets, int phase, int ithr, int nthr, F f) {
  const std::int64_t L = d.local();
  auto visit = [&](auto&& g) {
    for (std::int64_t i = 0; i <= L; ++i) {
      const std::int64_t e = i < L ? i : moe_shared_expert;
      if (e == moe_shared_expert && d.shared_inter == 0) continue;
      const std::int64_t rows = i < L ? offsets[i + 1] - offsets[i] : d.tokens;
      if (rows == 0) continue;
      const std::int64_t inter = i < L ? d.inter : d.shared_inter;
      const std::int64_t width = phase == 0 ? inter : d.hidden, chunk = phase == 0 ? kGateUpChunk : kDownChunk;
      const std::int64_t depth = phase == 0 ? 2 * d.hidden : inter;  // gate + up, or down's reduction
      const std::int64_t nb = div_up(rows, kRows);
      for (std::int64_t c = 0; c * chunk < width; ++c) {
        const std::int64_t w = std::min(chunk, width - c * chunk);
        for (std::int64_t blk = 0; blk < nb; ++blk) {
          const auto [r0, r1] = balance(rows, static_cast<int>(blk), static_cast<int>(nb));
          g(e, c, r0, r1, (r1 - r0 + kWeightRows) * w * depth);
        }
      }
    }
  };
  std::int64_t total = 0;
  visit([&](std::int64_t, std::int64_t, std::int64_t, std::int64_t, std::int64_t cost) { total += cost; });
  if (total == 0) return;
  std::int64_t prefix = 0;
  visit([&](std::int64_t e, std::int64_t c, std::int64_t r0, std::int64_t r1, std::int64_t cost) {
    // Owner of the task = the worker whose share of the total holds the task's cost midpoint.
    const auto mid2 = static_cast<unsigned __int128>(2 * prefix + cost);
    const auto owner = static_cast<std::int64_t>(mid2 * static_cast<unsigned>(nthr) / static_cast<unsigned __int128>(2 * total));
    if (owner == ithr) f(e, c, r0, r1);
    prefix += cost;
  });
}

void act_tile_generic(moe_activation act, const float* gate, const float* up, std::int64_t m, std::int64_t w,
                      float* dst, std::int64_t ld) {
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t j = 0; j < w; ++j) dst[i * ld + j] = activate(act, gate[i * w + j], up[i * w + j]);
}

// The activation kernel for the ISA level in effect (the same for every worker of a run).
act_tile_fn pick_act() {
#if defined(__x86_64__) || defined(_M_X64)
  const isa_level isa = effective_isa();
  if (isa >= isa_level::avx512) return act_tile_avx512;
  if (isa >= isa_level::avx2) return act_tile_avx2;
#endif
  return act_tile_generic;
}

void step_gate_up(const moe_desc& d, const moe_args& a, int ithr, int nthr) {
  const bound b = bind(d, a.packed);
  const scratch_view s = carve_scratch(d, gemm_ws_per_worker(d, *b.router_g, *b.expert_g), a.scratch, nthr);
  const std::int64_t H = d.hidden, sbH = moe_row_scales(d.dt, H), kbH = div_up(H, gemm_fp8_block);
  const std::size_t es = dtype_size(d.dt);
  float* tile_g = s.tile + static_cast<std::int64_t>(ithr) * 2 * kRows * kGateUpChunk;
  float* tile_u = tile_g + kRows * kGateUpChunk;
  const act_tile_fn act = pick_act();
  for_my_tasks(d, s.offsets, 0, ithr, nthr, [&](std::int64_t e, std::int64_t c, std::int64_t r0, std::int64_t r1) {
    const bool shared = e == moe_shared_expert;
    const expert_offsets& o = shared ? b.l.shared : b.l.routed;
    const unsigned char* ex = b.base + b.l.expert_at(e);
    const std::int64_t row0 = shared ? r0 : s.offsets[e] + r0, m = r1 - r0;
    const std::int64_t w = std::min(kGateUpChunk, o.inter - c * kGateUpChunk);
    const void* src;
    const float* src_scale = nullptr;
    if (shared) {
      src = d.dt == dtype::fp32 ? static_cast<const void*>(a.src + row0 * H) : s.xq + static_cast<std::size_t>(row0 * H) * es;
      src_scale = s.xq_scale + row0 * sbH;
    } else {
      src = s.xs + static_cast<std::size_t>(row0 * H) * es;
      src_scale = s.xs_scale + row0 * sbH;
    }
    // Channel c*kGateUpChunk starts scale row c*kGateUpChunk (int8) or block row c (fp8, chunk = 128).
    const std::int64_t scale_off = d.dt == dtype::fp8 ? c * kGateUpChunk / gemm_fp8_block * kbH : c * kGateUpChunk;
    const auto* gs = reinterpret_cast<const float*>(ex + o.gate_scale_at) + scale_off;
    const auto* us = reinterpret_cast<const float*>(ex + o.up_scale_at) + scale_off;
    const gemm_desc g = sub(m, w, H, d.dt);
    void* ws = s.gemm_workspace(ithr);
    b.expert_g->execute(g, gemm_args{src, ex + o.gu_chunk_at(o.gate_at, c), tile_g, src_scale, gs, ws}, 0, 1);
    b.expert_g->execute(g, gemm_args{src, ex + o.gu_chunk_at(o.up_at, c), tile_u, src_scale, us, ws}, 0, 1);
    float* out = (shared ? s.hs : s.hf) + row0 * o.inter + c * kGateUpChunk;
    act(d.act, tile_g, tile_u, m, w, out, o.inter);
  });
}

void step_quantize(const moe_desc& d, const moe_args& a, int ithr, int nthr) {
  if (d.dt == dtype::fp32) return;  // the down GEMM reads the fp32 rows directly
  const scratch_view s = carve_scratch(d, 0, a.scratch, nthr);  // no GEMM here (its workspace is carved last)
  const std::int64_t routed = s.offsets[d.local()], total = routed + (d.shared_inter > 0 ? d.tokens : 0);
  const std::size_t es = dtype_size(d.dt);
  const std::int64_t sbI = moe_row_scales(d.dt, d.inter), sbS = moe_row_scales(d.dt, d.shared_inter);
  const quantize_row_fn quantize = pick_quantize();
  const auto [r0, r1] = balance(total, ithr, nthr);
  for (std::int64_t r = r0; r < r1; ++r) {
    if (r < routed) {
      quantize(d.dt, s.hf + r * d.inter, d.inter, s.hq + static_cast<std::size_t>(r * d.inter) * es, s.hq_scale + r * sbI);
    } else {
      const std::int64_t t = r - routed;
      quantize(d.dt, s.hs + t * d.shared_inter, d.shared_inter,
                       s.hsq + static_cast<std::size_t>(t * d.shared_inter) * es, s.hsq_scale + t * sbS);
    }
  }
}

void step_down(const moe_desc& d, const moe_args& a, int ithr, int nthr) {
  const bound b = bind(d, a.packed);
  const scratch_view s = carve_scratch(d, gemm_ws_per_worker(d, *b.router_g, *b.expert_g), a.scratch, nthr);
  const std::int64_t H = d.hidden, R = max_rows(d);
  const std::size_t es = dtype_size(d.dt);
  const bool q = d.dt != dtype::fp32;
  for_my_tasks(d, s.offsets, 1, ithr, nthr, [&](std::int64_t e, std::int64_t c, std::int64_t r0, std::int64_t r1) {
    const bool shared = e == moe_shared_expert;
    const expert_offsets& o = shared ? b.l.shared : b.l.routed;
    const unsigned char* ex = b.base + b.l.expert_at(e);
    const std::int64_t I = o.inter, sbI = moe_row_scales(d.dt, I), kbI = div_up(I, gemm_fp8_block);
    const std::int64_t row0 = shared ? r0 : s.offsets[e] + r0, m = r1 - r0;
    const std::int64_t w = std::min(kDownChunk, H - c * kDownChunk);
    const void* src;
    const float* src_scale;
    if (shared) {
      src = q ? static_cast<const void*>(s.hsq + static_cast<std::size_t>(row0 * I) * es) : s.hs + row0 * I;
      src_scale = s.hsq_scale + row0 * sbI;
    } else {
      src = q ? static_cast<const void*>(s.hq + static_cast<std::size_t>(row0 * I) * es) : s.hf + row0 * I;
      src_scale = s.hq_scale + row0 * sbI;
    }
    const std::int64_t scale_off = d.dt == dtype::fp8 ? c * kDownChunk / gemm_fp8_block * kbI : c * kDownChunk;
    const auto* ws = reinterpret_cast<const float*>(ex + o.down_scale_at) + scale_off;
    float* dst = shared ? s.ys + c * kDownChunk * d.tokens + row0 * w : s.y + c * kDownChunk * R + row0 * w;
    b.expert_g->execute(sub(m, w, I, d.dt), gemm_args{src, ex + o.dn_chunk_at(c), dst, src_scale, ws, s.gemm_workspace(ithr)}, 0, 1);
  });
}

void step_combine(const moe_desc& d, const moe_args& a, int ithr, int nthr) {
  const scratch_view s = carve_scratch(d, 0, a.scratch, nthr);  // no GEMM here (its workspace is carved last)
  const std::int64_t H = d.hidden, k = d.top_k, R = max_rows(d);
  const float* wts = routed_weights(a);
  const auto [t0, t1] = balance(d.tokens, ithr, nthr);
  for (std::int64_t c = 0; c * kDownChunk < H; ++c) {
    const std::int64_t w = std::min(kDownChunk, H - c * kDownChunk);
    const float* yc = s.y + c * kDownChunk * R;
    for (std::int64_t t = t0; t < t1; ++t) {
      float* out = a.dst + t * H + c * kDownChunk;
      if (d.shared_inter > 0) std::memcpy(out, s.ys + c * kDownChunk * d.tokens + t * w, static_cast<std::size_t>(w) * 4);
      else std::fill(out, out + w, 0.0f);
      // Slot order is fixed, so the sum is the same for every thread count.
      for (std::int64_t j = 0; j < k; ++j) {
        const std::int32_t pos = s.slot_pos[t * k + j];
        if (pos < 0) continue;
        const float wt = wts[t * k + j];
        const float* row = yc + static_cast<std::int64_t>(pos) * w;
        for (std::int64_t i = 0; i < w; ++i) out[i] += wt * row[i];
      }
    }
  }
}

std::optional<std::string> grouped_check(const gemm_impl& g, const moe_desc& d) {
  // Every sub-problem shape the experts can produce: any rows, chunk widths, both reductions.
  const std::int64_t m = std::min(d.tokens, kRows);
  for (const gemm_desc& s : {sub(m, std::min(kGateUpChunk, d.inter), d.hidden, d.dt),
                             sub(m, std::min(kDownChunk, d.hidden), d.inter, d.dt)})
    if (auto why = g.check(s)) return "GEMM " + std::string(g.name) + ": " + *why;
  if (d.shared_inter > 0)
    if (auto why = g.check(sub(m, std::min(kDownChunk, d.hidden), d.shared_inter, d.dt)))
      return "GEMM " + std::string(g.name) + ": " + *why;
  return std::nullopt;
}

void check_expert_args(const moe_desc& d, std::int64_t e, const moe_expert_weights& w) {
  if (e != moe_shared_expert && (e < 0 || e >= d.local()))
    throw std::invalid_argument("moe pack_expert: expert " + std::to_string(e) + " outside the local shard [0, " +
                                std::to_string(d.local()) + ") (or moe_shared_expert)");
  if (e == moe_shared_expert && d.shared_inter == 0)
    throw std::invalid_argument("moe pack_expert: moe_shared_expert given but shared_inter=0");
  const bool scaled = d.dt == dtype::int8 || d.dt == dtype::fp8;
  if (!w.gate || !w.up || !w.down || (scaled && (!w.gate_scale || !w.up_scale || !w.down_scale)))
    throw std::invalid_argument("moe pack_expert: null weight or scale pointer for format " + std::string(to_string(d.dt)));
}

moe_impl make_grouped(const gemm_impl& g) {
  moe_impl impl;
  impl.name = "grouped:" + std::string(g.name);
  impl.check = [&g](const moe_desc& d) { return grouped_check(g, d); };
  impl.packed_bytes = [&g](const moe_desc& d) { return layout(d, router_gemm_for(d, g), g).bytes; };
  impl.scratch_bytes = [&g](const moe_desc& d, int nthr) {
    std::size_t bytes = 0;
    carve_scratch(d, gemm_ws_per_worker(d, router_gemm_for(d, g), g), nullptr, nthr, &bytes);
    return bytes;
  };
  impl.pack_router = [&g](const moe_desc& d, const moe_router_weights& w, void* packed) {
    moe_validate(d);
    if (auto why = grouped_check(g, d)) throw std::invalid_argument("moe " + std::string(g.name) + ": " + *why);
    if (!w.gate) throw std::invalid_argument("moe pack_router: gate weights are null");
    if (d.scoring == moe_scoring::sigmoid_group_topk && !w.bias)
      throw std::invalid_argument("moe pack_router: scoring sigmoid_group_topk needs the correction bias; got null");
    const gemm_impl& rg = router_gemm_for(d, g);
    const packed_layout l = layout(d, rg, g);
    auto* base = static_cast<unsigned char*>(packed);
    const header h{kMagic, gemm_index(rg), gemm_index(g)};
    std::memcpy(base, &h, sizeof h);
    if (moe_router_dtype(d) == dtype::bf16) {
      std::vector<bf16_t> gate(static_cast<std::size_t>(d.experts * d.hidden));
      for (std::size_t i = 0; i < gate.size(); ++i) gate[i] = f32_to_bf16(w.gate[i]);
      rg.pack(sub(1, d.experts, d.hidden, dtype::bf16), gate.data(), base + l.router_at);
    } else {
      rg.pack(sub(1, d.experts, d.hidden, dtype::fp32), w.gate, base + l.router_at);
    }
    auto* bias = reinterpret_cast<float*>(base + l.bias_at);
    for (std::int64_t e = 0; e < d.experts; ++e) bias[e] = w.bias ? w.bias[e] : 0.0f;
  };
  impl.pack_expert = [&g](const moe_desc& d, std::int64_t e, const moe_expert_weights& w, void* packed) {
    moe_validate(d);
    check_expert_args(d, e, w);
    const packed_layout l = layout(d, router_gemm_for(d, g), g);
    const expert_offsets& o = e == moe_shared_expert ? l.shared : l.routed;
    auto* ex = static_cast<unsigned char*>(packed) + l.expert_at(e);
    const std::int64_t H = d.hidden, I = o.inter;
    const std::size_t es = dtype_size(d.dt);
    for (std::int64_t c = 0; c < o.gu_chunks; ++c) {
      const std::int64_t n0 = c * kGateUpChunk, w_c = std::min(kGateUpChunk, I - n0);
      // A chunk of output channels is a contiguous row range of the [inter][hidden] matrix.
      g.pack(sub(1, w_c, H, d.dt), static_cast<const unsigned char*>(w.gate) + static_cast<std::size_t>(n0 * H) * es,
             ex + o.gu_chunk_at(o.gate_at, c));
      g.pack(sub(1, w_c, H, d.dt), static_cast<const unsigned char*>(w.up) + static_cast<std::size_t>(n0 * H) * es,
             ex + o.gu_chunk_at(o.up_at, c));
    }
    for (std::int64_t c = 0; c < o.dn_chunks; ++c) {
      const std::int64_t n0 = c * kDownChunk, w_c = std::min(kDownChunk, H - n0);
      g.pack(sub(1, w_c, I, d.dt), static_cast<const unsigned char*>(w.down) + static_cast<std::size_t>(n0 * I) * es,
             ex + o.dn_chunk_at(c));
    }
    const auto gs = static_cast<std::size_t>(weight_scales(d.dt, I, H)) * 4;
    const auto ds = static_cast<std::size_t>(weight_scales(d.dt, H, I)) * 4;
    if (gs) std::memcpy(ex + o.gate_scale_at, w.gate_scale, gs);
    if (gs) std::memcpy(ex + o.up_scale_at, w.up_scale, gs);
    if (ds) std::memcpy(ex + o.down_scale_at, w.down_scale, ds);
  };
  impl.steps = {{"router", step_router},
                {"dispatch", step_dispatch},
                {"experts.gate_up", step_gate_up},
                {"experts.quantize", step_quantize},
                {"experts.down", step_down},
                {"combine", step_combine}};
  return impl;
}

}  // namespace
}  // namespace moe_detail

std::span<const moe_impl> moe_impls() {
  static const std::vector<moe_impl> list = [] {
    std::vector<moe_impl> l;
    for (const auto& g : gemm_impls()) l.push_back(moe_detail::make_grouped(g));
    l.push_back(moe_reference());
    return l;
  }();
  return list;
}

}  // namespace infermark
