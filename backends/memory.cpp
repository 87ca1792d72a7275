#include "backends/memory.hpp"

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <sstream>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace infermark {

void* alloc_host_memory(std::size_t bytes) {
  if (bytes == 0) bytes = 1;
  const bool huge = bytes >= huge_page_threshold;
  const std::size_t align = huge ? huge_page_threshold : 64;
  const std::size_t rounded = (bytes + align - 1) / align * align;  // aligned_alloc wants a multiple
  void* p = std::aligned_alloc(align, rounded);
  if (p == nullptr) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  // Advice only: where THP is "never" or the kernel has none, the call fails and 4 KiB pages are used.
  if (huge) (void)madvise(p, rounded, MADV_HUGEPAGE);
#endif
  return p;
}

void free_host_memory(void* p) noexcept { std::free(p); }

std::string transparent_huge_pages_mode() {
  std::ifstream in("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string line;
  if (!in || !std::getline(in, line)) return "unavailable";
  // e.g. "always [madvise] never": the bracketed word is the mode in effect
  const auto a = line.find('['), b = line.find(']');
  if (a == std::string::npos || b == std::string::npos || b <= a) return "unavailable";
  return line.substr(a + 1, b - a - 1);
}

long long huge_page_backed_bytes(const void* p, std::size_t bytes) {
  std::ifstream in("/proc/self/smaps");
  if (!in) return -1;
  const auto lo = reinterpret_cast<std::uintptr_t>(p), hi = lo + bytes;
  std::string line;
  long long total = 0;
  bool inside = false;
  std::uintptr_t vlo = 0, vhi = 0;
  while (std::getline(in, line)) {
    // a mapping header: "start-end perms offset dev inode path"
    const auto dash = line.find('-');
    if (dash != std::string::npos && dash > 0 && line.find(' ') > dash &&
        line.find_first_not_of("0123456789abcdef") == dash) {
      vlo = std::stoull(line.substr(0, dash), nullptr, 16);
      vhi = std::stoull(line.substr(dash + 1, line.find(' ') - dash - 1), nullptr, 16);
      inside = vlo < hi && lo < vhi;
      continue;
    }
    if (inside && line.rfind("AnonHugePages:", 0) == 0) {
      std::istringstream f(line.substr(14));
      long long kb = 0;
      f >> kb;
      total += kb * 1024;  // of the whole mapping: the mapping may extend beyond [p, p + bytes)
    }
  }
  return total < static_cast<long long>(bytes) ? total : static_cast<long long>(bytes);
}

}  // namespace infermark
