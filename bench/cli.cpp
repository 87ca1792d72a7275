#include "bench/cli.hpp"

#include <cstdio>

namespace infermark {
int cli_main(int, char**) {
  std::puts("infermark: under construction");
  return 0;
}
}  // namespace infermark
