// Attention over a paged KV cache: every implementation x every runnable ISA level x several thread
// counts against the fp64 reference, on seeded awkward shapes. Cache slots no query may see (unused
// block slots, tokens before a sliding window, spare blocks) hold NaN (scales too for int8/fp8) and
// block-table entries no query needs are -1, so any out-of-range read shows up as NaN or an ASan error.
//
// Tolerance: every format is compared at 1e-5 normwise (max |out - ref| / max |ref|): low-precision
// formats change what is stored, not the arithmetic -- the optimized kernels dequantize exactly to fp32
// and accumulate in fp32, the reference reads the same stored values in fp64. The quantization error of
// int8/fp8 caches themselves is bounded separately (NMSE test below).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "kernels/attention/attention.hpp"
#include "kernels/common/isa.hpp"
#include "kernels/common/partition.hpp"

namespace infermark {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

struct shape {
  const char* name;
  std::int64_t hq, hkv, dk, dv, block_size, window;
  bool sinks, v_in_k;
  std::vector<int> q_lens, ctx_lens;
};

// A filled problem: desc + owned buffers + args pointing at them.
struct problem {
  attention_desc d;
  std::vector<std::int32_t> q_start, ctx, table;
  std::vector<std::uint8_t> q, k, v;
  std::vector<float> k_scale, v_scale, sinks, out;
  std::vector<std::max_align_t> scratch;

