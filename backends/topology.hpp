// Host topology from hwloc: packages, cores, PUs, caches per level, NUMA nodes. Goes into every
// results file and sizes the probe's working sets.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace infermark {

struct cache_info {
  int level = 0;                 // 1, 2, 3, ...
  std::string type;              // "data", "instruction" or "unified"
  std::uint64_t size_bytes = 0;  // one instance
  int instances = 0;             // how many of this cache the machine has
  int line_bytes = 0;
  int pus_sharing = 0;           // processing units sharing one instance
};

struct numa_info {
  int os_index = 0;
  std::uint64_t memory_bytes = 0;
  std::vector<int> pus;          // OS indices of its processing units
};

struct topology_info {
  std::string cpu_model;         // e.g. "AMD EPYC 9R45" (hwloc CPUModel info, else /proc/cpuinfo)
  std::string arch;              // "x86_64", "aarch64"
  int packages = 0;
  int cores = 0;
  int pus = 0;
  std::uint64_t memory_bytes = 0;  // total
  std::vector<cache_info> caches;  // data/unified caches, lowest level first
  std::vector<numa_info> numa_nodes;

  // Size of one last-level cache instance times instances (0 when unknown).
  std::uint64_t llc_total_bytes() const;
  // Data/unified cache of the given level, or nullptr.
  const cache_info* cache(int level) const;
  nlohmann::json to_json() const;
};

// Discovered once per process (hwloc), then cached.
const topology_info& host_topology();

// Memory currently available for new allocations (MemAvailable), in bytes; 0 when unknown.
std::uint64_t available_memory_bytes();

}  // namespace infermark
