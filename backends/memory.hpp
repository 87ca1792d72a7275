#pragma once
// Host memory for benchmark data: large buffers backed by transparent huge pages where the kernel
// offers them. On this project's machines (KVM guests, nested paging) 4 KiB pages cost a TLB walk per
// page on a streaming read: a plain malloc'd array reads at ~35 GB/s where the same loop over 2 MiB pages
// reaches ~60 GB/s. The probe's bandwidth ceilings and every benchmark's big buffers use this one
// allocation, so a kernel's roofline fraction is measured under the same paging as its ceiling.
#include <cstddef>
#include <memory>
#include <new>
#include <string>
#include <vector>

namespace infermark {

// Bytes at or above which an allocation is placed on 2 MiB boundaries and advised MADV_HUGEPAGE.
inline constexpr std::size_t huge_page_threshold = std::size_t{2} << 20;

// 64-byte aligned (2 MiB aligned and huge-page advised when bytes >= huge_page_threshold). The memory
// is not touched here: pages appear where the caller first writes (first touch decides NUMA placement).
// Throws std::bad_alloc when the system refuses. Free with free_host_memory.
void* alloc_host_memory(std::size_t bytes);
void free_host_memory(void* p) noexcept;

// What this process gets: "always", "madvise" or "never" (from /sys/kernel/mm/transparent_hugepage/
// enabled), or "unavailable" when the file cannot be read (not Linux, no THP support).
std::string transparent_huge_pages_mode();

// Bytes of [p, p + bytes) currently backed by huge pages (from /proc/self/smaps; the region must be
// touched). -1 when smaps cannot be read.
long long huge_page_backed_bytes(const void* p, std::size_t bytes);

struct host_memory_deleter {
  void operator()(void* p) const noexcept { free_host_memory(p); }
};
template <class T>
using host_ptr = std::unique_ptr<T[], host_memory_deleter>;

// Uninitialized array of n trivially constructible T on host memory.
template <class T>
host_ptr<T> make_host_array(std::size_t n) {
  return host_ptr<T>(static_cast<T*>(alloc_host_memory(n * sizeof(T))));
}

// std::vector allocator over alloc_host_memory (value-initializes like std::allocator).
template <class T>
struct host_allocator {
  using value_type = T;
  host_allocator() noexcept = default;
  template <class U>
  host_allocator(const host_allocator<U>&) noexcept {}
  T* allocate(std::size_t n) {
    if (n > static_cast<std::size_t>(-1) / sizeof(T)) throw std::bad_array_new_length();
    return static_cast<T*>(alloc_host_memory(n * sizeof(T)));
  }
  void deallocate(T* p, std::size_t) noexcept { free_host_memory(p); }
  template <class U>
  bool operator==(const host_allocator<U>&) const noexcept { return true; }
};

template <class T>
using host_vector = std::vector<T, host_allocator<T>>;

}  // namespace infermark
