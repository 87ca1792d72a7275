// Topology: hwloc's view agrees with what Linux says in /proc and /sys; caches are sorted and sane;
// the JSON for results files carries every field.
#include <gtest/gtest.h>
#include <sys/utsname.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <utility>

#include "backends/backend.hpp"
#include "backends/topology.hpp"

namespace infermark {
namespace {

std::string trim(std::string s) {
  const auto b = s.find_first_not_of(" \t");
  const auto e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

// All values of one /proc/cpuinfo key, one per processor that has it.
std::vector<std::string> cpuinfo(const std::string& key) {
  std::ifstream in("/proc/cpuinfo");
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    const auto colon = line.find(':');
    if (colon != std::string::npos && trim(line.substr(0, colon)) == key) out.push_back(trim(line.substr(colon + 1)));
  }
  return out;
}

std::uint64_t meminfo_kb(const std::string& key) {
  std::ifstream in("/proc/meminfo");
  std::string k;
  std::uint64_t v = 0;
  std::string unit;
  while (in >> k >> v >> unit)
    if (k == key + ":") return v;
  return 0;
}

// Size in bytes of cpu0's cache of this level and sysfs type ("Data", "Unified"), 0 when absent.
std::uint64_t sysfs_cache_bytes(int level, const std::string& type) {
  for (int i = 0; i < 16; ++i) {
    const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i) + "/";
    std::ifstream lv(dir + "level"), ty(dir + "type"), sz(dir + "size");
    int l = 0;
    std::string t, s;
    if (!(lv >> l) || !(ty >> t) || !(sz >> s)) continue;
    if (l != level || t != type) continue;
    std::uint64_t n = std::stoull(s);
    if (s.back() == 'K') n *= 1024;
    if (s.back() == 'M') n *= 1024 * 1024;
    return n;
  }
  return 0;
}

TEST(Topology, CountsAgreeWithLinux) {
  const auto& t = host_topology();
  const int online = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  // hwloc lists the PUs this process's cgroup allows: at least those its affinity allows, at most those
  // online.
  EXPECT_GE(t.pus, max_threads());
  EXPECT_LE(t.pus, online);
  EXPECT_GE(t.cores, 1);
  EXPECT_LE(t.cores, t.pus);
  EXPECT_GE(t.packages, 1);
  EXPECT_LE(t.packages, t.cores);
  EXPECT_EQ(t.pus % t.cores, 0) << "PUs per core differ between cores";
  // x86 /proc/cpuinfo names package and core of every processor; compare when nothing is hidden.
  const auto phys = cpuinfo("physical id"), core = cpuinfo("core id");
  if (t.pus == online && static_cast<int>(phys.size()) == online && core.size() == phys.size()) {
    std::set<std::string> packages(phys.begin(), phys.end());
    std::set<std::pair<std::string, std::string>> cores;
    for (std::size_t i = 0; i < phys.size(); ++i) cores.insert({phys[i], core[i]});
    EXPECT_EQ(t.packages, static_cast<int>(packages.size()));
    EXPECT_EQ(t.cores, static_cast<int>(cores.size()));
  }
  EXPECT_EQ(static_cast<int>(cpuinfo("processor").size()), online);
}

// The CPUID brand string (leaves 0x80000002-4), trimmed; empty where there is none.
std::string cpuid_brand() {
#if defined(__x86_64__) || defined(__i386__)
  unsigned int regs[12] = {};
  if (__get_cpuid_max(0x80000000u, nullptr) < 0x80000004u) return {};
  for (unsigned int i = 0; i < 3; ++i) __get_cpuid(0x80000002u + i, &regs[4 * i], &regs[4 * i + 1], &regs[4 * i + 2], &regs[4 * i + 3]);
  char text[49] = {};
  std::memcpy(text, regs, 48);
  return trim(text);
#else
  return {};
#endif
}

TEST(Topology, ModelArchAndMemory) {
  const auto& t = host_topology();
  EXPECT_FALSE(t.cpu_model.empty());
  EXPECT_NE(t.cpu_model, "unknown");
  // hwloc's CPUModel is the CPUID brand string on x86, which a hypervisor may set apart from the kernel's
  // "model name" (seen: "Oxide Virtual Turin-like Processor" against "AMD EPYC"); either is the model.
  std::set<std::string> valid;
  for (const auto& n : cpuinfo("model name")) valid.insert(n);
  const std::string brand = cpuid_brand();
  if (!brand.empty()) valid.insert(brand);
  if (!valid.empty()) {
    EXPECT_TRUE(valid.count(trim(t.cpu_model)) == 1) << "cpu_model '" << t.cpu_model << "' is neither /proc/cpuinfo's model name nor the CPUID brand string";
  }
  struct utsname u {};
  ASSERT_EQ(uname(&u), 0);
  EXPECT_EQ(t.arch, std::string(u.machine));
  EXPECT_EQ(t.memory_bytes, meminfo_kb("MemTotal") * 1024);
  const auto avail = available_memory_bytes();
  EXPECT_GT(avail, 0u);
  EXPECT_LE(avail, t.memory_bytes);
  // MemAvailable moves while other processes run; within 25% of a fresh read.
  const double fresh = static_cast<double>(meminfo_kb("MemAvailable")) * 1024;
  EXPECT_NEAR(static_cast<double>(avail), fresh, 0.25 * fresh);
}

TEST(Topology, CachesSortedNonZeroAndMatchingSysfs) {
  const auto& t = host_topology();
  ASSERT_FALSE(t.caches.empty());
  int prev_level = 0;
  for (const auto& c : t.caches) {
    EXPECT_GE(c.level, prev_level) << "caches not sorted by level";
    prev_level = c.level;
    EXPECT_TRUE(c.type == "data" || c.type == "unified") << c.type;
    EXPECT_GT(c.size_bytes, 0u);
    EXPECT_GT(c.instances, 0);
    EXPECT_GT(c.line_bytes, 0);
    EXPECT_GE(c.pus_sharing, 1);
    EXPECT_LE(c.pus_sharing, t.pus);
    // Instances times sharing PUs cannot exceed the PUs (each PU sits under one cache of a level).
    EXPECT_LE(c.instances * c.pus_sharing, t.pus);
  }
  const cache_info* l1 = t.cache(1);
  ASSERT_NE(l1, nullptr);
  EXPECT_EQ(l1->level, 1);
  EXPECT_EQ(t.cache(0), nullptr);
  EXPECT_EQ(t.cache(9), nullptr);
  // Each level is larger than the one below.
  for (int lv = 2; t.cache(lv); ++lv) EXPECT_GT(t.cache(lv)->size_bytes, t.cache(lv - 1)->size_bytes) << "L" << lv;
  // hwloc and the kernel agree on cpu0's L1 data and L2 sizes.
  if (const auto l1d = sysfs_cache_bytes(1, "Data")) {
    EXPECT_EQ(l1->size_bytes, l1d);
  }
  if (const auto l2 = sysfs_cache_bytes(2, "Unified"); l2 && t.cache(2)) {
    EXPECT_EQ(t.cache(2)->size_bytes, l2);
  }
  // The last level's total is the sum over its instances.
  const int llc = t.caches.back().level;
  std::uint64_t total = 0;
  for (const auto& c : t.caches)
    if (c.level == llc) total += c.size_bytes * static_cast<std::uint64_t>(c.instances);
  EXPECT_EQ(t.llc_total_bytes(), total);
  EXPECT_GE(t.llc_total_bytes(), t.cache(llc)->size_bytes);
}

TEST(Topology, NumaNodesPartitionThePus) {
  const auto& t = host_topology();
  ASSERT_FALSE(t.numa_nodes.empty());
  std::set<int> seen;
  for (const auto& n : t.numa_nodes) {
    EXPECT_GE(n.os_index, 0);
    EXPECT_GT(n.memory_bytes, 0u);
    for (int pu : n.pus) EXPECT_TRUE(seen.insert(pu).second) << "PU " << pu << " in two NUMA nodes";
  }
  EXPECT_EQ(static_cast<int>(seen.size()), t.pus);
}

TEST(Topology, JsonCarriesEveryField) {
  const auto& t = host_topology();
  const auto j = t.to_json();
  for (const char* key : {"cpu_model", "arch", "packages", "cores", "pus", "memory_bytes", "llc_total_bytes",
                          "caches", "numa_nodes"})
    EXPECT_TRUE(j.contains(key)) << key;
  EXPECT_EQ(j.at("cpu_model").get<std::string>(), t.cpu_model);
  EXPECT_EQ(j.at("pus").get<int>(), t.pus);
  EXPECT_EQ(j.at("cores").get<int>(), t.cores);
  EXPECT_EQ(j.at("llc_total_bytes").get<std::uint64_t>(), t.llc_total_bytes());
  ASSERT_EQ(j.at("caches").size(), t.caches.size());
  for (std::size_t i = 0; i < t.caches.size(); ++i) {
    const auto& c = j.at("caches")[i];
    for (const char* key : {"level", "type", "size_bytes", "instances", "line_bytes", "pus_sharing"})
      EXPECT_TRUE(c.contains(key)) << key;
    EXPECT_EQ(c.at("size_bytes").get<std::uint64_t>(), t.caches[i].size_bytes);
  }
  ASSERT_EQ(j.at("numa_nodes").size(), t.numa_nodes.size());
  for (const auto& n : j.at("numa_nodes"))
    for (const char* key : {"os_index", "memory_bytes", "pus"}) EXPECT_TRUE(n.contains(key)) << key;
  // Round trip through text, as results files do.
  EXPECT_EQ(nlohmann::json::parse(j.dump()), j);
}

TEST(Topology, DiscoveredOnce) { EXPECT_EQ(&host_topology(), &host_topology()); }

}  // namespace
}  // namespace infermark