  attention_args args() {
    attention_args a;
    a.q = q.data();
    a.k_cache = k.data();
    a.v_cache = d.v_in_k ? nullptr : v.data();
    a.k_scale = k_scale.empty() ? nullptr : k_scale.data();
    a.v_scale = v_scale.empty() ? nullptr : v_scale.data();
    a.block_table = table.data();
    a.q_start = q_start.data();
    a.ctx_lens = ctx.data();
    a.sinks = d.sinks ? sinks.data() : nullptr;
    a.out = out.data();
    a.scratch = scratch.data();
    return a;
  }
};

void store(dtype dt, std::vector<std::uint8_t>& buf, std::int64_t idx, float x) {
  switch (dt) {
    case dtype::fp32: std::memcpy(&buf[idx * 4], &x, 4); break;
    case dtype::bf16: {
      const bf16_t h = f32_to_bf16(x);
      std::memcpy(&buf[idx * 2], &h, 2);
      break;
    }
    case dtype::int8: buf[idx] = static_cast<std::uint8_t>(static_cast<std::int8_t>(std::lround(std::clamp(x, -127.f, 127.f)))); break;
    case dtype::fp8: buf[idx] = f32_to_fp8_e4m3(x); break;
  }
}

// Fills `n` values of one cache row (already-quantized storage) from `src`, returning its scale.
float store_row(dtype dt, std::vector<std::uint8_t>& buf, std::int64_t at, const float* src, std::int64_t n) {
  float sc = 1.0f;
  if (dt == dtype::int8 || dt == dtype::fp8) {
    float amax = 0;
    for (std::int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(src[i]));
    sc = amax > 0 ? amax / (dt == dtype::int8 ? 127.0f : 448.0f) : 1.0f;
  }
  for (std::int64_t i = 0; i < n; ++i) store(dt, buf, at + i, src[i] / sc);
  return sc;
}

void fill_nan(dtype dt, std::vector<std::uint8_t>& buf) {
  if (dt == dtype::fp32) {
    for (std::size_t i = 0; i < buf.size() / 4; ++i) std::memcpy(&buf[i * 4], &kNaN, 4);
  } else if (dt == dtype::bf16) {
    for (std::size_t i = 0; i < buf.size() / 2; ++i) store(dt, buf, static_cast<std::int64_t>(i), kNaN);
  } else if (dt == dtype::fp8) {
    std::fill(buf.begin(), buf.end(), 0x7f);
  } else {
    std::fill(buf.begin(), buf.end(), 0x80);  // int8 has no NaN: the NaN scale poisons these slots
  }
}

problem make_problem(const shape& s, dtype q_dt, dtype kv_dt, std::int64_t splits, std::uint64_t seed) {
  problem p;
  attention_desc& d = p.d;
  d.batch = static_cast<std::int64_t>(s.q_lens.size());
  d.hq = s.hq;
  d.hkv = s.hkv;
  d.dk = s.dk;
  d.dv = s.dv;
  d.block_size = s.block_size;
  d.window = s.window;
  d.sinks = s.sinks;
  d.v_in_k = s.v_in_k;
  d.splits = splits;
  d.q_dt = q_dt;
  d.kv_dt = kv_dt;
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
  p.q_start.push_back(0);
  std::int64_t blocks = 0, max_blocks = 1;
  for (std::size_t b = 0; b < s.q_lens.size(); ++b) {
    p.q_start.push_back(p.q_start.back() + s.q_lens[b]);
    p.ctx.push_back(s.ctx_lens[b]);
    blocks += div_up(s.ctx_lens[b], d.block_size);
    max_blocks = std::max<std::int64_t>(max_blocks, div_up(s.ctx_lens[b], d.block_size) + 1);  // + a spare entry
  }
  d.total_q = p.q_start.back();
  d.num_blocks = blocks + 3;  // spare blocks, never referenced, stay NaN
  d.max_blocks_per_seq = max_blocks;
  // Blocks handed out in a shuffled order so consecutive logical blocks are not adjacent in memory.
  std::vector<std::int32_t> order(static_cast<std::size_t>(d.num_blocks));
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  p.table.assign(static_cast<std::size_t>(d.batch * max_blocks), -1);
  const std::size_t kv_es = dtype_size(kv_dt);
  const bool scaled = kv_dt == dtype::int8 || kv_dt == dtype::fp8;
  const std::int64_t slots = d.num_blocks * d.hkv * d.block_size;
  p.k.resize(static_cast<std::size_t>(slots * d.dk) * kv_es);
  fill_nan(kv_dt, p.k);
  if (!d.v_in_k) {
    p.v.resize(static_cast<std::size_t>(slots * d.dv) * kv_es);
    fill_nan(kv_dt, p.v);
  }
  if (scaled) {
    p.k_scale.assign(static_cast<std::size_t>(slots), kNaN);
    if (!d.v_in_k) p.v_scale.assign(static_cast<std::size_t>(slots), kNaN);
  }
  std::size_t next = 0;
  std::vector<float> row(static_cast<std::size_t>(std::max(d.dk, d.dv)));
  for (std::int64_t b = 0; b < d.batch; ++b) {
    const std::int64_t ctx = p.ctx[b], q_len = s.q_lens[b];
    const std::int64_t lo = attention_visible(d, ctx - q_len).lo;  // first token any query sees
    for (std::int64_t blk = 0; blk < div_up(ctx, d.block_size); ++blk) {
      const std::int32_t phys = order[next++];
      if ((blk + 1) * d.block_size > lo) p.table[b * max_blocks + blk] = phys;  // else: never needed
      for (std::int64_t h = 0; h < d.hkv; ++h)
        for (std::int64_t t = 0; t < d.block_size; ++t) {
          const std::int64_t j = blk * d.block_size + t;
          if (j < lo || j >= ctx) continue;  // invisible or unused slot: stays NaN
          const std::int64_t slot = (phys * d.hkv + h) * d.block_size + t;
          for (std::int64_t i = 0; i < d.dk; ++i) row[i] = uni(rng);
          const float ks = store_row(kv_dt, p.k, slot * d.dk, row.data(), d.dk);
          if (scaled) p.k_scale[slot] = ks;
          if (!d.v_in_k) {
            for (std::int64_t i = 0; i < d.dv; ++i) row[i] = uni(rng);
            const float vs = store_row(kv_dt, p.v, slot * d.dv, row.data(), d.dv);
            if (scaled) p.v_scale[slot] = vs;
          }
        }
    }
  }
  p.q.resize(static_cast<std::size_t>(d.total_q * d.hq * d.dk) * dtype_size(q_dt));
  for (std::int64_t i = 0; i < d.total_q * d.hq * d.dk; ++i) store(q_dt, p.q, i, 2.0f * uni(rng));
  for (std::int64_t h = 0; h < d.hq; ++h) p.sinks.push_back(2.0f * uni(rng));
  p.out.assign(static_cast<std::size_t>(d.total_q * d.hq * d.dv), kNaN);
  return p;
}

// Runs every stage with the workers called one after another (what a backend does concurrently).
void run(const attention_impl& impl, problem& p, int nthr) {
  p.scratch.assign(impl.scratch_bytes(p.d, nthr) / sizeof(std::max_align_t) + 1, {});
  std::fill(p.out.begin(), p.out.end(), kNaN);
  const attention_args a = p.args();
  for (int stage = 0; stage < impl.stages(p.d); ++stage)
    for (int ithr = 0; ithr < nthr; ++ithr) impl.execute(p.d, a, stage, ithr, nthr);
}

// max |got - want| / max |want|, with NaN/inf required in exactly the same places.
double normwise_error(const std::vector<float>& got, const std::vector<float>& want, std::string* where) {
  double max_err = 0, max_ref = 0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    const bool special_w = !std::isfinite(want[i]), special_g = !std::isfinite(got[i]);
    if (special_w || special_g) {
      const bool same = (std::isnan(want[i]) && std::isnan(got[i])) || want[i] == got[i];
      if (!same) {
        *where = "element " + std::to_string(i) + ": got " + std::to_string(got[i]) + ", want " + std::to_string(want[i]);
        return std::numeric_limits<double>::infinity();
      }
      continue;
    }
    max_ref = std::max(max_ref, std::fabs(static_cast<double>(want[i])));
    const double e = std::fabs(static_cast<double>(got[i]) - want[i]);
    if (e > max_err) {
      max_err = e;
      *where = "element " + std::to_string(i);
    }
  }
  return max_ref > 0 ? max_err / max_ref : max_err;
}

