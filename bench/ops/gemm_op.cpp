// GEMM in the harness: descriptor "gemm:m<M>n<N>k<K>:<dtype>[:cache=cold]", the kernel implementations
// from kernels/gemm plus library peers (bench/ops/gemm_peers.hpp), integer-valued data so the
// verification is exact for every summation order.
#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <random>

#include "backends/memory.hpp"
#include "backends/topology.hpp"
#include "bench/op.hpp"
#include "bench/ops/gemm_peers.hpp"
#include "kernels/common/partition.hpp"
#include "kernels/gemm/gemm.hpp"

namespace infermark {
namespace {

// Verification budget: the reference recomputes at most this many FLOPs (a deterministic row sample).
constexpr double kVerifyFlops = 4e8;

gemm_desc to_gemm(const descriptor& d) {
  return gemm_desc{d.at("m"), d.at("n"), d.at("k"), d.dt};
}

// Number of weight copies so that cycling through them touches >= 4x the last-level cache.
int cold_sets(std::uint64_t weight_bytes) {
  const std::uint64_t llc = host_topology().llc_total_bytes();
  const std::uint64_t target = 4 * (llc != 0 ? llc : (64ull << 20));
  return static_cast<int>(std::max<std::uint64_t>(1, (target + weight_bytes - 1) / weight_bytes));
}

// Inputs are small integers (and power-of-two scales), exactly representable in every format, with
// sums that stay below 2^24: every summation order gives the same fp32 result, so verification can
// demand equality with the reference instead of a tolerance.
struct gemm_data {
  host_vector<std::byte> src, wei;          // storage format of d.dt
  std::vector<float> src_scale, wei_scale;  // int8 / fp8 only
  std::int64_t kb = 0;                      // fp8: k blocks of 128

  gemm_data(const gemm_desc& d, std::mt19937_64& rng) {
    const std::size_t es = dtype_size(d.dt);
    src.resize(static_cast<std::size_t>(d.m * d.k) * es);
    wei.resize(static_cast<std::size_t>(d.n * d.k) * es);
    fill(d.dt, src.data(), d.m * d.k, rng);
    fill(d.dt, wei.data(), d.n * d.k, rng);
    std::uniform_int_distribution<int> pow2(-2, 2);
    auto scales = [&](std::vector<float>& v, std::int64_t n) {
      v.resize(static_cast<std::size_t>(n));
      for (auto& x : v) x = std::ldexp(1.0f, pow2(rng));
    };
    if (d.dt == dtype::int8) {
      scales(src_scale, d.m);
      scales(wei_scale, d.n);
    } else if (d.dt == dtype::fp8) {
      kb = div_up(d.k, gemm_fp8_block);
      scales(src_scale, d.m * kb);
      scales(wei_scale, div_up(d.n, gemm_fp8_block) * kb);
    }
  }

  static void fill(dtype dt, std::byte* p, std::int64_t n, std::mt19937_64& rng) {
    std::uniform_int_distribution<int> dist(-3, 3);
    for (std::int64_t i = 0; i < n; ++i) {
      const int v = dist(rng);
      switch (dt) {
        case dtype::fp32: reinterpret_cast<float*>(p)[i] = static_cast<float>(v); break;
        case dtype::bf16: reinterpret_cast<bf16_t*>(p)[i] = f32_to_bf16(static_cast<float>(v)); break;
        case dtype::int8: reinterpret_cast<std::int8_t*>(p)[i] = static_cast<std::int8_t>(v); break;
        case dtype::fp8: reinterpret_cast<fp8_t*>(p)[i] = f32_to_fp8_e4m3(static_cast<float>(v)); break;
      }
    }
  }

