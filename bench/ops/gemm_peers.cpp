#include "bench/ops/gemm_peers.hpp"

#include <omp.h>

#include <cstring>
#include <stdexcept>
#include <string>

#include "backends/memory.hpp"

#ifdef INFERMARK_HAVE_ONEDNN
#include <oneapi/dnnl/dnnl.hpp>
#endif
#ifdef INFERMARK_HAVE_OPENBLAS
#include <cblas.h>
#endif

namespace infermark {
namespace {

#ifdef INFERMARK_HAVE_ONEDNN
class onednn_matmul final : public gemm_peer {
 public:
  std::string_view name() const override { return "onednn:matmul"; }
  void prepare(const gemm_desc& d, const void* wei, int sets) override {
    using namespace dnnl;
    d_ = d;
    // bf16: bf16 source and weights, fp32 accumulation and fp32 output, as the portable kernel.
    const auto in_t = d.dt == dtype::bf16 ? memory::data_type::bf16 : memory::data_type::f32;
    const memory::dims src_dims{d.m, d.k}, wei_dims{d.k, d.n}, dst_dims{d.m, d.n};
    const memory::desc src_md(src_dims, in_t, memory::format_tag::ab);
    const memory::desc wei_any(wei_dims, in_t, memory::format_tag::any);
    const memory::desc dst_md(dst_dims, memory::data_type::f32, memory::format_tag::ab);
    try {
      pd_ = matmul::primitive_desc(matmul::desc(src_md, wei_any, dst_md), engine_);  // oneDNN 2.x API
    } catch (const dnnl::error& e) {
      // No implementation for this format on this CPU (e.g. bf16 without AVX-512 on oneDNN 2.7): the
      // peer refuses the case, as a portable implementation's check() would, and the run goes on.
      throw std::invalid_argument(std::string("onednn:matmul cannot run ") + std::string(to_string(d.dt)) +
                                  " on this CPU: oneDNN has no matmul implementation for it here (" + e.what() +
                                  "); the portable implementations still run it");
    }
    prim_ = matmul(pd_);
    // Our weights are [n][k] row-major, i.e. a k x n matrix in "ba" layout; reorder to oneDNN's choice.
    const memory::desc wei_user(wei_dims, in_t, memory::format_tag::ba);
    memory user(wei_user, engine_, const_cast<void*>(wei));
    weights_.clear();
    buffers_.clear();
    for (int s = 0; s < sets; ++s) {  // on host memory (huge pages), as infermark's own weights
      buffers_.push_back(make_host_array<std::byte>(pd_.weights_desc().get_size()));
      weights_.emplace_back(pd_.weights_desc(), engine_, buffers_.back().get());
      reorder(user, weights_.back()).execute(stream_, user, weights_.back());
    }
    stream_.wait();
  }
  void run(int threads, const void* src, float* dst) override {
    using namespace dnnl;
    omp_set_num_threads(threads);
    memory src_m(pd_.src_desc(), engine_, const_cast<void*>(src));
    memory dst_m(pd_.dst_desc(), engine_, dst);
    prim_.execute(stream_, {{DNNL_ARG_SRC, src_m}, {DNNL_ARG_WEIGHTS, weights_[set_]}, {DNNL_ARG_DST, dst_m}});
    stream_.wait();
    set_ = (set_ + 1) % weights_.size();
  }

 private:
  gemm_desc d_;
  dnnl::engine engine_{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream_{engine_};
  dnnl::matmul::primitive_desc pd_;
  dnnl::matmul prim_;
  std::vector<host_ptr<std::byte>> buffers_;
  std::vector<dnnl::memory> weights_;
  std::size_t set_ = 0;
};
#endif

#ifdef INFERMARK_HAVE_OPENBLAS
class openblas_sgemm final : public gemm_peer {
 public:
  std::string_view name() const override { return "openblas:sgemm"; }
  void prepare(const gemm_desc& d, const void* wei, int sets) override {
    d_ = d;
    const auto* w = static_cast<const float*>(wei);
    copies_.assign(static_cast<std::size_t>(sets), host_vector<float>(w, w + d.n * d.k));
  }
  void run(int threads, const void* src, float* dst) override {
    openblas_set_num_threads(threads);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<blasint>(d_.m), static_cast<blasint>(d_.n),
                static_cast<blasint>(d_.k), 1.0f, static_cast<const float*>(src), static_cast<blasint>(d_.k), copies_[set_].data(),
                static_cast<blasint>(d_.k), 0.0f, dst, static_cast<blasint>(d_.n));
    set_ = (set_ + 1) % copies_.size();
  }

 private:
  gemm_desc d_;
  std::vector<host_vector<float>> copies_;
  std::size_t set_ = 0;
};
#endif

}  // namespace

std::vector<impl_choice> gemm_peer_choices(const gemm_desc& d) {
  std::vector<impl_choice> out;
#ifdef INFERMARK_HAVE_ONEDNN
  // oneDNN 2.x (as Debian bookworm packages it) has neither per-token runtime source scales (this W8A8 format) nor fp8.
  out.push_back({"onednn:matmul", d.dt == dtype::fp32 || d.dt == dtype::bf16
                                      ? ""
                                      : std::string("onednn:matmul does ") + std::string(to_string(d.dt)) +
                                            " only as fp32 or bf16: oneDNN 2.x has no per-token source scales "
                                            "(int8 W8A8) and no fp8"});
#endif
#ifdef INFERMARK_HAVE_OPENBLAS
  out.push_back({"openblas:sgemm", d.dt == dtype::fp32 ? "" : "openblas:sgemm is fp32 only (sgemm)"});
#endif
  return out;
}

std::unique_ptr<gemm_peer> make_gemm_peer(std::string_view name, const gemm_desc&) {
#ifdef INFERMARK_HAVE_ONEDNN
  if (name == "onednn:matmul") return std::make_unique<onednn_matmul>();
#endif
#ifdef INFERMARK_HAVE_OPENBLAS
  if (name == "openblas:sgemm") return std::make_unique<openblas_sgemm>();
#endif
  return nullptr;
}

std::vector<std::pair<std::string, std::string>> gemm_peer_context() {
  std::vector<std::pair<std::string, std::string>> out;
#ifdef INFERMARK_HAVE_ONEDNN
  const auto* v = dnnl::version();
  out.emplace_back("onednn_version", std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
                                         std::to_string(v->patch) + " " + v->hash);
#endif
#ifdef INFERMARK_HAVE_OPENBLAS
  out.emplace_back("openblas_core", openblas_get_corename());
  out.emplace_back("openblas_config", openblas_get_config());
#endif
  return out;
}

}  // namespace infermark
