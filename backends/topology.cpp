// Minimal stand-in so the tree links; the backends work replaces this with the hwloc discovery.
#include "backends/topology.hpp"

namespace infermark {
std::uint64_t topology_info::llc_total_bytes() const { return 0; }
const cache_info* topology_info::cache(int) const { return nullptr; }
nlohmann::json topology_info::to_json() const { return nlohmann::json::object(); }
const topology_info& host_topology() {
  static topology_info t;
  return t;
}
std::uint64_t available_memory_bytes() { return 0; }
}  // namespace infermark
