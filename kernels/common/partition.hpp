// Static work splitting used by kernels: thread `ithr` of `nthr` takes a contiguous share.
#pragma once
#include <cstdint>
#include <utility>

namespace infermark {

// Splits [0, n) into nthr nearly equal ranges (sizes differ by at most one); returns [begin, end) of ithr.
inline std::pair<std::int64_t, std::int64_t> balance(std::int64_t n, int ithr, int nthr) {
  const std::int64_t base = n / nthr, rem = n % nthr;
  const std::int64_t begin = ithr * base + (ithr < rem ? ithr : rem);
  return {begin, begin + base + (ithr < rem ? 1 : 0)};
}

inline std::int64_t div_up(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

}  // namespace infermark
