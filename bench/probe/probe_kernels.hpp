// The probe's pure loops: peak-compute loops (independent accumulator chains, no memory traffic) and
// streaming loops (read, triad). Each takes its sizes and pointers and returns a value derived from all
// of its work so the compiler cannot drop it; no threads, no timing, no I/O here (probe.cpp drives them).
//
// One variant per ISA lives in probe_kernels_avx512.cpp / _amx.cpp / _avx2.cpp (compiled with that
// ISA's flags, only called after run-time dispatch) and a generic C++ one in probe_kernels.cpp. The
// select_* functions below pick the best variant for the features usable under INFERMARK_MAX_ISA.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>

#include "kernels/common/isa.hpp"

namespace infermark::probe_kernels {

// Runs `iters` iterations; each does `ops_per_iter` arithmetic operations on independent accumulators
// (an FMA or a multiply + add counts 2; a dot-product pair counts 2). `seed` is a run-time value so the
// loop cannot be folded at compile time; any seed in [0.5, 1) keeps every accumulator finite and normal.
using compute_fn = double (*)(std::int64_t iters, float seed);
// Reads src[0, n) once and returns their sum (n a multiple of 64).
using read_fn = double (*)(const double* src, std::size_t n);
// a[i] = b[i] + s * c[i] for i in [0, n) (n a multiple of 64; all pointers 64-byte aligned).
using triad_fn = void (*)(double* a, const double* b, const double* c, double s, std::size_t n);

struct compute_kernel {
  const char* path;      // instruction path, e.g. "avx512 vfmadd231ps zmm x16 accumulators"
  compute_fn run;
  double ops_per_iter;   // FLOPs (or int ops) one iteration performs
};
struct read_kernel {
  const char* path;
  read_fn run;
};
struct triad_kernel {
  const char* path;
  triad_fn run;
};

// Element granularity the streaming loops require (doubles): one 512-byte block.
inline constexpr std::size_t stream_block = 64;

// Best variant for the given usable features; nullopt when no instruction for that operation exists.
compute_kernel select_fp32(const cpu_features& f);
std::optional<compute_kernel> select_bf16(const cpu_features& f);
std::optional<compute_kernel> select_int8(const cpu_features& f);
read_kernel select_read(const cpu_features& f);
triad_kernel select_triad(const cpu_features& f);

// The individual variants (declared for tests; call only when the CPU has the ISA).
double fp32_muladd_generic(std::int64_t iters, float seed);
double read_generic(const double* src, std::size_t n);
void triad_generic(double* a, const double* b, const double* c, double s, std::size_t n);
#if defined(__x86_64__) || defined(_M_X64)
double fp32_fma_avx2(std::int64_t iters, float seed);
double int8_madd_avx2(std::int64_t iters, float seed);
double read_avx2(const double* src, std::size_t n);
void triad_avx2(double* a, const double* b, const double* c, double s, std::size_t n);
double fp32_fma_avx512(std::int64_t iters, float seed);
double bf16_dot_avx512(std::int64_t iters, float seed);
double int8_dot_avx512(std::int64_t iters, float seed);
double bf16_tile_amx(std::int64_t iters, float seed);  // probe_kernels_amx.cpp
double int8_tile_amx(std::int64_t iters, float seed);
double read_avx512(const double* src, std::size_t n);
void triad_avx512(double* a, const double* b, const double* c, double s, std::size_t n);
#endif

// Accumulator counts and per-iteration work of each variant (what ops_per_iter is computed from).
inline constexpr int generic_accumulators = 16;     // scalar chains; the compiler may vectorize them
inline constexpr int avx2_accumulators = 12;        // 12 of 16 ymm; covers latency 5-6 x 2 FMA ports
inline constexpr int avx2_int8_accumulators = 8;    // 8 ymm + 4 for products; the chain is 1 vpaddd
inline constexpr int avx512_accumulators = 16;      // 16 of 32 zmm; covers latency 4-6 x 2 FMA ports
inline constexpr int amx_accumulators = 4;          // 4 of 8 tiles (16 x 16), 4 products per iteration

}  // namespace infermark::probe_kernels
