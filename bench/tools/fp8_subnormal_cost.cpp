// fp8_subnormal_cost: what e4m3 subnormal weight codes cost avx512:fp8, whose decode tiles convert blocks
// without subnormals by GFNI transforms and blocks with one by the byte tables (gemm_fp8_avx512vbmi.cpp).
// The suite's fp8 data are small integers (no subnormals, so results verify exactly); served weights are
// real values quantized per 128 x 128 block, where about 1 code in 10^4 is subnormal. This times the same
// GEMM on both kinds of weights, hot, on one thread, and prints how many blocks hold a subnormal.
//
//   cmake --build --preset release --target fp8_subnormal_cost
//   build/release/bench/fp8_subnormal_cost [M=1] [N=2048] [K=7168]
//
// A developer's measurement, not a benchmark case: no verification, no results file. Times are the 10th
// percentile of 300 calls (on a shared host the median moves with other tenants' load).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "kernels/common/dtype.hpp"
#include "bench/tools/tool_args.hpp"
#include "kernels/gemm/gemm.hpp"

using namespace infermark;

namespace {

std::int64_t arg(int argc, char** argv, int i, std::int64_t dflt) {
  return tools::positive_arg("fp8_subnormal_cost", "M N K", argc, argv, i, dflt);
}

}  // namespace

int main(int argc, char** argv) {
  const gemm_desc d{arg(argc, argv, 1, 1), arg(argc, argv, 2, 2048), arg(argc, argv, 3, 7168), dtype::fp8};
  const gemm_impl& impl = gemm_select(d);
  if (impl.name != "avx512:fp8") std::printf("note: this CPU runs %s, not avx512:fp8\n", std::string(impl.name).c_str());
  const std::int64_t kb = (d.k + 127) / 128, nb = (d.n + 127) / 128;
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::vector<fp8_t> src(d.m * d.k), w_int(d.n * d.k), w_real(d.n * d.k);
  std::vector<float> src_scale(d.m * kb, 0.01f), ws_int(nb * kb, 0.02f), ws_real(nb * kb);
  for (auto& x : src) x = f32_to_fp8_e4m3(std::round(normal(rng) * 2));
  for (auto& x : w_int) x = f32_to_fp8_e4m3(static_cast<float>(static_cast<int>(rng() % 7) - 3));
  // Gaussian weights, each 128 x 128 block scaled so its largest magnitude maps to 448 (DeepSeek-V3).
  std::vector<float> w(d.n * d.k);
  for (auto& x : w) x = normal(rng);
  std::int64_t subnormal_codes = 0, blocks = 0, flagged = 0;
  for (std::int64_t bj = 0; bj < nb; ++bj)
    for (std::int64_t bk = 0; bk < kb; ++bk) {
      const std::int64_t j1 = std::min(d.n, bj * 128 + 128), p1 = std::min(d.k, bk * 128 + 128);
      float amax = 0;
      for (std::int64_t j = bj * 128; j < j1; ++j)
        for (std::int64_t p = bk * 128; p < p1; ++p) amax = std::max(amax, std::fabs(w[j * d.k + p]));
      const float s = amax / 448.f;
      ws_real[bj * kb + bk] = s;
      for (std::int64_t j = bj * 128; j < j1; ++j)
        for (std::int64_t p = bk * 128; p < p1; ++p) {
          w_real[j * d.k + p] = f32_to_fp8_e4m3(w[j * d.k + p] / s);
          subnormal_codes += fp8_is_subnormal(w_real[j * d.k + p]);
        }
      // The kernel's flags cover 64 columns x 128 k: count those halves of this block.
      for (std::int64_t j0 = bj * 128; j0 < j1; j0 += 64) {
        bool any = false;
        for (std::int64_t j = j0; j < std::min(j1, j0 + 64); ++j)
          for (std::int64_t p = bk * 128; p < p1; ++p) any = any || fp8_is_subnormal(w_real[j * d.k + p]);
        ++blocks;
        flagged += any;
      }
    }
  std::printf("m%lld n%lld k%lld, %s: Gaussian weights have %.4f%% subnormal codes, in %.1f%% of the 128 x 64 blocks\n",
              static_cast<long long>(d.m), static_cast<long long>(d.n), static_cast<long long>(d.k),
              std::string(impl.name).c_str(), 100.0 * subnormal_codes / (d.n * d.k), 100.0 * flagged / blocks);
  std::vector<unsigned char> p_int(impl.packed_bytes(d)), p_real(impl.packed_bytes(d));
  impl.pack(d, w_int.data(), p_int.data());
  impl.pack(d, w_real.data(), p_real.data());
  std::vector<unsigned char> workspace(impl.workspace_bytes(d, 1) + 64);
  void* ws = reinterpret_cast<void*>((reinterpret_cast<std::uintptr_t>(workspace.data()) + 63) & ~std::uintptr_t{63});
  std::vector<float> dst(d.m * d.n);
  const auto time = [&](const std::vector<unsigned char>& packed, const std::vector<float>& wscale) {
    const gemm_args a{src.data(), packed.data(), dst.data(), src_scale.data(), wscale.data(), ws};
    std::vector<double> us;
    for (int r = 0; r < 300; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      impl.execute(d, a, 0, 1);
      us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(us.begin(), us.end());
    return us[us.size() / 10];
  };
  for (int round = 0; round < 3; ++round)
    std::printf("hot, 1 thread, 10th percentile of 300: integer weights %.1f us, Gaussian weights %.1f us\n",
                time(p_int, ws_int), time(p_real, ws_real));
  return 0;
}