// "avx512:bf16dot" (the only implementation with an nmse_bound) rounds P to bf16 (unit round-off u = 2^-8) before P.V, as FlashAttention does: each
// output is a sum of p_t (1 + d_t) v_t / l with |d_t| <= u, so with zero-mean V the NMSE is about u^2/3
// (~5e-6). Bound: u^2 = 2^-16 (1.5e-5). Every other path is within 1e-5 normwise.
constexpr double kBf16DotNmse = 1.0 / 65536;

double nmse(const std::vector<float>& got, const std::vector<float>& want) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    const double e = static_cast<double>(got[i]) - want[i];
    num += std::isnan(e) ? INFINITY : e * e;
    den += static_cast<double>(want[i]) * want[i];
  }
  return den > 0 ? num / den : num;
}

const std::vector<shape>& shapes() {
  static const std::vector<shape> list = {
      // name, hq, hkv, dk, dv, block, window, sinks, v_in_k, q_lens, ctx_lens
      {"gqa_decode", 8, 2, 64, 64, 16, 0, false, false, {1, 1, 1}, {1, 17, 100}},
      {"mha_decode_b64", 3, 3, 32, 32, 64, 0, false, false, {1, 1}, {3, 130}},
      // enough (sequence, KV head) units for multi-head decode items (heads taking turns tile by tile)
      {"mha_decode_head_chunks", 16, 16, 32, 32, 16, 0, true, false, {1, 1, 1}, {5, 40, 100}},
      {"mqa_decode", 4, 1, 48, 48, 16, 0, false, false, {1, 1}, {33, 16}},
      {"gqa_mtp2", 6, 2, 32, 32, 16, 0, false, false, {2, 2}, {2, 45}},
      {"prefill_causal", 4, 2, 32, 32, 16, 0, false, false, {17, 40, 1}, {17, 40, 1}},
      {"prefill_chunked", 2, 1, 64, 64, 16, 0, false, false, {5, 33}, {70, 50}},
      {"mla_decode", 16, 1, 576, 512, 64, 0, false, true, {1, 2}, {33, 70}},
      // 40 heads x 2 tokens: enough rows for the transposed-K broadcast path, with a remainder tile
      {"mla_decode_many_heads", 40, 1, 576, 512, 16, 0, false, true, {2, 1}, {40, 70}},
      {"mla_prefill", 2, 2, 192, 128, 16, 0, false, false, {20}, {20}},
      {"window_sinks_decode", 4, 2, 64, 64, 16, 8, true, false, {1, 1, 1}, {5, 40, 8}},
      {"window_sinks_prefill", 4, 2, 64, 64, 16, 7, true, false, {12, 3}, {12, 40}},
      // Row-lane path (bf16dot, >= 12 rows of one KV head): 17 rows (a second, nearly empty row vector)
      {"lanes_group17", 34, 2, 64, 64, 16, 0, true, false, {1, 1, 1}, {1, 37, 100}},
      // 1 head: 13 rows are 13 query tokens of a chunk; contexts off the tile and block sizes
      {"lanes_mla_one_head_chunk", 1, 1, 576, 512, 64, 0, false, true, {13, 1}, {50, 9}},
      // 3 heads x 5 / 20 tokens (1 and 4 row vectors), window, sinks, dv 32, block 64
      {"lanes_three_heads_window", 3, 1, 64, 32, 64, 9, true, false, {5, 20}, {70, 20}},
      // 96 / 48 rows (row-vector chunks of 3), block 16
      {"lanes_mla_many_heads_mtp", 48, 1, 576, 512, 16, 0, false, true, {2, 1}, {45, 33}},
      // Half a row vector (8 rows, two lanes per row: run_item_lanes<S, true>): group 8 decode with sinks,
      // 4 KV heads, dv != dk
      {"lanes_split_group8", 32, 4, 64, 32, 16, 0, true, false, {1, 1, 1}, {1, 37, 100}},
      // 8 rows as 2 tokens x group 4 (multi-token prediction), window, block 64
      {"lanes_split_mtp_window", 8, 2, 64, 64, 64, 9, false, false, {2, 2}, {2, 75}},
      // 24 (sequence, KV head) units: on 1-2 threads the items take 3 or 1 KV heads (the last item of a
      // sequence 2), heads taking turns tile by tile
      {"lanes_split_head_chunks", 64, 8, 32, 32, 16, 0, true, false, {1, 1, 1}, {5, 40, 100}},
      // Group 4 decode with multi-head items (direct path), window, block 64, dv != dk
      {"gqa4_head_chunks_window", 32, 8, 64, 32, 64, 9, false, false, {1, 1, 1}, {5, 70, 130}},
      // MLA with 8 heads (one KV head, V in the K rows, dv 512)
      {"lanes_split_mla_8_heads", 8, 1, 576, 512, 16, 0, false, true, {1, 1}, {33, 100}},
  };
  return list;
}

