// RMSNorm in the harness: "rmsnorm:t<rows>h<dim>:fp32|bf16[:residual=on]" (the fused residual add of a
// transformer block). Memory-bound; verified against the fp64 reference with a dtype-aware bound.
#include <fmt/format.h>

#include <cmath>
#include <random>

#include "bench/op.hpp"
#include "kernels/norm/norm.hpp"

namespace infermark {
namespace {

rmsnorm_desc to_norm(const descriptor& d) {
  rmsnorm_desc n;
  n.rows = d.at("t");
  n.dim = d.at("h");
  n.residual = d.option("residual") == "on";
  n.dt = d.dt;
  return n;
}

float load(dtype dt, const std::vector<std::byte>& v, std::size_t i) {
  return dt == dtype::bf16 ? bf16_to_f32(reinterpret_cast<const bf16_t*>(v.data())[i])
                           : reinterpret_cast<const float*>(v.data())[i];
}

class rmsnorm_case final : public kernel_case {
 public:
  rmsnorm_case(const rmsnorm_desc& d, const rmsnorm_impl& impl, std::uint64_t seed) : d_(d), impl_(impl) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<float> dist(-2.0f, 2.0f);
    const std::size_t n = static_cast<std::size_t>(d.rows * d.dim), es = dtype_size(d.dt);
    auto fill = [&](std::vector<std::byte>& v) {
      v.resize(n * es);
      for (std::size_t i = 0; i < n; ++i) {
        const float x = dist(rng);
        if (d.dt == dtype::bf16) reinterpret_cast<bf16_t*>(v.data())[i] = f32_to_bf16(x);
        else reinterpret_cast<float*>(v.data())[i] = x;
      }
    };
    fill(src_);
    if (d.residual) fill(residual0_);
    weight_.resize(static_cast<std::size_t>(d.dim));
    for (auto& w : weight_) w = 1.0f + 0.25f * dist(rng);
    dst_.assign(n * es, std::byte{0});
    residual_ = residual0_;
  }
  std::string impl_name() const override { return std::string(impl_.name); }
  work_model work() const override { return rmsnorm_work(d_); }
  void run(const backend& be) override {
    // With the residual add the residual stream accumulates in place over iterations, as it would
    // across layers; verify() restarts it from the seeded state.
    const rmsnorm_args a{src_.data(), d_.residual ? residual_.data() : nullptr, weight_.data(), dst_.data()};
    be.parallel([&](int ithr, int nthr) { impl_.execute(d_, a, ithr, nthr); });
  }
  verdict verify(const backend& be) override {
    if (d_.residual) {  // recompute from the seeded residual so the reference sees the same input
      residual_ = residual0_;
      run(be);
    }
    auto ref_res = residual0_;
    std::vector<std::byte> ref_dst(dst_.size());
    const rmsnorm_args a{src_.data(), d_.residual ? ref_res.data() : nullptr, weight_.data(), ref_dst.data()};
    const auto& ref = rmsnorm_reference();
    be.parallel([&](int ithr, int nthr) { ref.execute(d_, a, ithr, nthr); });
    // fp32: relative 1e-5; bf16 outputs: the reference's value rounded once, plus one ulp of slack.
    const double tol = d_.dt == dtype::bf16 ? 2.0 * dtype_epsilon(dtype::bf16) : 1e-5;
    verdict v;
    std::int64_t bad = 0;
    std::string first;
    for (std::size_t i = 0; i < dst_.size() / dtype_size(d_.dt); ++i) {
      const double got = load(d_.dt, dst_, i), want = load(d_.dt, ref_dst, i);
      const double err = std::fabs(got - want), rel = err / std::max(std::fabs(want), 1e-30);
      v.max_abs_err = std::max(v.max_abs_err, err);
      v.max_rel_err = std::max(v.max_rel_err, rel);
      if (!(err <= tol * std::max(std::fabs(want), 1.0))) {
        if (bad++ == 0) first = fmt::format("dst[{}] = {} but reference = {}", i, got, want);
      }
      ++v.checked;
    }
    v.ok = bad == 0;
    v.detail = v.ok ? fmt::format("all {} elements within {:.1e} (max rel err {:.2e})", v.checked, tol, v.max_rel_err)
                    : fmt::format("{} of {} elements outside {:.1e}; first: {}", bad, v.checked, tol, first);
    return v;
  }

 private:
  rmsnorm_desc d_;
  const rmsnorm_impl& impl_;
  std::vector<std::byte> src_, residual0_, residual_, dst_;
  std::vector<float> weight_;
};

}  // namespace

op_def make_rmsnorm_op() {
  op_def op;
  op.spec = descriptor_spec{"rmsnorm",
                            "RMSNorm over the hidden dimension, optionally fused with the residual add",
                            {{"t", "tokens (rows)"}, {"h", "hidden size"}},
                            {dtype::fp32, dtype::bf16},
                            {{"residual", "on: h = src + residual is written back and normalised", {"off", "on"}, "off"}}};
  op.implementations = [](const descriptor& d) {
    std::vector<impl_choice> out;
    for (const auto& impl : rmsnorm_impls()) out.push_back({std::string(impl.name), impl.check(to_norm(d)).value_or("")});
    return out;
  };
  op.footprint_bytes = [](const descriptor& d) {
    return static_cast<std::uint64_t>(d.at("t") * d.at("h")) * dtype_size(d.dt) * 6;
  };
  op.make = [](const descriptor& d, const std::string& impl, std::uint64_t seed) -> std::unique_ptr<kernel_case> {
    const rmsnorm_desc n = to_norm(d);
    rmsnorm_validate(n);
    std::string refusals;
    for (const auto& k : rmsnorm_impls()) {
      if (!impl.empty() && k.name != impl) continue;
      if (auto why = k.check(n)) {
        refusals += fmt::format("\n  {}: {}", k.name, *why);
        continue;
      }
      return std::make_unique<rmsnorm_case>(n, k, seed);
    }
    throw unsupported_error(fmt::format("{}: no implementation accepts it:{}", to_string(d), refusals));
  };
  return op;
}

}  // namespace infermark
