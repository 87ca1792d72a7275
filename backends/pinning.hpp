// Thread pinning through hwloc (internal to backends/; tests include it to check the planning rules).
//
// A backend owns one thread_binder. Each worker thread calls bind_current_thread(slot) when it starts
// work for that backend; a thread-local tag makes the call free when the thread is already bound for
// this backend and slot, so backends may call it on every parallel() without a system call. The tag
// also repairs bindings that another backend (or another team size reusing the same OS threads)
// changed in between.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backends/backend.hpp"

namespace infermark {

// Where --pin core puts each worker, decided before any thread is touched.
struct pin_plan {
  bool ok = false;         // true: cpus has one PU per worker, each on a different core
  std::vector<int> cpus;   // OS PU index per worker slot (empty when !ok)
  std::string message;     // why not, when !ok
};

// Pure planning rule for --pin core: walks the cores in the given (hwloc logical, i.e. compact) order and
// takes, for each core that has a PU in `allowed`, its first allowed PU; worker slot i gets the i-th
// such core. When fewer cores than nthr qualify, nothing is pinned and the message says how many cores
// the allowed cpuset has. `cores`: OS PU indices of each core; `allowed`: PUs the process may run on.
pin_plan plan_core_pinning(const std::vector<std::vector<int>>& cores, const std::vector<int>& allowed,
                           int nthr);

// OS PU indices of each core of this host, in hwloc logical order (each PU alone when hwloc has no cores).
std::vector<std::vector<int>> host_cores();

// PUs the calling thread may run on, not counting infermark's own pinning: when a backend has bound this
// thread, the set it had before that. Sorted OS indices.
std::vector<int> allowed_pus();

class thread_binder {
 public:
  // Plans the binding of nthr worker slots: with pin_policy::core, one PU per slot on distinct cores of
  // the calling thread's allowed cpuset (see plan_core_pinning); otherwise (or when that plan fails)
  // every slot gets the whole allowed cpuset, which also undoes a binding left by an earlier backend.
  thread_binder(pin_policy policy, int nthr);
  ~thread_binder();
  thread_binder(const thread_binder&) = delete;
  thread_binder& operator=(const thread_binder&) = delete;

  // Binds the calling thread as worker `slot` unless it already is bound so by this binder; remembers
  // the thread's previous cpuset the first time infermark binds it. Returns whether the thread is bound
  // as planned. Never throws (called from worker threads and TBB observers).
  bool bind_current_thread(int slot) const noexcept;
  // When this binder bound the calling thread, restores the cpuset the thread had before.
  void release_current_thread() const noexcept;

  // requested/applied/cpus/message from the plan and the bind results seen so far.
  pin_report report() const;
  const pin_plan& plan() const { return plan_; }
  int slots() const { return nthr_; }

 private:
  struct targets;  // hwloc cpusets per slot
  pin_policy policy_;
  int nthr_;
  std::uint64_t id_;
  pin_plan plan_;
  std::unique_ptr<targets> targets_;
  // Per slot: 0 never bound yet, 1 bound as planned, -errno when the OS refused.
  std::unique_ptr<std::atomic<int>[]> state_;
};

}  // namespace infermark
