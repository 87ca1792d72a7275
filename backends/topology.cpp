// Host topology discovery with hwloc, plus /proc fallbacks for what hwloc may not know.
#include "backends/topology.hpp"

#include <sys/utsname.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <tuple>

#include "backends/hwloc_handle.hpp"

namespace infermark {
namespace {

struct loaded_topology {
  hwloc_topology_t topo = nullptr;
  loaded_topology() {
    if (hwloc_topology_init(&topo) != 0) throw std::runtime_error("hwloc_topology_init failed");
    // Default filters: caches and NUMA nodes are kept, I/O devices dropped (not needed, slow to scan).
    if (hwloc_topology_load(topo) != 0) {
      hwloc_topology_destroy(topo);
      throw std::runtime_error("hwloc_topology_load failed: cannot discover the host topology");
    }
  }
  ~loaded_topology() { hwloc_topology_destroy(topo); }
  loaded_topology(const loaded_topology&) = delete;
  loaded_topology& operator=(const loaded_topology&) = delete;
};

// Value of the first "key : value" line in a /proc file whose key equals `key`, or "" when absent.
std::string proc_field(const char* path, std::string_view key) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string k = line.substr(0, colon);
    while (!k.empty() && (k.back() == ' ' || k.back() == '\t')) k.pop_back();
    if (k != key) continue;
    auto v = line.substr(colon + 1);
    const auto b = v.find_first_not_of(" \t");
    const auto e = v.find_last_not_of(" \t\r");
    return b == std::string::npos ? std::string() : v.substr(b, e - b + 1);
  }
  return {};
}

// A /proc/meminfo entry ("<n> kB") in bytes, 0 when absent or malformed.
std::uint64_t meminfo_bytes(std::string_view key) {
  std::istringstream in(proc_field("/proc/meminfo", key));
  unsigned long long n = 0;
  std::string unit;
  if (!(in >> n)) return 0;
  in >> unit;
  if (unit == "kB") return static_cast<std::uint64_t>(n) * 1024;
  return unit.empty() ? static_cast<std::uint64_t>(n) : 0;
}

std::string cpu_model_of(hwloc_topology_t topo) {
  // x86 puts CPUModel on the Package objects, some platforms on the root.
  if (const char* m = hwloc_obj_get_info_by_name(hwloc_get_root_obj(topo), "CPUModel"); m && *m) return m;
  for (hwloc_obj_t p = hwloc_get_next_obj_by_type(topo, HWLOC_OBJ_PACKAGE, nullptr); p;
       p = hwloc_get_next_obj_by_type(topo, HWLOC_OBJ_PACKAGE, p))
    if (const char* m = hwloc_obj_get_info_by_name(p, "CPUModel"); m && *m) return m;
  for (const char* key : {"model name", "Model", "Processor", "cpu model"})
    if (auto m = proc_field("/proc/cpuinfo", key); !m.empty()) return m;
  return "unknown";
}

std::string arch_of(hwloc_topology_t topo) {
  struct utsname u {};
  if (uname(&u) == 0 && u.machine[0]) return u.machine;
  if (const char* a = hwloc_obj_get_info_by_name(hwloc_get_root_obj(topo), "Architecture"); a && *a) return a;
  return "unknown";
}

std::vector<int> os_indices(hwloc_const_cpuset_t set) {
  std::vector<int> out;
  int i;
  hwloc_bitmap_foreach_begin(i, set) out.push_back(i);
  hwloc_bitmap_foreach_end();
  return out;
}

