// Positional integer arguments of the developer tools in bench/tools (programs of their own, outside the
// CLI): argument i of argv, or dflt when absent; anything but an integer in [1, max] ends the program with
// exit code 2 and a message naming the argument, the valid range and the usage.
#pragma once
#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace infermark::tools {

inline std::int64_t positive_arg(const char* tool, const char* usage, int argc, char** argv, int i, std::int64_t dflt,
                                 std::int64_t max = INT64_MAX) {
  if (argc <= i) return dflt;
  char* end = nullptr;
  const long long v = std::strtoll(argv[i], &end, 10);
  if (*end != '\0' || v <= 0 || v > max) {
    if (max == INT64_MAX)
      std::fprintf(stderr, "%s: argument %d '%s' is not a positive integer (usage: %s)\n", tool, i, argv[i], usage);
    else
      std::fprintf(stderr, "%s: argument %d '%s' is not an integer in 1..%lld (usage: %s)\n", tool, i, argv[i],
                   static_cast<long long>(max), usage);
    std::exit(2);
  }
  return v;
}

}  // namespace infermark::tools
