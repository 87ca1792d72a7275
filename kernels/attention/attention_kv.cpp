// KV append with cache quantization (see attention.hpp).
#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "kernels/attention/attention.hpp"
#include "kernels/attention/attention_msg.hpp"
#include "kernels/common/partition.hpp"

namespace infermark {
namespace {

float src_at(dtype dt, const void* p, std::int64_t i) {
  return dt == dtype::bf16 ? bf16_to_f32(static_cast<const bf16_t*>(p)[i]) : static_cast<const float*>(p)[i];
}

// Converts one row of n values into the cache at element index `at`; returns its scale (1 if none).
float write_row(const kv_append_desc& d, const void* src, std::int64_t src_at_idx, void* cache, std::int64_t at, std::int64_t n) {
  float amax = 0;
  if (d.kv_dt == dtype::int8 || d.kv_dt == dtype::fp8) {
    for (std::int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(src_at(d.src_dt, src, src_at_idx + i)));
  }
  switch (d.kv_dt) {
    case dtype::fp32:
      for (std::int64_t i = 0; i < n; ++i) static_cast<float*>(cache)[at + i] = src_at(d.src_dt, src, src_at_idx + i);
      return 1.0f;
    case dtype::bf16:
      for (std::int64_t i = 0; i < n; ++i) static_cast<bf16_t*>(cache)[at + i] = f32_to_bf16(src_at(d.src_dt, src, src_at_idx + i));
      return 1.0f;
    case dtype::int8: {
      const float sc = amax > 0 ? amax / 127.0f : 1.0f;
      for (std::int64_t i = 0; i < n; ++i) {
        const float q = std::clamp(std::round(src_at(d.src_dt, src, src_at_idx + i) / sc), -127.0f, 127.0f);
        static_cast<std::int8_t*>(cache)[at + i] = static_cast<std::int8_t>(q);
      }
      return sc;
    }
    case dtype::fp8: {
      const float sc = amax > 0 ? amax / 448.0f : 1.0f;
      for (std::int64_t i = 0; i < n; ++i) {
        const float x = src_at(d.src_dt, src, src_at_idx + i) / sc;
        // Zero is mapped here: kernels/common f32_to_fp8_e4m3(0) currently returns a non-zero code.
        static_cast<fp8_t*>(cache)[at + i] = x == 0.0f ? (std::signbit(x) ? 0x80 : 0x00) : f32_to_fp8_e4m3(x);
      }
      return sc;
    }
  }
  return 1.0f;
}

}  // namespace

void kv_append_validate(const kv_append_desc& d, const kv_append_args& a) {
  for (auto [v, name] : {std::pair{d.tokens, "tokens"}, {d.hkv, "hkv"}, {d.dk, "dk"}, {d.dv, "dv"}, {d.block_size, "block_size"},
                         {d.num_blocks, "num_blocks"}})
    if (v <= 0) throw std::invalid_argument(cat("kv_append: ", name, " = ", v, " must be positive"));
  if (d.src_dt != dtype::fp32 && d.src_dt != dtype::bf16)
    throw std::invalid_argument(cat("kv_append: source format '", to_string(d.src_dt), "' unsupported; valid choices: fp32, bf16"));
  for (std::int64_t t = 0; t < d.tokens; ++t)
    if (a.slot_mapping[t] < 0 || a.slot_mapping[t] >= d.num_blocks * d.block_size)
      throw std::invalid_argument(cat("kv_append: slot_mapping[", t, "] = ", a.slot_mapping[t], " outside the cache of ", d.num_blocks,
                                      " blocks x ", d.block_size, " tokens"));
}

void kv_append(const kv_append_desc& d, const kv_append_args& a, int ithr, int nthr) {
  const bool scaled = d.kv_dt == dtype::int8 || d.kv_dt == dtype::fp8;
  const auto [w0, w1] = balance(d.tokens * d.hkv, ithr, nthr);
  for (std::int64_t w = w0; w < w1; ++w) {
    const std::int64_t t = w / d.hkv, h = w % d.hkv, s = a.slot_mapping[t];
    const std::int64_t slot = ((s / d.block_size) * d.hkv + h) * d.block_size + s % d.block_size;
    const float ks = write_row(d, a.k_new, w * d.dk, a.k_cache, slot * d.dk, d.dk);
    if (scaled) a.k_scale[slot] = ks;
    if (d.v_in_k) continue;
    const float vs = write_row(d, a.v_new, w * d.dv, a.v_cache, slot * d.dv, d.dv);
    if (scaled) a.v_scale[slot] = vs;
  }
}

work_model kv_append_work(const kv_append_desc& d) {
  const bool scaled = d.kv_dt == dtype::int8 || d.kv_dt == dtype::fp8;
  const double rows = static_cast<double>(d.tokens * d.hkv);
  const double vals = rows * static_cast<double>(d.dk + (d.v_in_k ? 0 : d.dv));
  const double bytes = vals * static_cast<double>(dtype_size(d.src_dt) + dtype_size(d.kv_dt)) +
                       (scaled ? rows * (d.v_in_k ? 4 : 8) : 0) + static_cast<double>(d.tokens) * 4;
  return work_model{{{"kv_append", scaled ? 2 * vals : 0, bytes}}};
}

}  // namespace infermark
