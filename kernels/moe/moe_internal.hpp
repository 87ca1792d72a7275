// Helpers shared by the MoE implementations (not part of the public interface).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "kernels/moe/moe.hpp"

namespace infermark::moe_detail {

inline std::size_t align64(std::size_t n) { return (n + 63) & ~static_cast<std::size_t>(63); }

// Bump allocator over a byte range: computes offsets (base == nullptr) or hands out pointers.
class carver {
 public:
  explicit carver(void* base = nullptr) : base_(static_cast<unsigned char*>(base)) {}
  template <class T>
  T* take(std::size_t count) {
    const std::size_t at = used_;
    used_ += align64(count * sizeof(T));
    return base_ ? reinterpret_cast<T*>(base_ + at) : nullptr;
  }
  std::size_t used() const { return used_; }

 private:
  unsigned char* base_;
  std::size_t used_ = 0;
};

// Scale counts of weight matrices (gemm.hpp layouts).
inline std::int64_t weight_scales(dtype dt, std::int64_t n, std::int64_t k) {
  if (dt == dtype::int8) return n;
  if (dt == dtype::fp8) return ((n + gemm_fp8_block - 1) / gemm_fp8_block) * ((k + gemm_fp8_block - 1) / gemm_fp8_block);
  return 0;
}

// The expert activation for one element (fp32, the same code in every implementation).
inline float activate(moe_activation act, float g, float u) {
  if (act == moe_activation::swiglu) return g / (1.0f + std::exp(-g)) * u;
  g = std::min(g, 7.0f);
  u = std::clamp(u, -7.0f, 7.0f);
  return g / (1.0f + std::exp(-1.702f * g)) * (u + 1.0f);
}

// Weight and activation bytes of one row/matrix in format dt, scales included.
inline std::size_t act_row_bytes(dtype dt, std::int64_t n) {
  return static_cast<std::size_t>(n) * dtype_size(dt);
}

}  // namespace infermark::moe_detail
