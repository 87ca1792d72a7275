// Reference RMSNorm / RoPE (fp64, the test oracles), validation, work models and implementation lists.
#include <cmath>
#include <stdexcept>

#include "kernels/attention/attention_msg.hpp"
#include "kernels/common/isa.hpp"
#include "kernels/common/partition.hpp"
#include "kernels/norm/norm.hpp"
#include "kernels/norm/norm_isa.hpp"

namespace infermark {
namespace {

double get(dtype dt, const void* p, std::int64_t i) {
  return dt == dtype::bf16 ? bf16_to_f32(static_cast<const bf16_t*>(p)[i]) : static_cast<const float*>(p)[i];
}
void put(dtype dt, void* p, std::int64_t i, double v) {
  if (dt == dtype::bf16) static_cast<bf16_t*>(p)[i] = f32_to_bf16(static_cast<float>(v));
  else static_cast<float*>(p)[i] = static_cast<float>(v);
}

void rmsnorm_ref(const rmsnorm_desc& d, const rmsnorm_args& a, int ithr, int nthr) {
  const auto [r0, r1] = balance(d.rows, ithr, nthr);
  for (std::int64_t row = r0; row < r1; ++row) {
    const std::int64_t at = row * d.dim;
    double ss = 0;
    for (std::int64_t i = 0; i < d.dim; ++i) {
      double h = get(d.dt, a.src, at + i);
      if (d.residual) {
        h += get(d.dt, a.residual, at + i);
        put(d.dt, a.residual, at + i, h);
        h = get(d.dt, a.residual, at + i);  // the stored (rounded) sum is what gets normalised
      }
      ss += h * h;
    }
    const double inv = 1.0 / std::sqrt(ss / static_cast<double>(d.dim) + d.eps);
    for (std::int64_t i = 0; i < d.dim; ++i) {
      const double h = d.residual ? get(d.dt, a.residual, at + i) : get(d.dt, a.src, at + i);
      put(d.dt, a.dst, at + i, h * inv * a.weight[i]);
    }
  }
}

void rope_ref(const rope_desc& d, const rope_args& a, int ithr, int nthr) {
  const std::int64_t half = d.rot_dim / 2;
  const auto [w0, w1] = balance(d.tokens * d.heads, ithr, nthr);
  for (std::int64_t w = w0; w < w1; ++w) {
    const double pos = a.positions[w / d.heads];
    const std::int64_t base = w * d.head_dim + d.rot_offset;
    for (std::int64_t i = 0; i < half; ++i) {
      // Angles from first principles (not the table) so the table is checked too.
      const double ang = pos * std::pow(static_cast<double>(d.theta), -2.0 * static_cast<double>(i) / static_cast<double>(d.rot_dim));
      const double x1 = get(d.dt, a.x, base + i), x2 = get(d.dt, a.x, base + half + i);
      put(d.dt, a.x, base + i, x1 * std::cos(ang) - x2 * std::sin(ang));
      put(d.dt, a.x, base + half + i, x2 * std::cos(ang) + x1 * std::sin(ang));
    }
  }
}

std::optional<std::string> any(const rmsnorm_desc&) { return std::nullopt; }
std::optional<std::string> any_rope(const rope_desc&) { return std::nullopt; }
template <class D>
std::optional<std::string> need(isa_level level, const D&) {
  if (effective_isa() < level || effective_isa() == isa_level::neon)
    return cat("needs ", to_string(level), " (effective ISA: ", to_string(effective_isa()), ")");
  return std::nullopt;
}
template <class D>
std::optional<std::string> need512(const D& d) { return need(isa_level::avx512, d); }
template <class D>
std::optional<std::string> need2(const D& d) { return need(isa_level::avx2, d); }

void dt_ok(dtype dt, const char* op) {
  if (dt != dtype::fp32 && dt != dtype::bf16)
    throw std::invalid_argument(cat(op, ": format '", to_string(dt), "' unsupported; valid choices: fp32, bf16"));
}

}  // namespace

const rmsnorm_impl& rmsnorm_reference() {
  static const rmsnorm_impl impl{"ref:any", any, rmsnorm_ref};
  return impl;
}

std::span<const rmsnorm_impl> rmsnorm_impls() {
  static const rmsnorm_impl list[] = {
#if defined(__x86_64__) || defined(_M_X64)
      {"avx512:fp32", need512<rmsnorm_desc>, norm_isa::rmsnorm_avx512},
      {"avx2:fp32", need2<rmsnorm_desc>, norm_isa::rmsnorm_avx2},
#endif
      {"generic:fp32", any, norm_isa::rmsnorm_generic},
      rmsnorm_reference(),
  };
  return list;
}

void rmsnorm_validate(const rmsnorm_desc& d) {
  if (d.rows <= 0) throw std::invalid_argument(cat("rmsnorm: rows = ", d.rows, " must be positive"));
  if (d.dim <= 0) throw std::invalid_argument(cat("rmsnorm: dim = ", d.dim, " must be positive"));
  if (!(d.eps >= 0) || std::isinf(d.eps)) throw std::invalid_argument(cat("rmsnorm: eps = ", d.eps, " must be finite and >= 0"));
  dt_ok(d.dt, "rmsnorm");
}

const rmsnorm_impl& rmsnorm_select(const rmsnorm_desc& d) {
  rmsnorm_validate(d);
  for (const auto& impl : rmsnorm_impls())
    if (!impl.check(d)) return impl;
  return rmsnorm_reference();  // accepts everything valid
}

work_model rmsnorm_work(const rmsnorm_desc& d) {
  const double n = static_cast<double>(d.rows * d.dim), es = static_cast<double>(dtype_size(d.dt));
  return work_model{{{"rmsnorm", n * (d.residual ? 4 : 3), n * es * (d.residual ? 4 : 2) + static_cast<double>(d.dim) * 4}}};
}

const rope_impl& rope_reference() {
  static const rope_impl impl{"ref:any", any_rope, rope_ref};
  return impl;
}

std::span<const rope_impl> rope_impls() {
  static const rope_impl list[] = {
#if defined(__x86_64__) || defined(_M_X64)
      {"avx512:fp32", need512<rope_desc>, norm_isa::rope_avx512},
      {"avx2:fp32", need2<rope_desc>, norm_isa::rope_avx2},
#endif
      {"generic:fp32", any_rope, norm_isa::rope_generic},
      rope_reference(),
  };
  return list;
}

void rope_validate(const rope_desc& d) {
  if (d.tokens <= 0) throw std::invalid_argument(cat("rope: tokens = ", d.tokens, " must be positive"));
  if (d.heads <= 0) throw std::invalid_argument(cat("rope: heads = ", d.heads, " must be positive"));
  if (d.head_dim <= 0) throw std::invalid_argument(cat("rope: head_dim = ", d.head_dim, " must be positive"));
  if (d.rot_dim <= 0 || d.rot_dim % 2 != 0) throw std::invalid_argument(cat("rope: rot_dim = ", d.rot_dim, " must be positive and even"));
  if (d.rot_offset < 0 || d.rot_offset + d.rot_dim > d.head_dim)
    throw std::invalid_argument(cat("rope: rot_offset = ", d.rot_offset, " + rot_dim = ", d.rot_dim, " exceeds head_dim = ", d.head_dim));
  if (d.max_position <= 0) throw std::invalid_argument(cat("rope: max_position = ", d.max_position, " must be positive"));
  if (!(d.theta > 1) || std::isinf(d.theta)) throw std::invalid_argument(cat("rope: theta = ", d.theta, " must be finite and > 1"));
  dt_ok(d.dt, "rope");
}

void rope_validate(const rope_desc& d, const rope_args& a) {
  rope_validate(d);
  for (std::int64_t t = 0; t < d.tokens; ++t)
    if (a.positions[t] < 0 || a.positions[t] >= d.max_position)
      throw std::invalid_argument(cat("rope: positions[", t, "] = ", a.positions[t], " outside [0, max_position = ", d.max_position, ")"));
}

const rope_impl& rope_select(const rope_desc& d) {
  rope_validate(d);
  for (const auto& impl : rope_impls())
    if (!impl.check(d)) return impl;
  return rope_reference();
}

void rope_cos_sin_table(const rope_desc& d, float* table) {
  const std::int64_t half = d.rot_dim / 2;
  for (std::int64_t p = 0; p < d.max_position; ++p)
    for (std::int64_t i = 0; i < half; ++i) {
      const double ang = static_cast<double>(p) * std::pow(static_cast<double>(d.theta), -2.0 * static_cast<double>(i) / static_cast<double>(d.rot_dim));
      table[p * d.rot_dim + i] = static_cast<float>(std::cos(ang));
      table[p * d.rot_dim + half + i] = static_cast<float>(std::sin(ang));
    }
}

work_model rope_work(const rope_desc& d) {
  const double rows = static_cast<double>(d.tokens * d.heads), es = static_cast<double>(dtype_size(d.dt));
  const double pairs = rows * static_cast<double>(d.rot_dim / 2);
  return work_model{{{"rope", 6 * pairs, 2 * 2 * pairs * es + static_cast<double>(d.tokens) * (static_cast<double>(d.rot_dim) * 4 + 4)}}};
}

}  // namespace infermark
