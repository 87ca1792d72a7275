// AVX-512 probe loops (F/BW/VL/DQ, BF16, VNNI). Compiled with the AVX-512 flags; called only after
// run-time dispatch found the extensions usable under the ISA cap.
#include <immintrin.h>

#include "bench/probe/probe_kernels.hpp"

namespace infermark::probe_kernels {
namespace {
// Horizontal sums through memory: GCC 12's _mm512_reduce_add_* trip -Wuninitialized in its own header.
double hsum(__m512 v) {
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, v);
  double s = 0;
  for (float x : lanes) s += x;
  return s;
}
double hsum(__m512d v) {
  alignas(64) double lanes[8];
  _mm512_store_pd(lanes, v);
  double s = 0;
  for (double x : lanes) s += x;
  return s;
}
double hsum(__m512i v) {
  alignas(64) std::int32_t lanes[16];
  _mm512_store_si512(lanes, v);
  std::int64_t s = 0;
  for (std::int32_t x : lanes) s += x;
  return static_cast<double>(s);
}
}  // namespace

// The compute loops are whole inline-assembly loops on 16 fixed accumulators zmm0-15: the probe must
// time exactly that instruction mix, and compilers otherwise add register copies (GCC 12 turns a
// vpdpbusd intrinsic loop into copies and stack spills). 16 chains cover 2 ports x up to 8 cycles.
static_assert(avx512_accumulators == 16, "the assembly below uses zmm0-15 as accumulators");

#define INFERMARK_ZMM0_15(pre, post)                                                                 \
  pre "%%zmm0" post pre "%%zmm1" post pre "%%zmm2" post pre "%%zmm3" post pre "%%zmm4" post pre      \
      "%%zmm5" post pre "%%zmm6" post pre "%%zmm7" post pre "%%zmm8" post pre "%%zmm9" post pre      \
      "%%zmm10" post pre "%%zmm11" post pre "%%zmm12" post pre "%%zmm13" post pre "%%zmm14" post pre \
      "%%zmm15" post

// n iterations of `insn a, b, zmmK` for K = 0..15 (AT&T order), accumulators starting at z, then the
// accumulators summed with `add` into one vector.
#define INFERMARK_PEAK_LOOP(insn, add) \
  "test %[n], %[n]\n\t"                                                       \
  INFERMARK_ZMM0_15("vmovdqa64 %[z], ", "\n\t")                               \
  "jle 2f\n\t"                                                               \
  ".p2align 5\n"                                                              \
  "1:\n\t"                                                                   \
  INFERMARK_ZMM0_15(insn " %[b], %[a], ", "\n\t")                             \
  "sub $1, %[n]\n\t"                                                          \
  "jnz 1b\n"                                                                  \
  "2:\n\t"                                                                   \
  add                                                                        \
  "vmovdqa64 %%zmm0, %[out]"

#define INFERMARK_ZMM_CLOBBERS                                                                               \
  "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", \
      "xmm13", "xmm14", "xmm15", "cc"

double fp32_fma_avx512(std::int64_t iters, float seed) {
  // acc += a * b with a * b = seed * 2^-20: each accumulator grows until the increment is below half an
  // ulp and then stays put, so every value stays finite and normal; FMA throughput does not depend on
  // the values.
  const __m512 a = _mm512_set1_ps(seed), b = _mm512_set1_ps(1.0f / (1 << 20)), z = _mm512_setzero_ps();
  __m512 out;
  std::int64_t n = iters;
  __asm__ volatile(INFERMARK_PEAK_LOOP("vfmadd231ps",
                                       "vaddps %%zmm1, %%zmm0, %%zmm0\n\t"
                                       "vaddps %%zmm2, %%zmm0, %%zmm0\n\t"
                                       "vaddps %%zmm3, %%zmm0, %%zmm0\n\t"
                                       "vaddps %%zmm4, %%zmm0, %%zmm0\n\t"
                                       "vaddps %%zmm5, %%zmm0, %%zmm0\n\t"
                                       "vaddps %%zmm6, %%zmm0, %%zmm0\n\t"
                                       "vaddps %%zmm7, %%zmm0, %%zmm0\n\t"
                                       "vaddps %%zmm8, %%zmm0, %%zmm0\n\t"
                                       "vaddps %%zmm9, %%zmm0, %%zmm0\n\t"
                                       "vaddps %%zmm10, %%zmm0, %%zmm0\n\t"
                                       "vaddps %%zmm11, %%zmm0, %%zmm0\n\t"
                                       "vaddps %%zmm12, %%zmm0, %%zmm0\n\t"
                                       "vaddps %%zmm13, %%zmm0, %%zmm0\n\t"
                                       "vaddps %%zmm14, %%zmm0, %%zmm0\n\t"
                                       "vaddps %%zmm15, %%zmm0, %%zmm0\n\t")
                   : [out] "=v"(out), [n] "+r"(n)
                   : [a] "v"(a), [b] "v"(b), [z] "v"(z)
                   : INFERMARK_ZMM_CLOBBERS);
  return hsum(out);
}

