// The ordered implementation list for GEMM: fastest first, the reference last.
#include "kernels/gemm/gemm.hpp"

namespace infermark {

std::span<const gemm_impl> gemm_impls() {
  static const gemm_impl list[] = {gemm_reference()};
  return list;
}

}  // namespace infermark
