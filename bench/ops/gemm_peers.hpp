// Library peers for GEMM, run as alternative implementations of the same descriptor so users compare the
// portable kernels with vendor libraries on their own machines: oneDNN matmul (libdnnl-dev; fp32 and bf16
// with fp32 accumulation and output) and OpenBLAS sgemm (libopenblas-dev; fp32), each optional at build time. Peers use their own threading (oneDNN: OpenMP,
// OpenBLAS: pthreads) with the run's thread count; the backend choice does not apply to them.
#pragma once
#include <memory>
#include <string_view>
#include <vector>

#include "bench/op.hpp"
#include "kernels/gemm/gemm.hpp"

namespace infermark {

class gemm_peer {
 public:
  virtual ~gemm_peer() = default;
  virtual std::string_view name() const = 0;
  // Packs/reorders `sets` copies of the logical weights wei[n][k], stored in d.dt (fp32 floats or bf16
  // bits), copies rotating for cold caches.
  virtual void prepare(const gemm_desc& d, const void* wei, int sets) = 0;
  // dst[m][n] (fp32) = src[m][k] (d.dt storage) x wei^T with `threads` threads; rotates to the next copy.
  virtual void run(int threads, const void* src, float* dst) = 0;
};

// Every peer built in, with its verdict for `d` (empty refusal = accepts).
std::vector<impl_choice> gemm_peer_choices(const gemm_desc& d);
// The named peer, or nullptr when `name` is not a peer.
std::unique_ptr<gemm_peer> make_gemm_peer(std::string_view name, const gemm_desc& d);
// Facts for the results context (e.g. OpenBLAS's core type, which OPENBLAS_CORETYPE changes).
std::vector<std::pair<std::string, std::string>> gemm_peer_context();

}  // namespace infermark
