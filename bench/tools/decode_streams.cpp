// decode_streams: how many sequential read streams per core this host needs to reach its DRAM read
// bandwidth, and how close the decode GEMV (m = 1, cold weights) gets. On a 2-core Zen 3 VM one stream
// per thread reached only 0.70-0.75 of the probe's read (4 interleaved streams per thread) while the
// memory was fast, which is why the AVX2 decode loop reads several weight panels in lockstep
// (gemm_driver.hpp, decode_streams). Run it on a new host before tuning its decode kernels.
//
//   cmake --build --preset release --target decode_streams
//   build/release/bench/decode_streams [THREADS=2] [ROUNDS=7] [MIB=256]
//
// Each round reads a MIB MiB buffer once per pattern (S = 1, 2, 4, 8 sequential streams per thread,
// each thread over its own contiguous share), then runs m1n4096k7168 GEMVs in every format over weight
// copies rotated through MIB MiB. Printed: the median over rounds of each GB/s and of its ratio to the
// 4-stream read of the same round (the probe's pattern). A developer's measurement, not a benchmark
// case: no verification, no results file.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "bench/tools/tool_args.hpp"
#include "kernels/gemm/gemm.hpp"

using namespace infermark;

namespace {

std::int64_t arg(int argc, char** argv, int i, std::int64_t dflt) {
  return tools::positive_arg("decode_streams", "THREADS ROUNDS MIB", argc, argv, i, dflt, 65536);
}

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// 2 MiB-aligned, huge pages advised, touched (so no page faults are timed).
struct buffer {
  void* p = nullptr;
  std::size_t bytes = 0;
  explicit buffer(std::size_t n) : bytes((n + (2u << 20) - 1) / (2u << 20) * (2u << 20)) {
    p = std::aligned_alloc(2u << 20, bytes);
    if (p == nullptr) {
      std::fprintf(stderr, "decode_streams: cannot allocate %zu MiB\n", bytes >> 20);
      std::exit(2);
    }
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    (void)madvise(p, bytes, MADV_HUGEPAGE);
#endif
    std::memset(p, 1, bytes);
  }
  buffer(const buffer&) = delete;
  buffer& operator=(const buffer&) = delete;
  ~buffer() { std::free(p); }
};

volatile double g_sink;

// GB/s of one pass over `n` doubles, each thread reading its contiguous share as S interleaved streams.
double read_pass(const double* src, std::size_t n, int threads, int streams) {
  const double t0 = now();
  double total = 0;
#pragma omp parallel num_threads(threads) reduction(+ : total)
  {
    const std::size_t per = n / static_cast<std::size_t>(threads);
    const std::size_t len = per / static_cast<std::size_t>(streams) / 8 * 8;  // whole 64-byte lines
    const double* base = src + static_cast<std::size_t>(omp_get_thread_num()) * per;
    double acc[8] = {};
    for (std::size_t i = 0; i < len; i += 8)
      for (int s = 0; s < streams; ++s)
        for (int l = 0; l < 8; ++l) acc[l] += base[static_cast<std::size_t>(s) * len + i + static_cast<std::size_t>(l)];
    for (double a : acc) total += a;
  }
  g_sink = total;  // every load feeds the result, so none is dropped
  return static_cast<double>(n) * 8.0 / (now() - t0) * 1e-9;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = static_cast<int>(arg(argc, argv, 1, 2));
  const int rounds = static_cast<int>(arg(argc, argv, 2, 7));
  const std::size_t bytes = static_cast<std::size_t>(arg(argc, argv, 3, 256)) << 20;
  const buffer rd(bytes);
  const std::size_t n = rd.bytes / sizeof(double);
  const int patterns[] = {1, 2, 4, 8};

  struct gemv {
    dtype dt;
    const gemm_impl* impl;
    gemm_desc d;
    std::vector<std::unique_ptr<buffer>> copies;
    std::unique_ptr<buffer> src, scales, dst, ws;
  };
  std::vector<gemv> gemvs;
  for (dtype dt : {dtype::fp32, dtype::bf16, dtype::int8, dtype::fp8}) {
    gemv g{dt, nullptr, gemm_desc{1, 4096, 7168, dt}, {}, {}, {}, {}, {}};
    g.impl = &gemm_select(g.d);
    const std::size_t es = dtype_size(dt);
    // Logical weights: small values every format holds (0x38 is 1.0 in e4m3 and 56 in int8).
    std::vector<unsigned char> wei(static_cast<std::size_t>(g.d.n * g.d.k) * es, 0);
    for (std::size_t i = 0; i < wei.size(); ++i) wei[i] = dt == dtype::fp32 || dt == dtype::bf16 ? (i % es == es - 1 ? 0x3c : 0) : 0x38;
    const std::size_t packed = g.impl->packed_bytes(g.d);
    const std::size_t count = std::max<std::size_t>(2, (bytes + packed - 1) / packed);
    for (std::size_t c = 0; c < count; ++c) {
      g.copies.push_back(std::make_unique<buffer>(packed));
      g.impl->pack(g.d, wei.data(), g.copies.back()->p);
    }
    g.src = std::make_unique<buffer>(static_cast<std::size_t>(g.d.k) * 4);
    for (std::int64_t i = 0; i < g.d.k; ++i) {  // 0.5 (fp32, bf16), 56 (int8), 1.0 (e4m3)
      if (dt == dtype::fp32) static_cast<float*>(g.src->p)[i] = 0.5f;
      else if (dt == dtype::bf16) static_cast<std::uint16_t*>(g.src->p)[i] = 0x3f00;
      else static_cast<unsigned char*>(g.src->p)[i] = 0x38;
    }
    g.scales = std::make_unique<buffer>(static_cast<std::size_t>(g.d.n + 128) * 64 * 4);
    for (std::size_t i = 0; i < g.scales->bytes / 4; ++i) static_cast<float*>(g.scales->p)[i] = 1.0f;
    g.dst = std::make_unique<buffer>(static_cast<std::size_t>(g.d.n) * 4);
    g.ws = std::make_unique<buffer>(std::max<std::size_t>(64, g.impl->workspace_bytes(g.d, threads)));
    gemvs.push_back(std::move(g));
  }

  std::vector<std::vector<double>> read_gbs(4), read_ratio(4), gemv_gbs(gemvs.size()), gemv_ratio(gemvs.size());
  for (int r = 0; r < rounds; ++r) {
    double base = 0;
    for (int i = 0; i < 4; ++i) {
      const double gbs = read_pass(static_cast<const double*>(rd.p), n, threads, patterns[i]);
      read_gbs[static_cast<std::size_t>(i)].push_back(gbs);
      if (patterns[i] == 4) base = gbs;
    }
    for (int i = 0; i < 4; ++i) read_ratio[static_cast<std::size_t>(i)].push_back(read_gbs[static_cast<std::size_t>(i)].back() / base);
    for (std::size_t gi = 0; gi < gemvs.size(); ++gi) {
      gemv& g = gemvs[gi];
      const double t0 = now();
      for (const auto& w : g.copies) {
        const gemm_args a{g.src->p, w->p, static_cast<float*>(g.dst->p), static_cast<const float*>(g.scales->p),
                          static_cast<const float*>(g.scales->p), g.ws->p};
#pragma omp parallel num_threads(threads)
        g.impl->execute(g.d, a, omp_get_thread_num(), threads);
      }
      const double gbs = static_cast<double>(g.d.n * g.d.k) * static_cast<double>(dtype_size(g.dt)) *
                         static_cast<double>(g.copies.size()) / (now() - t0) * 1e-9;
      gemv_gbs[gi].push_back(gbs);
      gemv_ratio[gi].push_back(gbs / base);
    }
  }
  std::printf("%d threads, %d rounds, %zu MiB; medians over rounds, ratio to the 4-stream read of the same round\n", threads,
              rounds, rd.bytes >> 20);
  for (int i = 0; i < 4; ++i)
    std::printf("read, %d stream%s per thread   %7.1f GB/s  %5.2f\n", patterns[i], patterns[i] == 1 ? " " : "s",
                median(read_gbs[static_cast<std::size_t>(i)]), median(read_ratio[static_cast<std::size_t>(i)]));
  for (std::size_t gi = 0; gi < gemvs.size(); ++gi)
    std::printf("gemv m1n4096k7168 %-12s  %7.1f GB/s  %5.2f\n", std::string(gemvs[gi].impl->name).c_str(), median(gemv_gbs[gi]),
                median(gemv_ratio[gi]));
  return 0;
}
