// Generic C++ probe loops (baseline compile, any CPU) and the run-time choice between ISA variants.
#include "bench/probe/probe_kernels.hpp"

namespace infermark::probe_kernels {

double fp32_muladd_generic(std::int64_t iters, float seed) {
  // Independent chains acc = acc * m + c converge to c / (1 - m): finite and normal for any m in
  // [0.5, 1). Baseline x86-64 has no FMA, so this is a multiply and an add (2 FLOPs) per element.
  float acc[generic_accumulators];
  for (int k = 0; k < generic_accumulators; ++k) acc[k] = seed * static_cast<float>(k + 1) * 0.01f;
  const float m = seed, c = 1.0f - seed;
  for (std::int64_t i = 0; i < iters; ++i)
    for (int k = 0; k < generic_accumulators; ++k) acc[k] = acc[k] * m + c;
  double sum = 0;
  for (float a : acc) sum += a;
  return sum;
}

double read_generic(const double* src, std::size_t n) {
  // Eight partial sums so the adds do not serialize on one register.
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (std::size_t i = 0; i < n; i += 8)
    for (int k = 0; k < 8; ++k) acc[k] += src[i + k];
  double sum = 0;
  for (double a : acc) sum += a;
  return sum;
}

void triad_generic(double* a, const double* b, const double* c, double s, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) a[i] = b[i] + s * c[i];
}

namespace {
#if defined(__x86_64__) || defined(_M_X64)
// The AVX-512 variants are compiled with F/BW/VL/DQ (+BF16/VNNI where used) flags, so all four base
// extensions must be usable before any of them runs.
bool avx512_usable(const cpu_features& f) {
  return f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.fma;
}
bool avx2_usable(const cpu_features& f) { return f.avx2 && f.fma; }
#endif
}  // namespace

compute_kernel select_fp32(const cpu_features& f) {
#if defined(__x86_64__) || defined(_M_X64)
  if (avx512_usable(f))
    return {"avx512 vfmadd231ps zmm, 16 accumulators (inline asm)", fp32_fma_avx512, avx512_accumulators * 16 * 2.0};
  if (avx2_usable(f))
    return {"avx2 vfmadd231ps ymm, 12 accumulators (inline asm)", fp32_fma_avx2, avx2_accumulators * 8 * 2.0};
#endif
  return {"generic c++ fp32 mul+add, 16 scalar accumulators (baseline compile)", fp32_muladd_generic,
          generic_accumulators * 2.0};
}

std::optional<compute_kernel> select_bf16(const cpu_features& f) {
#if defined(__x86_64__) || defined(_M_X64)
  // The tile unit where there is one: it, not the vector unit, is the host's bf16 / int8 ceiling (a
  // tdpbf16ps is 16 x 16 lanes, each += 32 bf16 products; tdpbssd 64 int8 products).
  if (avx512_usable(f) && f.amx_bf16)
    return compute_kernel{"amx tdpbf16ps, 4 accumulator tiles 16x16 (intrinsics)", bf16_tile_amx, amx_accumulators * 256 * 64.0};
  // vdpbf16ps: 16 fp32 lanes, each += 2 bf16 products = 4 FLOPs per lane.
  if (avx512_usable(f) && f.avx512_bf16)
    return compute_kernel{"avx512_bf16 vdpbf16ps zmm, 16 accumulators (inline asm)", bf16_dot_avx512,
                          avx512_accumulators * 16 * 4.0};
  // No bf16 instructions: the AVX2 GEMM widens bf16 to fp32 and runs vfmadd231ps, so the fp32 FMA
  // rate is the bf16 ceiling (2 FLOPs per product).
  if (avx2_usable(f))
    return compute_kernel{"avx2 vfmadd231ps ymm on bf16 widened to fp32 (no bf16 instructions), 12 accumulators (inline asm)",
                          fp32_fma_avx2, avx2_accumulators * 8 * 2.0};
#endif
  return std::nullopt;
}

std::optional<compute_kernel> select_int8(const cpu_features& f) {
#if defined(__x86_64__) || defined(_M_X64)
  if (avx512_usable(f) && f.amx_int8)
    return compute_kernel{"amx tdpbssd, 4 accumulator tiles 16x16 (intrinsics)", int8_tile_amx, amx_accumulators * 256 * 128.0};
  // vpdpbusd: 16 int32 lanes, each += 4 u8*s8 products = 8 ops per lane.
  if (avx512_usable(f) && f.avx512_vnni)
    return compute_kernel{"avx512_vnni vpdpbusd zmm, 16 accumulators (inline asm)", int8_dot_avx512,
                          avx512_accumulators * 16 * 8.0};
  // The AVX2 GEMM's vpmaddwd ymm: 16 int16 products summed in pairs into 8 int32 lanes = 32 ops, with
  // the vpaddd that accumulates them.
  if (avx2_usable(f))
    return compute_kernel{"avx2 vpmaddwd + vpaddd ymm (int8 widened to int16), 8 accumulators (inline asm)",
                          int8_madd_avx2, avx2_int8_accumulators * 16 * 2.0};
#endif
  return std::nullopt;
}

read_kernel select_read(const cpu_features& f) {
#if defined(__x86_64__) || defined(_M_X64)
  if (avx512_usable(f)) return {"avx512 zmm loads + vaddpd, 4 interleaved streams", read_avx512};
  if (avx2_usable(f)) return {"avx2 ymm loads + vaddpd, 4 interleaved streams", read_avx2};
#endif
  return {"generic c++ loads + add, 8 accumulators (baseline compile)", read_generic};
}

triad_kernel select_triad(const cpu_features& f) {
#if defined(__x86_64__) || defined(_M_X64)
  if (avx512_usable(f)) return {"avx512 zmm loads + vfmadd pd + regular stores", triad_avx512};
  if (avx2_usable(f)) return {"avx2 ymm loads + vfmadd pd + regular stores", triad_avx2};
#endif
  return {"generic c++ mul+add, regular stores (baseline compile)", triad_generic};
}

}  // namespace infermark::probe_kernels
