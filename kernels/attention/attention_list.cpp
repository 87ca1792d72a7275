// The ordered implementation list for attention: widest ISA first, the reference last.
#include <stdexcept>

#include "kernels/attention/attention_core.hpp"
#include "kernels/attention/attention_msg.hpp"
#include "kernels/attention/attention_isa.hpp"
#include "kernels/common/isa.hpp"

namespace infermark {
namespace {

std::optional<std::string> needs(isa_level level) {
  if (effective_isa() < level || (level != isa_level::neon && effective_isa() == isa_level::neon))
    return cat("needs ", to_string(level), " (effective ISA: ", to_string(effective_isa()), ")");
  return std::nullopt;
}

#if defined(__x86_64__) || defined(_M_X64)
std::optional<std::string> check_avx512(const attention_desc& d) {
  if (auto r = needs(isa_level::avx512)) return r;
  return attn_core::check_dims(d, 16, "avx512:fp32acc");
}
std::optional<std::string> check_avx512_bf16dot(const attention_desc& d) {
  if (auto r = needs(isa_level::avx512)) return r;
  if (!effective_features().avx512_bf16) return std::string("needs AVX512_BF16 (vdpbf16ps)");
  if (auto r = attn_core::check_dims(d, 32, "avx512:bf16dot")) return r;
  if (d.q_dt != dtype::bf16 || d.kv_dt == dtype::fp32)
    return cat("needs bf16 Q and a bf16, int8 or fp8 cache (q ", to_string(d.q_dt), ", kv ", to_string(d.kv_dt), ")");
  return std::nullopt;
}
std::optional<std::string> check_avx2(const attention_desc& d) {
  if (auto r = needs(isa_level::avx2)) return r;
  return attn_core::check_dims(d, 8, "avx2:fp32acc");
}
#endif
std::optional<std::string> check_generic(const attention_desc&) { return std::nullopt; }

}  // namespace

std::span<const attention_impl> attention_impls() {
  static const attention_impl list[] = {
#if defined(__x86_64__) || defined(_M_X64)
      // P rounded to bf16 (u = 2^-8): NMSE about u^2/3 for zero-mean V; bound u^2.
      {"avx512:bf16dot", check_avx512_bf16dot, attn_core::scratch_bytes, attn_core::stages, attn_isa::execute_avx512_bf16dot, 1.0 / 65536},
      {"avx512:fp32acc", check_avx512, attn_core::scratch_bytes, attn_core::stages, attn_isa::execute_avx512},
      {"avx2:fp32acc", check_avx2, attn_core::scratch_bytes, attn_core::stages, attn_isa::execute_avx2},
#endif
      {"generic:fp32acc", check_generic, attn_core::scratch_bytes, attn_core::stages, attn_isa::execute_generic},
      attention_reference(),
  };
  return list;
}

const attention_impl& attention_select(const attention_desc& d) {
  attention_validate(d);
  std::string why;
  for (const auto& impl : attention_impls()) {
    const auto r = impl.check(d);
    if (!r) return impl;
    why += cat("; ", impl.name, ": ", *r);
  }
  throw std::invalid_argument("attention: no implementation accepts the problem" + why);
}

const attention_impl& attention_find(std::string_view name) {
  std::string names;
  for (const auto& impl : attention_impls()) {
    if (impl.name == name) return impl;
    names += (names.empty() ? "" : ", ") + std::string(impl.name);
  }
  throw std::invalid_argument(cat("attention: no implementation named '", name, "'; valid choices: ", names));
}

}  // namespace infermark
