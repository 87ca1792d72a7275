// Error-message building for the attention/norm kernels (the kernel library does not link fmt).
#pragma once
#include <sstream>
#include <string>

namespace infermark {

template <class... T>
std::string cat(const T&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  return os.str();
}

}  // namespace infermark