  gemm_args args(const void* packed, float* dst) const {
    return gemm_args{src.data(), packed, dst, src_scale.empty() ? nullptr : src_scale.data(),
                     wei_scale.empty() ? nullptr : wei_scale.data()};
  }
  gemm_data() = default;
  // The rows `picked` of src (and their scales) with the same weights: the verification sub-problem.
  gemm_data rows(const gemm_desc& d, const std::vector<std::int64_t>& picked) const {
    gemm_data sub;
    const std::size_t row_bytes = static_cast<std::size_t>(d.k) * dtype_size(d.dt);
    sub.kb = kb;
    sub.wei_scale = wei_scale;
    const std::size_t scales_per_row = d.dt == dtype::int8 ? 1 : static_cast<std::size_t>(kb);
    for (const auto r : picked) {
      sub.src.insert(sub.src.end(), src.begin() + r * row_bytes, src.begin() + (r + 1) * row_bytes);
      if (!src_scale.empty())
        sub.src_scale.insert(sub.src_scale.end(), src_scale.begin() + r * scales_per_row,
                             src_scale.begin() + (r + 1) * scales_per_row);
    }
    return sub;
  }
};

class gemm_case final : public kernel_case {
 public:
  gemm_case(const descriptor& d, const gemm_impl* impl, std::unique_ptr<gemm_peer> peer, std::uint64_t seed)
      : d_(to_gemm(d)), impl_(impl), peer_(std::move(peer)) {
    std::mt19937_64 rng(seed);
    data_ = gemm_data(d_, rng);
    dst_.assign(static_cast<std::size_t>(d_.m * d_.n), std::numeric_limits<float>::quiet_NaN());
    const int sets = d.option("cache") == "cold" ? cold_sets(data_.wei.size()) : 1;
    if (peer_) {
      peer_->prepare(d_, data_.wei.data(), sets);
    } else {
      packed_.resize(static_cast<std::size_t>(sets));
      for (auto& p : packed_) {
        p.resize(impl_->packed_bytes(d_));
        impl_->pack(d_, data_.wei.data(), p.data());
      }
    }
  }

  std::string impl_name() const override { return peer_ ? std::string(peer_->name()) : std::string(impl_->name); }
  work_model work() const override { return gemm_work(d_); }
  bool uses_backend() const override { return peer_ == nullptr; }
  // fp8 has no CPU unit: the roofline is the probe's "fp8" ceiling, the faster of the bf16 dot products
  // (exact for e4m3 operands; avx512:fp8) and fp32 FMAs (avx512:fp8-fma and the AVX2/generic kernels).

  void run(const backend& be) override {
    if (peer_) {
      peer_->run(be.threads(), data_.src.data(), dst_.data());
      return;
    }
    gemm_args args = data_.args(packed_[set_].data(), dst_.data());
    const std::size_t ws = impl_->workspace_bytes(d_, be.threads());
    if (workspace_.size() < ws) workspace_.resize(ws);  // first run only (before verification and timing)
    args.workspace = workspace_.data();
    be.parallel([&](int ithr, int nthr) { impl_->execute(d_, args, ithr, nthr); });
    set_ = (set_ + 1) % packed_.size();
  }

  verdict verify(const backend& be) override {
    // Rows to check: all when affordable, else an evenly spaced sample including the first and last.
    const double row_flops = 2.0 * static_cast<double>(d_.n) * static_cast<double>(d_.k);
    const std::int64_t rows = std::clamp<std::int64_t>(static_cast<std::int64_t>(kVerifyFlops / row_flops), 2, d_.m);
    std::vector<std::int64_t> picked;
    for (std::int64_t r = 0; r < rows; ++r)
      picked.push_back(rows == 1 ? 0 : r * (d_.m - 1) / (rows - 1));
    picked.erase(std::unique(picked.begin(), picked.end()), picked.end());
    gemm_desc sub = d_;
    sub.m = static_cast<std::int64_t>(picked.size());
    const gemm_data sub_data = data_.rows(d_, picked);
    std::vector<float> sub_dst(static_cast<std::size_t>(sub.m * d_.n));
    const gemm_impl& ref = gemm_reference();
    std::vector<std::byte> ref_packed(ref.packed_bytes(sub));
    ref.pack(sub, data_.wei.data(), ref_packed.data());
    const gemm_args args = sub_data.args(ref_packed.data(), sub_dst.data());
    be.parallel([&](int ithr, int nthr) { ref.execute(sub, args, ithr, nthr); });

    verdict v;
    std::int64_t mismatches = 0;
    std::string first_bad;
    for (std::size_t r = 0; r < picked.size(); ++r)
      for (std::int64_t j = 0; j < d_.n; ++j) {
        const float got = dst_[picked[r] * d_.n + j], want = sub_dst[r * d_.n + j];
        const double err = std::fabs(static_cast<double>(got) - want);
        if (!(got == want)) {  // integer data: every summation order is exact, so demand equality
          if (mismatches++ == 0)
            first_bad = fmt::format("dst[{}][{}] = {} but reference = {}", picked[r], j, got, want);
        }
        if (std::isnan(err) || err > v.max_abs_err) v.max_abs_err = std::isnan(err) ? INFINITY : err;
        ++v.checked;
      }
    v.ok = mismatches == 0;
    v.detail = v.ok ? fmt::format("exact match on integer-valued data, {} of {} rows ({} elements) checked",
                                  picked.size(), d_.m, v.checked)
                    : fmt::format("{} of {} checked elements differ; first: {}", mismatches, v.checked, first_bad);
    return v;
  }