double bf16_dot_avx512(std::int64_t iters, float seed) {
  // Each fp32 lane gains 2 * a * b = 2 * seed * 2^-20 per instruction; like the FMA loop the sums
  // saturate at a finite value and never overflow.
  const __m512 af = _mm512_set1_ps(seed * (1.0f / 1024)), bf = _mm512_set1_ps(1.0f / 1024);
  const __m512bh a = _mm512_cvtne2ps_pbh(af, af), b = _mm512_cvtne2ps_pbh(bf, bf);
  const __m512 z = _mm512_setzero_ps();
  __m512 out;
  std::int64_t n = iters;
  __asm__ volatile(INFERMARK_PEAK_LOOP("vdpbf16ps",
                                       "vaddps %%zmm1, %%zmm0, %%zmm0\n\t"
                                       "vaddps %%zmm2, %%zmm0, %%zmm0\n\t"
                                       "vaddps %%zmm3, %%zmm0, %%zmm0\n\t"
                                       "vaddps %%zmm4, %%zmm0, %%zmm0\n\t"
                                       "vaddps %%zmm5, %%zmm0, %%zmm0\n\t"
                                       "vaddps %%zmm6, %%zmm0, %%zmm0\n\t"
                                       "vaddps %%zmm7, %%zmm0, %%zmm0\n\t"
                                       "vaddps %%zmm8, %%zmm0, %%zmm0\n\t"
                                       "vaddps %%zmm9, %%zmm0, %%zmm0\n\t"
                                       "vaddps %%zmm10, %%zmm0, %%zmm0\n\t"
                                       "vaddps %%zmm11, %%zmm0, %%zmm0\n\t"
                                       "vaddps %%zmm12, %%zmm0, %%zmm0\n\t"
                                       "vaddps %%zmm13, %%zmm0, %%zmm0\n\t"
                                       "vaddps %%zmm14, %%zmm0, %%zmm0\n\t"
                                       "vaddps %%zmm15, %%zmm0, %%zmm0\n\t")
                   : [out] "=v"(out), [n] "+r"(n)
                   : [a] "v"(a), [b] "v"(b), [z] "v"(z)
                   : INFERMARK_ZMM_CLOBBERS);
  return hsum(out);
}