struct format {
  dtype q, kv;
};
const format kFormats[] = {{dtype::fp32, dtype::fp32}, {dtype::bf16, dtype::bf16}, {dtype::bf16, dtype::int8}, {dtype::fp32, dtype::fp8},
                           {dtype::bf16, dtype::fp8}};

class AttentionTest : public ::testing::TestWithParam<std::tuple<int, int>> {};

TEST_P(AttentionTest, EveryImplIsaAndThreadCountMatchesReference) {
  const shape& s = shapes()[static_cast<std::size_t>(std::get<0>(GetParam()))];
  const format f = kFormats[std::get<1>(GetParam())];
  for (std::int64_t splits : {1, 3}) {
    problem p = make_problem(s, f.q, f.kv, splits, 1234 + std::get<0>(GetParam()));
    attention_validate(p.d, p.args());
    run(attention_reference(), p, 2);
    const std::vector<float> want = p.out;
    for (float x : want) ASSERT_TRUE(std::isfinite(x)) << "reference read a NaN slot: the test set-up is wrong";
    for (isa_level level : runnable_isas()) {
      scoped_isa_cap cap(level);
      for (const auto& impl : attention_impls()) {
        if (impl.check(p.d)) continue;
        for (int nthr : {1, 2, 5}) {
          run(impl, p, nthr);
          std::string where;
          if (impl.nmse_bound > 0) {  // P rounded to bf16: NMSE bound (see kBf16DotNmse)
            EXPECT_EQ(impl.nmse_bound, kBf16DotNmse) << impl.name;
            const double e = nmse(p.out, want);
            EXPECT_LE(e, impl.nmse_bound) << s.name << " " << impl.name << " nthr " << nthr << " splits " << splits;
            continue;
          }
          const double err = normwise_error(p.out, want, &where);
          EXPECT_LE(err, 1e-5) << s.name << " " << impl.name << " isa " << to_string(level) << " nthr " << nthr << " splits "
                               << splits << " q " << to_string(f.q) << " kv " << to_string(f.kv) << " at " << where;
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, AttentionTest,
                         ::testing::Combine(::testing::Range(0, static_cast<int>(shapes().size())), ::testing::Range(0, static_cast<int>(std::size(kFormats)))),
                         [](const auto& info) {
                           const format f = kFormats[std::get<1>(info.param)];
                           return std::string(shapes()[static_cast<std::size_t>(std::get<0>(info.param))].name) + "_" +
                                  std::string(to_string(f.q)) + "_" + std::string(to_string(f.kv));
                         });

TEST(Attention, SplitMergeEqualsUnsplit) {
  const shape s{"long", 8, 2, 64, 64, 16, 0, true, false, {1, 1}, {300, 77}};
  problem p = make_problem(s, dtype::fp32, dtype::bf16, 1, 7);
  const attention_impl& impl = attention_select(p.d);
  run(impl, p, 2);
  const std::vector<float> unsplit = p.out;
  for (std::int64_t splits : {2, 5, 16}) {  // 16 splits of 300 tokens leave some splits empty
    p.d.splits = splits;
    run(impl, p, 3);
    std::string where;
    EXPECT_LE(normwise_error(p.out, unsplit, &where), 1e-6) << impl.name << " splits " << splits << " at " << where;
  }
}

TEST(Attention, NanAndInfPositionsMatchReference) {
  const shape s{"special", 4, 2, 32, 32, 16, 0, false, false, {1, 1}, {20, 9}};
  problem p = make_problem(s, dtype::fp32, dtype::fp32, 1, 11);
  // A NaN in the query of (row 0, head 1) poisons that output row only.
  float nan = kNaN;
  std::memcpy(&p.q[(0 * p.d.hq + 1) * p.d.dk * 4 + 4 * 5], &nan, 4);
  // +inf in value column 3 of sequence 1's token 0 (visible to its query): that column becomes inf for
  // the query heads of KV head 0.
  const std::int64_t slot = (p.table[1 * p.d.max_blocks_per_seq + 0] * p.d.hkv + 0) * p.d.block_size + 0;
  const float inf = std::numeric_limits<float>::infinity();
  std::memcpy(&p.v[(slot * p.d.dv + 3) * 4], &inf, 4);
  run(attention_reference(), p, 1);
  const std::vector<float> want = p.out;
  ASSERT_TRUE(std::isnan(want[1 * p.d.dv]));
  ASSERT_TRUE(std::isinf(want[(1 * p.d.hq + 0) * p.d.dv + 3]));
  for (isa_level level : runnable_isas()) {
    scoped_isa_cap cap(level);
    for (std::int64_t splits : {1, 2}) {
      p.d.splits = splits;
      const attention_impl& impl = attention_select(p.d);
      run(impl, p, 2);
      std::string where;
      EXPECT_LE(normwise_error(p.out, want, &where), 1e-5) << impl.name << " splits " << splits << " at " << where;
    }
  }
}

TEST(Attention, NanCodesOfAnFp8CacheReachTheSameOutputs) {
  // e4m3 NaN codes (0x7f, 0xff) in the cache: in V column 3 of sequence 1's token 0, every query head of
  // KV head 0 gets NaN in column 3; in K of sequence 0's token 2, KV head 1's query heads get NaN rows.
  // Group 8 and 16 with bf16 Q take the row-lane paths, which convert each tile to bf16.
  for (std::int64_t group : {8, 16}) {
    const shape s{"nan_fp8", 2 * group, 2, 64, 64, 16, 0, false, false, {1, 1}, {20, 9}};
    problem p = make_problem(s, dtype::bf16, dtype::fp8, 1, 13);
    const std::int64_t bs = p.d.block_size, mb = p.d.max_blocks_per_seq;
    p.v[((p.table[1 * mb] * p.d.hkv + 0) * bs + 0) * p.d.dv + 3] = 0x7f;
    p.k[((p.table[0] * p.d.hkv + 1) * bs + 2) * p.d.dk + 5] = 0xff;
    run(attention_reference(), p, 1);
    const std::vector<float> want = p.out;
    ASSERT_TRUE(std::isnan(want[(1 * p.d.hq + 0) * p.d.dv + 3]) && !std::isnan(want[(1 * p.d.hq + 0) * p.d.dv + 4]));
    ASSERT_TRUE(std::isnan(want[(0 * p.d.hq + group) * p.d.dv]) && !std::isnan(want[(0 * p.d.hq + 0) * p.d.dv]));
    for (isa_level level : runnable_isas()) {
      scoped_isa_cap cap(level);
      const attention_impl& impl = attention_select(p.d);
      run(impl, p, 2);
      for (std::size_t i = 0; i < want.size(); ++i)
        ASSERT_EQ(std::isnan(p.out[i]), std::isnan(want[i])) << impl.name << " group " << group << " output " << i;
    }
  }
}

TEST(Attention, MaskIsExact) {
  // Changing a token that a query must not see (after it, or before its window) leaves its output
  // bit-identical; changing a visible one changes it.
  const shape s{"mask", 2, 1, 32, 32, 16, 5, false, false, {10}, {10}};
  problem p = make_problem(s, dtype::fp32, dtype::fp32, 1, 5);
  const attention_impl& impl = attention_select(p.d);
  run(impl, p, 1);
  const std::vector<float> before = p.out;
  const std::int64_t slot = (p.table[0] * p.d.hkv + 0) * p.d.block_size + 6;  // token 6
  for (std::int64_t i = 0; i < p.d.dk; ++i) {
    float x = 3.0f;
    std::memcpy(&p.k[(slot * p.d.dk + i) * 4], &x, 4);
    std::memcpy(&p.v[(slot * p.d.dv + i) * 4], &x, 4);
  }
  run(impl, p, 1);
  for (std::int64_t row = 0; row < 10; ++row) {
    const bool sees = row >= 6 && row - 5 + 1 <= 6;  // window 5: rows 6..10 see token 6
    for (std::int64_t i = 0; i < p.d.hq * p.d.dv; ++i) {
      const float a = before[row * p.d.hq * p.d.dv + i], b = p.out[row * p.d.hq * p.d.dv + i];
      if (!sees) {
        ASSERT_EQ(std::memcmp(&a, &b, 4), 0) << "row " << row << " changed by a token it must not see";
      }
    }
    if (sees) {
      EXPECT_NE(before[row * p.d.hq * p.d.dv], p.out[row * p.d.hq * p.d.dv]) << "row " << row;
    }
  }
}

TEST(Attention, HeadDimsTheVectorKernelsCannotTileAreRefusedAndStillRun) {
  const shape s{"odd_dims", 3, 1, 20, 12, 16, 0, false, false, {1, 3}, {17, 3}};
  problem p = make_problem(s, dtype::fp32, dtype::fp32, 2, 3);
  run(attention_reference(), p, 1);
  const std::vector<float> want = p.out;
  const attention_impl& impl = attention_select(p.d);
  for (const auto& i : attention_impls())
    if (i.name.rfind("avx", 0) == 0) {
      const auto why = i.check(p.d);
      ASSERT_TRUE(why.has_value()) << i.name;
      if (why->rfind("needs ", 0) == 0) continue;  // refused for the ISA (CPU or INFERMARK_MAX_ISA cap) first
      EXPECT_NE(why->find("dk = 20"), std::string::npos) << *why;
    }
  run(impl, p, 2);
  std::string where;
  EXPECT_LE(normwise_error(p.out, want, &where), 1e-5) << impl.name << " at " << where;
}

TEST(Attention, QuantizedCacheErrorIsBounded) {
  // The int8 / fp8 cache changes the answer by quantization only: NMSE against the fp32-cache result of
  // the same data. Bounds (documented): int8 per-token absmax scaling <= 1e-4, fp8 e4m3 <= 2e-3.
  const shape s{"quant", 8, 2, 64, 64, 16, 0, false, false, {1, 4}, {200, 64}};
  problem exact = make_problem(s, dtype::fp32, dtype::fp32, 1, 21);
  run(attention_reference(), exact, 1);
  for (auto [dt, bound] : {std::pair{dtype::int8, 1e-4}, std::pair{dtype::fp8, 2e-3}}) {
    problem qp = make_problem(s, dtype::fp32, dt, 1, 21);  // same seed: same random values before storage
    const attention_impl& impl = attention_select(qp.d);
    run(impl, qp, 2);
    double num = 0, den = 0;
    for (std::size_t i = 0; i < qp.out.size(); ++i) {
      num += (qp.out[i] - exact.out[i]) * (qp.out[i] - exact.out[i]);
      den += exact.out[i] * exact.out[i];
    }
    EXPECT_LE(num / den, bound) << to_string(dt);
    EXPECT_GT(num / den, 0.0) << to_string(dt) << ": quantization had no effect -- the test is not testing";
  }
}

std::string invalid_message(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "(no exception)";
}

TEST(Attention, BadInputIsRejectedNamingTheValue) {
  const shape s{"bad", 4, 2, 32, 32, 16, 0, false, false, {1, 2}, {20, 9}};
  {
    problem p = make_problem(s, dtype::fp32, dtype::fp32, 1, 1);
    p.d.hkv = 3;
    EXPECT_NE(invalid_message([&] { attention_validate(p.d); }).find("hkv = 3"), std::string::npos);
  }
  {
    problem p = make_problem(s, dtype::fp32, dtype::fp32, 1, 1);
    p.table[1] = static_cast<std::int32_t>(p.d.num_blocks);  // sequence 0's second block
    EXPECT_NE(invalid_message([&] { attention_validate(p.d, p.args()); }).find("block_table[0][1] = " + std::to_string(p.d.num_blocks)),
              std::string::npos);
  }
  {
    problem p = make_problem(s, dtype::fp32, dtype::fp32, 1, 1);
    p.ctx[1] = static_cast<std::int32_t>(p.d.max_blocks_per_seq * p.d.block_size + 1);
    EXPECT_NE(invalid_message([&] { attention_validate(p.d, p.args()); }).find("context " + std::to_string(p.ctx[1])), std::string::npos);
  }
  {
    problem p = make_problem(s, dtype::fp32, dtype::fp32, 1, 1);
    p.ctx[1] = 1;  // fewer cached tokens than new queries
    EXPECT_NE(invalid_message([&] { attention_validate(p.d, p.args()); }).find("q_len = 2 > context 1"), std::string::npos);
  }
  {
    problem p = make_problem(s, dtype::fp32, dtype::fp32, 1, 1);
    p.d.window = -4;
    EXPECT_NE(invalid_message([&] { attention_validate(p.d); }).find("window = -4"), std::string::npos);
    p.d.window = 0;
    p.d.q_dt = dtype::int8;
    EXPECT_NE(invalid_message([&] { attention_select(p.d); }).find("'int8'"), std::string::npos);
    p.d.q_dt = dtype::fp32;
    p.d.v_in_k = true;
    p.d.dv = 64;
    EXPECT_NE(invalid_message([&] { attention_validate(p.d); }).find("dv = 64"), std::string::npos);
  }
  EXPECT_NE(invalid_message([] { attention_find("avx9:nothing"); }).find("ref:any"), std::string::npos);
}

TEST(Attention, WorkModelCountsVisiblePairs) {
  // 2 sequences: decode at ctx 10 and prefill of 4 (causal: 1+2+3+4 = 10 pairs), window 0.
  attention_desc d;
  d.batch = 2;
  d.total_q = 5;
  d.hq = 4;
  d.hkv = 2;
  d.dk = 8;
  d.dv = 8;
  d.kv_dt = dtype::bf16;
  const std::vector<std::int32_t> q_start{0, 1, 5}, ctx{10, 4};
  const work_model w = attention_work(d, q_start, ctx);
  ASSERT_EQ(w.phases.size(), 1u);
  EXPECT_DOUBLE_EQ(w.flops(), 20.0 * 4 * (2 * 8 + 2 * 8));
  // q 5*4*8*4 + out 5*4*8*4 + kv (10+4 tokens)*2 heads*16*2 bytes + index (5 ints + 1 + 1 blocks)*4.
  EXPECT_DOUBLE_EQ(w.bytes(), 640.0 + 640.0 + 14 * 2 * 16 * 2 + (5 + 2) * 4);
  d.window = 3;  // pairs: decode 3; prefill 1+2+3+3 = 9
  EXPECT_DOUBLE_EQ(attention_work(d, q_start, ctx).flops(), 12.0 * 4 * 32);
}

}  // namespace
}  // namespace infermark
