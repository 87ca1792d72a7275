// The machine facts the probe sizes its working sets with and fingerprints: CPU model, cores, PUs,
// NUMA nodes and data/unified caches. Taken from host_topology() (hwloc) when it knows them, else read
// from Linux sysfs / procfs, so the probe works whichever is available.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "backends/topology.hpp"

namespace infermark {

struct machine_summary {
  std::string cpu_model;            // whitespace-normalized; "unknown" when neither source has it
  std::string arch;                 // uname machine, e.g. "x86_64"
  int cores = 0;
  int pus = 0;
  int numa_nodes = 0;
  std::vector<cache_info> caches;   // data/unified caches, lowest level first, one entry per level
  std::string source;               // "hwloc" or "sysfs": where the cache sizes came from

  const cache_info* last_level() const { return caches.empty() ? nullptr : &caches.back(); }
  // One LLC instance times instances; 0 when no cache is known.
  std::uint64_t llc_total_bytes() const;
};

// Discovered once per process.
const machine_summary& probe_machine();

// The sysfs fallback on its own (exposed for tests): caches of cpu0 under `cpu_dir`
// (normally /sys/devices/system/cpu), `pus` online processing units used to count instances.
std::vector<cache_info> read_sysfs_caches(const std::string& cpu_dir, int pus);
// Parses a sysfs cache size such as "32K", "1024K", "32M"; throws std::invalid_argument otherwise.
std::uint64_t parse_sysfs_size(const std::string& text);
// Counts the CPUs in a sysfs cpu list such as "0-3,8-11"; throws std::invalid_argument on bad input.
int count_cpu_list(const std::string& text);

}  // namespace infermark
