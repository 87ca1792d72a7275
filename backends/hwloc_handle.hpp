// The process's hwloc topology, loaded once and shared by topology discovery and pinning (internal to
// backends/). hwloc allows concurrent read-only use of a loaded topology, which is all that binding a
// thread needs, so workers may call hwloc_set_cpubind on it at the same time.
#pragma once
#include <hwloc.h>

namespace infermark {

// Loaded on first use (thread-safe); throws std::runtime_error when hwloc cannot load the topology.
hwloc_topology_t host_hwloc();

}  // namespace infermark
