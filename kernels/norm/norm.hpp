// Row-wise transformer ops around attention: RMSNorm (optionally fused with the residual add) and
// rotary position embedding (RoPE, neox style: dimension i pairs with i + rot_dim/2). Same contract as
// the other kernels: desc + args, ordered implementation lists with the reference last, pure execute.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "kernels/common/dtype.hpp"
#include "kernels/common/work.hpp"

namespace infermark {

// ---- RMSNorm ----------------------------------------------------------------------------------------
// With residual:  h = src + residual;  residual = h (written back);  dst = h / sqrt(mean(h^2) + eps) * w
// Without:        dst = src / sqrt(mean(src^2) + eps) * w
// src, residual, dst: [rows][dim] in dt (fp32 | bf16); weight: fp32 [dim]. Sums in fp32 (ref: fp64).
// dst may alias src.
struct rmsnorm_desc {
  std::int64_t rows = 1;  // tokens
  std::int64_t dim = 1;   // hidden size
  float eps = 1e-6f;
  bool residual = false;
  dtype dt = dtype::fp32;
};

struct rmsnorm_args {
  const void* src = nullptr;
  void* residual = nullptr;  // read and written when desc.residual
  const float* weight = nullptr;
  void* dst = nullptr;
};

struct rmsnorm_impl {
  std::string_view name;
  std::optional<std::string> (*check)(const rmsnorm_desc& d);
  void (*execute)(const rmsnorm_desc& d, const rmsnorm_args& a, int ithr, int nthr);  // rows split over workers
};

std::span<const rmsnorm_impl> rmsnorm_impls();
const rmsnorm_impl& rmsnorm_reference();
const rmsnorm_impl& rmsnorm_select(const rmsnorm_desc& d);  // validates; throws listing refusals
// Throws std::invalid_argument naming the bad value: non-positive sizes, eps < 0, dt not fp32/bf16.
void rmsnorm_validate(const rmsnorm_desc& d);
// FLOPs: 3 per element (square-accumulate, scale, weight) + 1 more with the residual add.
// Bytes: src + dst + weight (+ residual read and written).
work_model rmsnorm_work(const rmsnorm_desc& d);

// ---- RoPE -------------------------------------------------------------------------------------------
// In place on x [tokens][heads][head_dim] (dt fp32 | bf16): within each head, the rot_dim values starting
// at rot_offset are rotated, pairs (i, i + rot_dim/2) for i < rot_dim/2:
//   x1' = x1 cos - x2 sin,  x2' = x2 cos + x1 sin,  angle = positions[token] * theta^(-2i / rot_dim).
// cos/sin come from a table cos_sin [max_position][rot_dim] (cos for i < rot_dim/2, then sin) built by
// rope_cos_sin_table(), as serving engines keep one. MLA: head_dim 192 (q) / 64 (k_pe), rot_offset 128 / 0,
// rot_dim 64.
struct rope_desc {
  std::int64_t tokens = 1;
  std::int64_t heads = 1;
  std::int64_t head_dim = 128;
  std::int64_t rot_dim = 128;     // even, rot_offset + rot_dim <= head_dim
  std::int64_t rot_offset = 0;
  std::int64_t max_position = 4096;  // rows of the cos/sin table; positions must be < max_position
  float theta = 10000.0f;
  dtype dt = dtype::fp32;
};

struct rope_args {
  void* x = nullptr;
  const std::int32_t* positions = nullptr;  // [tokens]
  const float* cos_sin = nullptr;           // [max_position][rot_dim]
};

struct rope_impl {
  std::string_view name;
  std::optional<std::string> (*check)(const rope_desc& d);
  void (*execute)(const rope_desc& d, const rope_args& a, int ithr, int nthr);  // (token, head) rows split
};

std::span<const rope_impl> rope_impls();
const rope_impl& rope_reference();
const rope_impl& rope_select(const rope_desc& d);
void rope_validate(const rope_desc& d);
// Also checks every position against [0, max_position).
void rope_validate(const rope_desc& d, const rope_args& a);
// Fills table [max_position][rot_dim] (fp64 angles, rounded once to fp32).
void rope_cos_sin_table(const rope_desc& d, float* table);
// FLOPs: 6 per rotated pair (4 mul + 2 add). Bytes: the rotated values read and written, the table rows
// of each token (rot_dim floats per token) and the positions.
work_model rope_work(const rope_desc& d);

}  // namespace infermark
