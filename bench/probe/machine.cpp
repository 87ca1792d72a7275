#include "bench/probe/machine.hpp"

#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>
#include <utility>

namespace infermark {
namespace {

namespace fs = std::filesystem;

std::string read_first_line(const fs::path& p) {
  std::ifstream in(p);
  std::string line;
  if (in) std::getline(in, line);
  return line;
}

std::string normalize_spaces(const std::string& s) {
  std::string out;
  bool space = false;
  for (char c : s) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      space = !out.empty();
    } else {
      if (space) out.push_back(' ');
      out.push_back(c);
      space = false;
    }
  }
  return out;
}

std::string cpuinfo_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  // x86 names it "model name"; some other kernels "Processor" or "Hardware".
  for (const char* key : {"model name", "Processor", "Hardware"}) {
    in.clear();
    in.seekg(0);
    while (std::getline(in, line)) {
      if (line.rfind(key, 0) != 0) continue;
      const auto colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string v = normalize_spaces(line.substr(colon + 1));
      if (!v.empty()) return v;
    }
  }
  return {};
}

std::string uname_machine() {
  utsname u{};
  if (uname(&u) == 0) return u.machine;
  return "unknown";
}

// Online PUs and distinct (package, core) pairs from /sys/devices/system/cpu/cpuN/topology.
std::pair<int, int> sysfs_pus_cores() {
  int pus = 0;
  std::set<std::pair<int, int>> cores;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/sys/devices/system/cpu", ec)) {
    const std::string name = e.path().filename().string();
    if (name.size() < 4 || name.rfind("cpu", 0) != 0 ||
        !std::all_of(name.begin() + 3, name.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }))
      continue;
    const std::string pkg = read_first_line(e.path() / "topology/physical_package_id");
    const std::string core = read_first_line(e.path() / "topology/core_id");
    if (pkg.empty() || core.empty()) continue;  // offline CPUs have no topology directory
    ++pus;
    cores.emplace(std::stoi(pkg), std::stoi(core));
  }
  if (pus == 0) {
    const long n = sysconf(_SC_NPROCESSORS_ONLN);
    pus = n > 0 ? static_cast<int>(n) : 1;
    return {pus, pus};
  }
  return {pus, static_cast<int>(cores.size())};
}

int sysfs_numa_nodes() {
  int n = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/sys/devices/system/node", ec)) {
    const std::string name = e.path().filename().string();
    if (name.size() > 4 && name.rfind("node", 0) == 0 &&
        std::all_of(name.begin() + 4, name.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }))
      ++n;
  }
  return std::max(n, 1);
}

machine_summary discover() {
  machine_summary m;
  const topology_info& t = host_topology();
  m.cpu_model = normalize_spaces(t.cpu_model);
  if (m.cpu_model.empty()) m.cpu_model = cpuinfo_model();
  if (m.cpu_model.empty()) m.cpu_model = "unknown";
  m.arch = t.arch.empty() ? uname_machine() : t.arch;
  const auto [pus, cores] = sysfs_pus_cores();
  m.pus = t.pus > 0 ? t.pus : pus;
  m.cores = t.cores > 0 ? t.cores : cores;
  m.numa_nodes = !t.numa_nodes.empty() ? static_cast<int>(t.numa_nodes.size()) : sysfs_numa_nodes();
  if (t.llc_total_bytes() > 0) {
    for (const auto& c : t.caches)
      if (c.type != "instruction" && c.size_bytes > 0) m.caches.push_back(c);
    m.source = "hwloc";
  }
  if (m.caches.empty()) {
    // The hwloc topology does not know the caches (yet): read them from sysfs instead.
    m.caches = read_sysfs_caches("/sys/devices/system/cpu", m.pus);
    m.source = "sysfs";
  }
  std::sort(m.caches.begin(), m.caches.end(),
            [](const cache_info& a, const cache_info& b) { return a.level < b.level; });
  return m;
}

}  // namespace

std::uint64_t machine_summary::llc_total_bytes() const {
  const cache_info* c = last_level();
  return c == nullptr ? 0 : c->size_bytes * static_cast<std::uint64_t>(std::max(c->instances, 1));
}

const machine_summary& probe_machine() {
  static const machine_summary m = discover();
  return m;
}

std::uint64_t parse_sysfs_size(const std::string& text) {
  std::size_t pos = 0;
  unsigned long long v = 0;
  try {
    v = std::stoull(text, &pos);
  } catch (const std::exception&) {
    throw std::invalid_argument("bad sysfs cache size '" + text + "'; expected a number with K, M or G suffix");
  }
  const std::string unit = text.substr(pos);
  if (unit.empty()) return v;
  if (unit == "K") return v << 10;
  if (unit == "M") return v << 20;
  if (unit == "G") return v << 30;
  throw std::invalid_argument("bad sysfs cache size '" + text + "'; expected a number with K, M or G suffix");
}

int count_cpu_list(const std::string& text) {
  int count = 0;
  std::stringstream ss(text);
  std::string item;
  auto bad = [&] {
    return std::invalid_argument("bad sysfs cpu list '" + text + "'; expected ranges such as 0-3,8-11");
  };
  while (std::getline(ss, item, ',')) {
    if (item.empty()) throw bad();
    try {
      const auto dash = item.find('-');
      std::size_t p1 = 0, p2 = 0;
      if (dash == std::string::npos) {
        std::stoi(item, &p1);
        if (p1 != item.size()) throw bad();
        ++count;
      } else {
        const std::string lo_s = item.substr(0, dash), hi_s = item.substr(dash + 1);
        const int lo = std::stoi(lo_s, &p1), hi = std::stoi(hi_s, &p2);
        if (p1 != lo_s.size() || p2 != hi_s.size() || hi < lo) throw bad();
        count += hi - lo + 1;
      }
    } catch (const std::invalid_argument&) {
      throw bad();
    } catch (const std::out_of_range&) {
      throw bad();
    }
  }
  if (count == 0) throw bad();
  return count;
}

std::vector<cache_info> read_sysfs_caches(const std::string& cpu_dir, int pus) {
  std::vector<cache_info> out;
  const fs::path base = fs::path(cpu_dir) / "cpu0" / "cache";
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(base, ec)) {
    if (e.path().filename().string().rfind("index", 0) != 0) continue;
    std::string type = read_first_line(e.path() / "type");
    std::transform(type.begin(), type.end(), type.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (type == "instruction" || type.empty()) continue;
    const std::string level = read_first_line(e.path() / "level");
    const std::string size = read_first_line(e.path() / "size");
    if (level.empty() || size.empty()) continue;
    cache_info c;
    c.level = std::stoi(level);
    c.type = type;
    c.size_bytes = parse_sysfs_size(size);
    const std::string line = read_first_line(e.path() / "coherency_line_size");
    c.line_bytes = line.empty() ? 0 : std::stoi(line);
    const std::string shared = read_first_line(e.path() / "shared_cpu_list");
    c.pus_sharing = shared.empty() ? 1 : count_cpu_list(shared);
    c.instances = std::max(1, pus / std::max(c.pus_sharing, 1));
    out.push_back(c);
  }
  std::sort(out.begin(), out.end(), [](const cache_info& a, const cache_info& b) { return a.level < b.level; });
  return out;
}

}  // namespace infermark
