#include "backends/pinning.hpp"

#include <hwloc.h>

#include <mutex>
#include <string>

namespace infermark {
namespace {

struct hw {
  hwloc_topology_t topo = nullptr;
  hw() {
    hwloc_topology_init(&topo);
    hwloc_topology_load(topo);
  }
  ~hw() { hwloc_topology_destroy(topo); }
};

hw& topology_handle() {
  static hw h;
  return h;
}

}  // namespace

pin_report pin_this_thread_for(pin_policy policy, int ithr) {
  pin_report r;
  r.requested = policy;
  if (policy == pin_policy::none) return r;
  auto& h = topology_handle();
  const int ncores = hwloc_get_nbobjs_by_type(h.topo, HWLOC_OBJ_CORE);
  if (ncores <= 0) {
    r.message = "hwloc found no cores to pin to";
    return r;
  }
  hwloc_obj_t core = hwloc_get_obj_by_type(h.topo, HWLOC_OBJ_CORE, ithr % ncores);
  hwloc_cpuset_t set = hwloc_bitmap_dup(core->cpuset);
  hwloc_bitmap_singlify(set);  // one PU of the core, so SMT siblings do not migrate
  const int pu = hwloc_bitmap_first(set);
  if (hwloc_set_cpubind(h.topo, set, HWLOC_CPUBIND_THREAD) != 0) {
    r.message = "hwloc_set_cpubind failed for worker " + std::to_string(ithr) + " on PU " + std::to_string(pu);
  } else {
    r.applied = true;
    r.cpus.push_back(pu);
  }
  hwloc_bitmap_free(set);
  return r;
}

pin_report merge_pin_reports(pin_policy policy, const std::vector<pin_report>& per_worker) {
  pin_report r;
  r.requested = policy;
  if (policy == pin_policy::none) return r;
  r.applied = !per_worker.empty();
  for (const auto& w : per_worker) {
    r.applied = r.applied && w.applied;
    for (int c : w.cpus) r.cpus.push_back(c);
    if (!w.message.empty()) r.message += (r.message.empty() ? "" : "; ") + w.message;
  }
  return r;
}

}  // namespace infermark