std::vector<cache_info> caches_of(hwloc_topology_t topo) {
  // Data and unified caches only (instruction caches do not hold the operands a kernel streams).
  // Instances of one level that differ (hybrid CPUs: different L2 per core kind) stay separate entries.
  using key_t = std::tuple<int, std::string, std::uint64_t, int, int>;  // level, type, size, line, sharing
  std::map<key_t, int> counts;
  const hwloc_obj_type_t types[] = {HWLOC_OBJ_L1CACHE, HWLOC_OBJ_L2CACHE, HWLOC_OBJ_L3CACHE,
                                    HWLOC_OBJ_L4CACHE, HWLOC_OBJ_L5CACHE};
  for (hwloc_obj_type_t t : types) {
    for (hwloc_obj_t o = hwloc_get_next_obj_by_type(topo, t, nullptr); o; o = hwloc_get_next_obj_by_type(topo, t, o)) {
      const auto& c = o->attr->cache;
      if (c.type == HWLOC_OBJ_CACHE_INSTRUCTION || c.size == 0) continue;
      const std::string type = c.type == HWLOC_OBJ_CACHE_DATA ? "data" : "unified";
      const int sharing = o->cpuset ? hwloc_bitmap_weight(o->cpuset) : 0;
      ++counts[{static_cast<int>(c.depth), type, static_cast<std::uint64_t>(c.size), static_cast<int>(c.linesize),
                sharing}];
    }
  }
  std::vector<cache_info> out;
  for (const auto& [k, n] : counts) {
    cache_info ci;
    std::tie(ci.level, ci.type, ci.size_bytes, ci.line_bytes, ci.pus_sharing) = k;
    ci.instances = n;
    out.push_back(ci);
  }
  // Lowest level first; within a level the larger total first (map order is ascending size).
  std::stable_sort(out.begin(), out.end(), [](const cache_info& a, const cache_info& b) {
    if (a.level != b.level) return a.level < b.level;
    return a.size_bytes * a.instances > b.size_bytes * b.instances;
  });
  return out;
}

std::vector<numa_info> numa_of(hwloc_topology_t topo) {
  std::vector<numa_info> out;
  for (hwloc_obj_t o = hwloc_get_next_obj_by_type(topo, HWLOC_OBJ_NUMANODE, nullptr); o;
       o = hwloc_get_next_obj_by_type(topo, HWLOC_OBJ_NUMANODE, o)) {
    numa_info n;
    n.os_index = static_cast<int>(o->os_index);
    n.memory_bytes = o->attr ? o->attr->numanode.local_memory : 0;
    if (o->cpuset) n.pus = os_indices(o->cpuset);
    out.push_back(std::move(n));
  }
  return out;
}

topology_info discover() {
  hwloc_topology_t topo = host_hwloc();
  topology_info t;
  t.cpu_model = cpu_model_of(topo);
  t.arch = arch_of(topo);
  t.packages = std::max(1, hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PACKAGE));
  t.pus = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU);
  // Some virtual machines expose no Core objects; each PU is then its own core.
  const int cores = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE);
  t.cores = cores > 0 ? cores : t.pus;
  // MemTotal is the kernel's own total; hwloc sums NUMA nodes from sysfs, which in some VMs (memory
  // hot-plug, balloons) misses memory the process can use. hwloc's sum is the fallback.
  t.memory_bytes = meminfo_bytes("MemTotal");
  if (t.memory_bytes == 0) t.memory_bytes = hwloc_get_root_obj(topo)->total_memory;
  t.caches = caches_of(topo);
  t.numa_nodes = numa_of(topo);
  return t;
}

}  // namespace

hwloc_topology_t host_hwloc() {
  static loaded_topology t;
  return t.topo;
}

std::uint64_t topology_info::llc_total_bytes() const {
  if (caches.empty()) return 0;
  const int llc = caches.back().level;
  std::uint64_t total = 0;
  for (const auto& c : caches)
    if (c.level == llc) total += c.size_bytes * static_cast<std::uint64_t>(c.instances);
  return total;
}

const cache_info* topology_info::cache(int level) const {
  // caches is sorted with the largest total first within a level, so hybrid CPUs give their main kind.
  for (const auto& c : caches)
    if (c.level == level) return &c;
  return nullptr;
}

nlohmann::json topology_info::to_json() const {
  nlohmann::json j;
  j["cpu_model"] = cpu_model;
  j["arch"] = arch;
  j["packages"] = packages;
  j["cores"] = cores;
  j["pus"] = pus;
  j["memory_bytes"] = memory_bytes;
  j["llc_total_bytes"] = llc_total_bytes();
  j["caches"] = nlohmann::json::array();
  for (const auto& c : caches)
    j["caches"].push_back({{"level", c.level},
                           {"type", c.type},
                           {"size_bytes", c.size_bytes},
                           {"instances", c.instances},
                           {"line_bytes", c.line_bytes},
                           {"pus_sharing", c.pus_sharing}});
  j["numa_nodes"] = nlohmann::json::array();
  for (const auto& n : numa_nodes)
    j["numa_nodes"].push_back({{"os_index", n.os_index}, {"memory_bytes", n.memory_bytes}, {"pus", n.pus}});
  return j;
}

const topology_info& host_topology() {
  static const topology_info t = discover();
  return t;
}

std::uint64_t available_memory_bytes() { return meminfo_bytes("MemAvailable"); }

}  // namespace infermark