double int8_dot_avx512(std::int64_t iters, float seed) {
  // u8 = 1 against s8 = (+v, -v, +v, -v): each instruction adds v - v + v - v = 0 to every int32 lane,
  // so the accumulators never overflow however long the loop runs. v comes from the run-time seed.
  const int v = 1 + static_cast<int>(seed * 8.0f);
  const std::uint32_t s8 =
      static_cast<std::uint32_t>(v & 0xff) | (static_cast<std::uint32_t>(-v & 0xff) << 8) |
      (static_cast<std::uint32_t>(v & 0xff) << 16) | (static_cast<std::uint32_t>(-v & 0xff) << 24);
  // AT&T operand order "vpdpbusd b, a, acc": a holds the unsigned bytes, b the signed ones.
  const __m512i a = _mm512_set1_epi8(1), b = _mm512_set1_epi32(static_cast<int>(s8)),
                z = _mm512_setzero_si512();
  __m512i out;
  std::int64_t n = iters;
  __asm__ volatile(INFERMARK_PEAK_LOOP("vpdpbusd",
                                       "vpaddd %%zmm1, %%zmm0, %%zmm0\n\t"
                                       "vpaddd %%zmm2, %%zmm0, %%zmm0\n\t"
                                       "vpaddd %%zmm3, %%zmm0, %%zmm0\n\t"
                                       "vpaddd %%zmm4, %%zmm0, %%zmm0\n\t"
                                       "vpaddd %%zmm5, %%zmm0, %%zmm0\n\t"
                                       "vpaddd %%zmm6, %%zmm0, %%zmm0\n\t"
                                       "vpaddd %%zmm7, %%zmm0, %%zmm0\n\t"
                                       "vpaddd %%zmm8, %%zmm0, %%zmm0\n\t"
                                       "vpaddd %%zmm9, %%zmm0, %%zmm0\n\t"
                                       "vpaddd %%zmm10, %%zmm0, %%zmm0\n\t"
                                       "vpaddd %%zmm11, %%zmm0, %%zmm0\n\t"
                                       "vpaddd %%zmm12, %%zmm0, %%zmm0\n\t"
                                       "vpaddd %%zmm13, %%zmm0, %%zmm0\n\t"
                                       "vpaddd %%zmm14, %%zmm0, %%zmm0\n\t"
                                       "vpaddd %%zmm15, %%zmm0, %%zmm0\n\t")
                   : [out] "=v"(out), [n] "+r"(n)
                   : [a] "v"(a), [b] "v"(b), [z] "v"(z)
                   : INFERMARK_ZMM_CLOBBERS);
  return hsum(out);
}

#undef INFERMARK_PEAK_LOOP
#undef INFERMARK_ZMM_CLOBBERS
#undef INFERMARK_ZMM0_15

double read_avx512(const double* src, std::size_t n) {
  // Four interleaved streams (the quarters of src) keep more cache misses in flight than one
  // sequential stream: about 8% more DRAM read bandwidth per core on Zen 4. Two zmm accumulators per
  // stream hide the add latency. The tail that does not split into 4 whole blocks is read as one stream.
  const std::size_t q = n / (4 * stream_block) * stream_block;
  const double* s0 = src;
  const double* s1 = src + q;
  const double* s2 = src + 2 * q;
  const double* s3 = src + 3 * q;
  __m512d acc[8];
  for (int k = 0; k < 8; ++k) acc[k] = _mm512_setzero_pd();
  for (std::size_t i = 0; i < q; i += 16) {
    acc[0] = _mm512_add_pd(acc[0], _mm512_load_pd(s0 + i));
    acc[1] = _mm512_add_pd(acc[1], _mm512_load_pd(s0 + i + 8));
    acc[2] = _mm512_add_pd(acc[2], _mm512_load_pd(s1 + i));
    acc[3] = _mm512_add_pd(acc[3], _mm512_load_pd(s1 + i + 8));
    acc[4] = _mm512_add_pd(acc[4], _mm512_load_pd(s2 + i));
    acc[5] = _mm512_add_pd(acc[5], _mm512_load_pd(s2 + i + 8));
    acc[6] = _mm512_add_pd(acc[6], _mm512_load_pd(s3 + i));
    acc[7] = _mm512_add_pd(acc[7], _mm512_load_pd(s3 + i + 8));
  }
  for (std::size_t i = 4 * q; i < n; i += 16) {
    acc[0] = _mm512_add_pd(acc[0], _mm512_load_pd(src + i));
    acc[1] = _mm512_add_pd(acc[1], _mm512_load_pd(src + i + 8));
  }
  for (int k = 1; k < 8; ++k) acc[0] = _mm512_add_pd(acc[0], acc[k]);
  return hsum(acc[0]);
}

void triad_avx512(double* a, const double* b, const double* c, double s, std::size_t n) {
  const __m512d vs = _mm512_set1_pd(s);
  for (std::size_t i = 0; i < n; i += 32) {
#pragma GCC unroll 4
    for (int k = 0; k < 4; ++k)
      _mm512_store_pd(a + i + 8 * k,
                      _mm512_fmadd_pd(vs, _mm512_load_pd(c + i + 8 * k), _mm512_load_pd(b + i + 8 * k)));
  }
}

}  // namespace infermark::probe_kernels