 private:
  gemm_desc d_;
  const gemm_impl* impl_ = nullptr;
  std::unique_ptr<gemm_peer> peer_;
  gemm_data data_;
  host_vector<float> dst_;
  host_vector<std::byte> workspace_;  // the implementation's workspace for the run's thread count
  std::vector<host_vector<std::byte>> packed_;  // weight copies (cache=cold rotates them), huge pages
  std::size_t set_ = 0;
};

std::vector<impl_choice> gemm_choices(const descriptor& d) {
  const gemm_desc g = to_gemm(d);
  std::vector<impl_choice> out;
  const auto impls = gemm_impls();
  for (std::size_t i = 0; i + 1 < impls.size(); ++i) out.push_back({std::string(impls[i].name), impls[i].check(g).value_or("")});
  for (const auto& p : gemm_peer_choices(g)) out.push_back(p);
  const auto& ref = impls.back();
  out.push_back({std::string(ref.name), ref.check(g).value_or("")});
  return out;
}

}  // namespace

op_def make_gemm_op() {
  op_def op;
  op.spec = descriptor_spec{
      "gemm",
      "dst[m][n] = src[m][k] x wei[n][k]^T with pre-packed weights",
      {{"m", "rows of src/dst (tokens)"}, {"n", "output channels"}, {"k", "input channels"}},
      {dtype::fp32, dtype::bf16, dtype::int8, dtype::fp8},
      {{"cache", "hot: one weight copy; cold: weights rotated over >= 4x the last-level cache", {"hot", "cold"}, "hot"}}};
  op.implementations = gemm_choices;
  op.footprint_bytes = [](const descriptor& d) {
    const gemm_desc g = to_gemm(d);
    const std::uint64_t es = dtype_size(g.dt);
    const std::uint64_t wbytes = static_cast<std::uint64_t>(g.n * g.k) * es;
    const int sets = d.option("cache") == "cold" ? cold_sets(wbytes) : 1;
    // src, logical weights, packed copies (assumed no larger than 2x logical), dst.
    return static_cast<std::uint64_t>(g.m * g.k) * es + static_cast<std::uint64_t>(g.m * g.n) * 4 + wbytes * (1 + 2 * sets);
  };
  op.make = [](const descriptor& d, const std::string& impl, std::uint64_t seed) -> std::unique_ptr<kernel_case> {
    const gemm_desc g = to_gemm(d);
    std::string refusals;
    for (const auto& c : gemm_choices(d)) {
      if (!impl.empty() && c.name != impl) continue;
      if (!c.refusal.empty()) {
        refusals += fmt::format("\n  {}: {}", c.name, c.refusal);
        continue;
      }
      if (auto peer = make_gemm_peer(c.name, g)) return std::make_unique<gemm_case>(d, nullptr, std::move(peer), seed);
      for (const auto& k : gemm_impls())
        if (k.name == c.name) return std::make_unique<gemm_case>(d, &k, nullptr, seed);
    }
    if (refusals.empty()) {
      std::string names;
      for (const auto& c : gemm_choices(d)) names += (names.empty() ? "" : ", ") + c.name;
      throw unsupported_error(fmt::format("{}: no implementation named '{}'; valid choices: {}", to_string(d), impl, names));
    }
    throw unsupported_error(fmt::format("{}: no implementation accepts it:{}", to_string(d), refusals));
  };
  return op;
}

}  // namespace infermark
