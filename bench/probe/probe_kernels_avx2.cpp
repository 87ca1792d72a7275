// AVX2 + FMA probe loops. Compiled with -mavx2 -mfma; called only when effective_features() has both.
#include <immintrin.h>

#include "bench/probe/probe_kernels.hpp"

namespace infermark::probe_kernels {

static_assert(avx2_accumulators == 12, "the assembly below uses ymm0-11 as accumulators");

double fp32_fma_avx2(std::int64_t iters, float seed) {
  // A whole inline-assembly loop, so the timed instruction mix is exactly 12 independent FMAs per
  // iteration: 2 FMA ports x up to 6 cycles of latency, and ymm12-15 stay free for the operands.
  // acc += a * b with a * b = seed * 2^-20 saturates at a finite value (see the AVX-512 loop).
  const __m256 a = _mm256_set1_ps(seed), b = _mm256_set1_ps(1.0f / (1 << 20)), z = _mm256_setzero_ps();
  __m256 out;
  std::int64_t n = iters;
  __asm__ volatile(
      "test %[n], %[n]\n\t"
      "vmovaps %[z], %%ymm0\n\t"
      "vmovaps %[z], %%ymm1\n\t"
      "vmovaps %[z], %%ymm2\n\t"
      "vmovaps %[z], %%ymm3\n\t"
      "vmovaps %[z], %%ymm4\n\t"
      "vmovaps %[z], %%ymm5\n\t"
      "vmovaps %[z], %%ymm6\n\t"
      "vmovaps %[z], %%ymm7\n\t"
      "vmovaps %[z], %%ymm8\n\t"
      "vmovaps %[z], %%ymm9\n\t"
      "vmovaps %[z], %%ymm10\n\t"
      "vmovaps %[z], %%ymm11\n\t"
      "jle 2f\n\t"
      ".p2align 5\n"
      "1:\n\t"
      "vfmadd231ps %[b], %[a], %%ymm0\n\t"
      "vfmadd231ps %[b], %[a], %%ymm1\n\t"
      "vfmadd231ps %[b], %[a], %%ymm2\n\t"
      "vfmadd231ps %[b], %[a], %%ymm3\n\t"
      "vfmadd231ps %[b], %[a], %%ymm4\n\t"
      "vfmadd231ps %[b], %[a], %%ymm5\n\t"
      "vfmadd231ps %[b], %[a], %%ymm6\n\t"
      "vfmadd231ps %[b], %[a], %%ymm7\n\t"
      "vfmadd231ps %[b], %[a], %%ymm8\n\t"
      "vfmadd231ps %[b], %[a], %%ymm9\n\t"
      "vfmadd231ps %[b], %[a], %%ymm10\n\t"
      "vfmadd231ps %[b], %[a], %%ymm11\n\t"
      "sub $1, %[n]\n\t"
      "jnz 1b\n"
      "2:\n\t"
      "vaddps %%ymm1, %%ymm0, %%ymm0\n\t"
      "vaddps %%ymm2, %%ymm0, %%ymm0\n\t"
      "vaddps %%ymm3, %%ymm0, %%ymm0\n\t"
      "vaddps %%ymm4, %%ymm0, %%ymm0\n\t"
      "vaddps %%ymm5, %%ymm0, %%ymm0\n\t"
      "vaddps %%ymm6, %%ymm0, %%ymm0\n\t"
      "vaddps %%ymm7, %%ymm0, %%ymm0\n\t"
      "vaddps %%ymm8, %%ymm0, %%ymm0\n\t"
      "vaddps %%ymm9, %%ymm0, %%ymm0\n\t"
      "vaddps %%ymm10, %%ymm0, %%ymm0\n\t"
      "vaddps %%ymm11, %%ymm0, %%ymm0\n\t"
      "vmovaps %%ymm0, %[out]"
      : [out] "=x"(out), [n] "+r"(n)
      : [a] "x"(a), [b] "x"(b), [z] "x"(z)
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
        "cc");
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, out);
  double total = 0;
  for (float v : lanes) total += v;
  return total;
}

static_assert(avx2_int8_accumulators == 8, "the assembly below uses ymm0-7 as accumulators");

