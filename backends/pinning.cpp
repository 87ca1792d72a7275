#include "backends/pinning.hpp"

#include <sched.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <string>

#include "backends/hwloc_handle.hpp"

namespace infermark {
namespace {

std::string join(const std::vector<int>& v) {
  std::string s;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(v[i]);
  }
  return s;
}

std::vector<int> indices_of(hwloc_const_bitmap_t set) {
  std::vector<int> out;
  int i;
  hwloc_bitmap_foreach_begin(i, set) out.push_back(i);
  hwloc_bitmap_foreach_end();
  return out;
}

// What infermark did to the calling thread's binding. `original` is the cpuset the thread had before
// infermark first bound it (null when infermark has not bound it, or has restored it since).
struct thread_state {
  std::uint64_t binder = 0;  // id of the thread_binder that last bound this thread; 0 none
  int slot = -1;
  hwloc_bitmap_t original = nullptr;
  thread_state() = default;
  thread_state(const thread_state&) = delete;
  thread_state& operator=(const thread_state&) = delete;
  ~thread_state() {
    if (original) hwloc_bitmap_free(original);
  }
};
thread_local thread_state tls;

// The calling thread's current cpuset: hwloc first, sched_getaffinity as the fallback.
std::vector<int> current_pus() {
  hwloc_bitmap_t b = hwloc_bitmap_alloc();
  std::vector<int> out;
  if (b && hwloc_get_cpubind(host_hwloc(), b, HWLOC_CPUBIND_THREAD) == 0) out = indices_of(b);
  if (b) hwloc_bitmap_free(b);
  if (!out.empty()) return out;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0)
    for (int i = 0; i < CPU_SETSIZE; ++i)
      if (CPU_ISSET(i, &set)) out.push_back(i);
  return out;
}

std::atomic<std::uint64_t> next_binder_id{1};

}  // namespace

struct thread_binder::targets {
  std::vector<hwloc_bitmap_t> sets;  // one per slot
  ~targets() {
    for (auto s : sets) hwloc_bitmap_free(s);
  }
};

pin_plan plan_core_pinning(const std::vector<std::vector<int>>& cores, const std::vector<int>& allowed,
                           int nthr) {
  pin_plan p;
  const std::set<int> ok(allowed.begin(), allowed.end());
  std::vector<int> usable;  // first allowed PU of each core that has one
  for (const auto& core : cores)
    for (int pu : core)
      if (ok.count(pu)) {
        usable.push_back(pu);
        break;
      }
  if (nthr >= 1 && static_cast<int>(usable.size()) >= nthr) {
    p.ok = true;
    p.cpus.assign(usable.begin(), usable.begin() + nthr);
    return p;
  }
  p.message = "--pin core needs " + std::to_string(nthr) + " cores but only " + std::to_string(usable.size()) +
              " core(s) have a processing unit in this process's allowed cpuset (PUs " + join(allowed) +
              "); workers were left unpinned; use --threads " + std::to_string(std::max<std::size_t>(usable.size(), 1)) +
              " or fewer, or --pin none";
  return p;
}

std::vector<std::vector<int>> host_cores() {
  hwloc_topology_t topo = host_hwloc();
  std::vector<std::vector<int>> cores;
  hwloc_obj_type_t type = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE) > 0 ? HWLOC_OBJ_CORE : HWLOC_OBJ_PU;
  for (hwloc_obj_t o = hwloc_get_next_obj_by_type(topo, type, nullptr); o; o = hwloc_get_next_obj_by_type(topo, type, o))
    if (o->cpuset) cores.push_back(indices_of(o->cpuset));
  return cores;
}

std::vector<int> allowed_pus() {
  if (tls.original) return indices_of(tls.original);
  return current_pus();
}

thread_binder::thread_binder(pin_policy policy, int nthr)
    : policy_(policy), nthr_(nthr), id_(next_binder_id.fetch_add(1)), targets_(std::make_unique<targets>()),
      state_(std::make_unique<std::atomic<int>[]>(static_cast<std::size_t>(nthr))) {
  const std::vector<int> allowed = allowed_pus();
  if (policy == pin_policy::core) plan_ = plan_core_pinning(host_cores(), allowed, nthr);
  for (int s = 0; s < nthr; ++s) {
    hwloc_bitmap_t set = hwloc_bitmap_alloc();
    if (!set) throw std::bad_alloc();
    targets_->sets.push_back(set);
    if (plan_.ok) {
      hwloc_bitmap_only(set, static_cast<unsigned>(plan_.cpus[s]));
    } else {
      for (int pu : allowed) hwloc_bitmap_set(set, static_cast<unsigned>(pu));
    }
    state_[s].store(0);
  }
}

thread_binder::~thread_binder() = default;

bool thread_binder::bind_current_thread(int slot) const noexcept {
  if (slot < 0 || slot >= nthr_) return false;
  if (tls.binder == id_ && tls.slot == slot) return state_[slot].load(std::memory_order_relaxed) == 1;
  hwloc_topology_t topo = host_hwloc();
  if (!tls.original) {
    hwloc_bitmap_t b = hwloc_bitmap_alloc();
    if (b && hwloc_get_cpubind(topo, b, HWLOC_CPUBIND_THREAD) == 0) {
      tls.original = b;
    } else if (b) {
      hwloc_bitmap_free(b);
    }
  }
  const int rc = hwloc_set_cpubind(topo, targets_->sets[slot], HWLOC_CPUBIND_THREAD);
  const int err = errno;
  // Tag even on failure, so a refused binding is not retried on every parallel() call.
  tls.binder = id_;
  tls.slot = slot;
  state_[slot].store(rc == 0 ? 1 : -(err ? err : EINVAL), std::memory_order_relaxed);
  return rc == 0;
}

void thread_binder::release_current_thread() const noexcept {
  if (tls.binder != id_) return;
  if (tls.original) {
    hwloc_set_cpubind(host_hwloc(), tls.original, HWLOC_CPUBIND_THREAD);
    hwloc_bitmap_free(tls.original);
    tls.original = nullptr;
  }
  tls.binder = 0;
  tls.slot = -1;
}

pin_report thread_binder::report() const {
  pin_report r;
  r.requested = policy_;
  if (policy_ == pin_policy::none) return r;
  if (!plan_.ok) {
    r.message = plan_.message;
    return r;
  }
  r.applied = true;
  for (int s = 0; s < nthr_; ++s) {
    const int st = state_[s].load(std::memory_order_relaxed);
    r.cpus.push_back(st == 1 ? plan_.cpus[s] : -1);
    if (st == 1) continue;
    r.applied = false;
    if (!r.message.empty()) r.message += "; ";
    if (st == 0)
      r.message += "worker " + std::to_string(s) + " had not started, so it is not bound to PU " +
                   std::to_string(plan_.cpus[s]) + " yet";
    else
      r.message += "binding worker " + std::to_string(s) + " to PU " + std::to_string(plan_.cpus[s]) +
                   " failed: " + std::strerror(-st);
  }
  return r;
}

}  // namespace infermark
