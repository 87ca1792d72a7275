// Host memory for benchmark buffers: alignment, huge-page backing where the kernel offers it.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>

#include "backends/memory.hpp"

namespace infermark {
namespace {

bool aligned_to(const void* p, std::size_t a) { return reinterpret_cast<std::uintptr_t>(p) % a == 0; }

TEST(HostMemory, SmallAllocationsAreCacheLineAligned) {
  for (std::size_t bytes : {std::size_t{0}, std::size_t{1}, std::size_t{63}, std::size_t{4097}, huge_page_threshold - 1}) {
    void* p = alloc_host_memory(bytes);
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(aligned_to(p, 64)) << bytes;
    std::memset(p, 0x5a, bytes);  // the whole size is usable (ASan checks the bounds)
    free_host_memory(p);
  }
}

TEST(HostMemory, LargeAllocationsAreHugePageAlignedAndBacked) {
  const std::size_t bytes = 16 * huge_page_threshold + 4096;
  auto a = make_host_array<unsigned char>(bytes);
  ASSERT_TRUE(aligned_to(a.get(), huge_page_threshold));
  std::memset(a.get(), 1, bytes);  // first touch
  const std::string mode = transparent_huge_pages_mode();
  const long long backed = huge_page_backed_bytes(a.get(), bytes);
  EXPECT_LE(backed, static_cast<long long>(bytes));
  if (mode == "madvise" || mode == "always") {
    // With THP available, most of a freshly touched 32 MiB advised region is on huge pages (the kernel
    // may fall back to small pages for some when memory is fragmented; it cannot for all of it here).
    EXPECT_GE(backed, static_cast<long long>(bytes / 2)) << "THP mode " << mode;
  } else {
    GTEST_SKIP() << "transparent huge pages are '" << mode << "' here";
  }
}

TEST(HostMemory, ReportsTheTransparentHugePageMode) {
  const std::string mode = transparent_huge_pages_mode();
  EXPECT_TRUE(mode == "always" || mode == "madvise" || mode == "never" || mode == "unavailable") << mode;
}

TEST(HostMemory, UntouchedOrForeignMemoryIsNotCountedAsHuge) {
  int on_stack[16] = {};
  EXPECT_EQ(huge_page_backed_bytes(on_stack, sizeof(on_stack)), 0);
}

TEST(HostMemory, VectorAllocatorValueInitializes) {
  host_vector<float> v(3 * huge_page_threshold / sizeof(float));
  EXPECT_TRUE(aligned_to(v.data(), huge_page_threshold));
  for (std::size_t i = 0; i < v.size(); i += 4099) EXPECT_EQ(v[i], 0.0f);
  v.push_back(2.5f);  // regrowth goes through the same allocator
  EXPECT_EQ(v.back(), 2.5f);
  EXPECT_TRUE(aligned_to(v.data(), 64));
}

}  // namespace
}  // namespace infermark