double int8_madd_avx2(std::int64_t iters, float seed) {
  // The instruction pair of the AVX2 int8 GEMM (int8 sign-extended to int16): vpmaddwd, then vpaddd
  // into an int32 accumulator. The products do not depend on the accumulators, so each chain is one
  // 1-cycle vpaddd per iteration; 8 chains, the products rotating through ymm8-11, leave the loop bound
  // by throughput. a = 1 against b = (+v, -v) pairs: each vpmaddwd lane is v - v = 0, so the
  // accumulators never overflow however long the loop runs. v comes from the run-time seed.
  const int v = 1 + static_cast<int>(seed * 8.0f);
  const std::uint32_t pair = static_cast<std::uint16_t>(v) | static_cast<std::uint32_t>(static_cast<std::uint16_t>(-v)) << 16;
  const __m256i a = _mm256_set1_epi16(1), b = _mm256_set1_epi32(static_cast<int>(pair)), z = _mm256_setzero_si256();
  __m256i out;
  std::int64_t n = iters;
  __asm__ volatile(
      "test %[n], %[n]\n\t"
      "vmovdqa %[z], %%ymm0\n\t"
      "vmovdqa %[z], %%ymm1\n\t"
      "vmovdqa %[z], %%ymm2\n\t"
      "vmovdqa %[z], %%ymm3\n\t"
      "vmovdqa %[z], %%ymm4\n\t"
      "vmovdqa %[z], %%ymm5\n\t"
      "vmovdqa %[z], %%ymm6\n\t"
      "vmovdqa %[z], %%ymm7\n\t"
      "jle 2f\n\t"
      ".p2align 5\n"
      "1:\n\t"
      "vpmaddwd %[b], %[a], %%ymm8\n\t"
      "vpaddd %%ymm8, %%ymm0, %%ymm0\n\t"
      "vpmaddwd %[b], %[a], %%ymm9\n\t"
      "vpaddd %%ymm9, %%ymm1, %%ymm1\n\t"
      "vpmaddwd %[b], %[a], %%ymm10\n\t"
      "vpaddd %%ymm10, %%ymm2, %%ymm2\n\t"
      "vpmaddwd %[b], %[a], %%ymm11\n\t"
      "vpaddd %%ymm11, %%ymm3, %%ymm3\n\t"
      "vpmaddwd %[b], %[a], %%ymm8\n\t"
      "vpaddd %%ymm8, %%ymm4, %%ymm4\n\t"
      "vpmaddwd %[b], %[a], %%ymm9\n\t"
      "vpaddd %%ymm9, %%ymm5, %%ymm5\n\t"
      "vpmaddwd %[b], %[a], %%ymm10\n\t"
      "vpaddd %%ymm10, %%ymm6, %%ymm6\n\t"
      "vpmaddwd %[b], %[a], %%ymm11\n\t"
      "vpaddd %%ymm11, %%ymm7, %%ymm7\n\t"
      "sub $1, %[n]\n\t"
      "jnz 1b\n"
      "2:\n\t"
      "vpaddd %%ymm1, %%ymm0, %%ymm0\n\t"
      "vpaddd %%ymm2, %%ymm0, %%ymm0\n\t"
      "vpaddd %%ymm3, %%ymm0, %%ymm0\n\t"
      "vpaddd %%ymm4, %%ymm0, %%ymm0\n\t"
      "vpaddd %%ymm5, %%ymm0, %%ymm0\n\t"
      "vpaddd %%ymm6, %%ymm0, %%ymm0\n\t"
      "vpaddd %%ymm7, %%ymm0, %%ymm0\n\t"
      "vmovdqa %%ymm0, %[out]"
      : [out] "=x"(out), [n] "+r"(n)
      : [a] "x"(a), [b] "x"(b), [z] "x"(z)
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11",
        "cc");
  alignas(32) std::int32_t lanes[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), out);
  std::int64_t total = 0;
  for (std::int32_t x : lanes) total += x;
  return static_cast<double>(total);
}

double read_avx2(const double* src, std::size_t n) {
  // Four interleaved streams, two ymm accumulators each (see read_avx512).
  const std::size_t q = n / (4 * stream_block) * stream_block;
  const double* s0 = src;
  const double* s1 = src + q;
  const double* s2 = src + 2 * q;
  const double* s3 = src + 3 * q;
  __m256d acc[8];
  for (int k = 0; k < 8; ++k) acc[k] = _mm256_setzero_pd();
  for (std::size_t i = 0; i < q; i += 8) {
    acc[0] = _mm256_add_pd(acc[0], _mm256_load_pd(s0 + i));
    acc[1] = _mm256_add_pd(acc[1], _mm256_load_pd(s0 + i + 4));
    acc[2] = _mm256_add_pd(acc[2], _mm256_load_pd(s1 + i));
    acc[3] = _mm256_add_pd(acc[3], _mm256_load_pd(s1 + i + 4));
    acc[4] = _mm256_add_pd(acc[4], _mm256_load_pd(s2 + i));
    acc[5] = _mm256_add_pd(acc[5], _mm256_load_pd(s2 + i + 4));
    acc[6] = _mm256_add_pd(acc[6], _mm256_load_pd(s3 + i));
    acc[7] = _mm256_add_pd(acc[7], _mm256_load_pd(s3 + i + 4));
  }
  for (std::size_t i = 4 * q; i < n; i += 8) {
    acc[0] = _mm256_add_pd(acc[0], _mm256_load_pd(src + i));
    acc[1] = _mm256_add_pd(acc[1], _mm256_load_pd(src + i + 4));
  }
  for (int k = 1; k < 8; ++k) acc[0] = _mm256_add_pd(acc[0], acc[k]);
  alignas(32) double lanes[4];
  _mm256_store_pd(lanes, acc[0]);
  return lanes[0] + lanes[1] + lanes[2] + lanes[3];
}

void triad_avx2(double* a, const double* b, const double* c, double s, std::size_t n) {
  const __m256d vs = _mm256_set1_pd(s);
  for (std::size_t i = 0; i < n; i += 16) {
#pragma GCC unroll 4
    for (int k = 0; k < 4; ++k)
      _mm256_store_pd(a + i + 4 * k,
                      _mm256_fmadd_pd(vs, _mm256_load_pd(c + i + 4 * k), _mm256_load_pd(b + i + 4 * k)));
  }
}

}  // namespace infermark::probe_kernels
