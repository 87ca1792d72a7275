// Pinning: --pin core binds every worker of every backend to the reported PU (checked with
// sched_getcpu() inside the workers, across calls, and after another backend moved the same OS
// threads); cores come from the allowed cpuset; when they cannot be had the report says so; a
// destroyed backend leaves the calling thread as it found it.
#include <gtest/gtest.h>
#include <tbb/task_arena.h>
#include <tbb/partitioner.h>
#include <tbb/parallel_for.h>
#include <tbb/blocked_range.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "backends/backend.hpp"
#include "backends/pinning.hpp"

namespace infermark {
namespace {

const backend_kind all_kinds[] = {backend_kind::serial, backend_kind::openmp, backend_kind::tbb};

std::vector<int> thread_affinity() {
  cpu_set_t set;
  CPU_ZERO(&set);
  EXPECT_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
  std::vector<int> out;
  for (int i = 0; i < CPU_SETSIZE; ++i)
    if (CPU_ISSET(i, &set)) out.push_back(i);
  return out;
}

void set_thread_affinity(const std::vector<int>& cpus) {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int c : cpus) CPU_SET(c, &set);
  ASSERT_EQ(sched_setaffinity(0, sizeof(set), &set), 0);
}

// Restricts the calling thread's cpuset for one scope, then restores it.
class scoped_affinity {
 public:
  explicit scoped_affinity(const std::vector<int>& cpus) : saved_(thread_affinity()) { set_thread_affinity(cpus); }
  ~scoped_affinity() { set_thread_affinity(saved_); }

 private:
  std::vector<int> saved_;
};

std::string label(backend_kind k, int nthr) { return std::string(to_string(k)) + " x" + std::to_string(nthr); }

// Runs one parallel() and checks, inside each worker, that it runs on the PU reported for its slot.
// Returns the number of workers that were elsewhere.
int misplaced_workers(const backend& b, const pin_report& r) {
  std::atomic<int> bad{0}, arrived{0};
  std::mutex mu;
  std::string detail;
  std::set<int> slots;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  b.parallel([&](int ithr, int n) {
    const int slot = b.worker_slot();
    const int cpu = sched_getcpu();
    {
      std::lock_guard<std::mutex> lock(mu);
      slots.insert(slot);
      if (slot < 0 || slot >= static_cast<int>(r.cpus.size()) || r.cpus[static_cast<std::size_t>(slot)] != cpu) {
        bad.fetch_add(1);
        detail += " ithr " + std::to_string(ithr) + " slot " + std::to_string(slot) + " on cpu " + std::to_string(cpu) + ";";
      }
    }
    // Hold every share until all have started, so every worker thread (not just the caller) is checked.
    arrived.fetch_add(1);
    while (arrived.load() < n && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  });
  if (bad) ADD_FAILURE() << to_string(b.kind()) << " misplaced:" << detail;
  EXPECT_EQ(static_cast<int>(slots.size()), b.threads()) << to_string(b.kind()) << ": not every worker slot ran";
  return bad.load();
}

TEST(PinPlan, OneAllowedPuPerCoreInLogicalOrder) {
  // Two cores with two SMT PUs each: OS numbering interleaves cores (0,2 on core 0; 1,3 on core 1).
  const std::vector<std::vector<int>> cores{{0, 2}, {1, 3}};
  auto p = plan_core_pinning(cores, {0, 1, 2, 3}, 2);
  ASSERT_TRUE(p.ok) << p.message;
  EXPECT_EQ(p.cpus, (std::vector<int>{0, 1}));
  p = plan_core_pinning(cores, {0, 1, 2, 3}, 1);
  EXPECT_EQ(p.cpus, (std::vector<int>{0}));
  // Core 0 only through its second PU: that PU is used, never a PU outside the allowed set.
  p = plan_core_pinning(cores, {2, 3}, 2);
  ASSERT_TRUE(p.ok) << p.message;
  EXPECT_EQ(p.cpus, (std::vector<int>{2, 3}));
  p = plan_core_pinning(cores, {1}, 1);
  EXPECT_EQ(p.cpus, (std::vector<int>{1}));
}

TEST(PinPlan, FewerAllowedCoresThanThreadsIsReported) {
  const std::vector<std::vector<int>> cores{{0, 2}, {1, 3}};
  // Four PUs, but only two cores.
  auto p = plan_core_pinning(cores, {0, 1, 2, 3}, 4);
  EXPECT_FALSE(p.ok);
  EXPECT_TRUE(p.cpus.empty());
  EXPECT_NE(p.message.find("needs 4 cores but only 2 core(s)"), std::string::npos) << p.message;
  EXPECT_NE(p.message.find("PUs 0,1,2,3"), std::string::npos) << p.message;
  EXPECT_NE(p.message.find("--threads 2 or fewer"), std::string::npos) << p.message;
  // Both allowed PUs are SMT siblings of one core.
  p = plan_core_pinning(cores, {1, 3}, 2);
  EXPECT_FALSE(p.ok);
  EXPECT_NE(p.message.find("only 1 core(s)"), std::string::npos) << p.message;
  // Allowed PUs the topology does not know count for nothing.
  p = plan_core_pinning(cores, {7}, 1);
  EXPECT_FALSE(p.ok);
  EXPECT_NE(p.message.find("only 0 core(s)"), std::string::npos) << p.message;
}

TEST(Pinning, HostCoresCoverTheAllowedPus) {
  const auto cores = host_cores();
  std::set<int> pus;
  for (const auto& c : cores) {
    EXPECT_FALSE(c.empty());
    pus.insert(c.begin(), c.end());
  }
  for (int pu : allowed_pus()) EXPECT_TRUE(pus.count(pu)) << "allowed PU " << pu << " is on no hwloc core";
  EXPECT_EQ(static_cast<int>(allowed_pus().size()), max_threads());
  EXPECT_EQ(allowed_pus(), thread_affinity());
}

TEST(Pinning, CoreBindsEveryWorkerWhereReported) {
  const auto before = thread_affinity();
  const int ncores = static_cast<int>(host_cores().size());
  for (auto k : all_kinds) {
    std::vector<int> counts{1};
    if (k != backend_kind::serial && std::min(max_threads(), ncores) >= 2) counts.push_back(std::min(max_threads(), ncores));
    for (int nthr : counts) {
      {
        const auto b = make_backend({k, nthr, pin_policy::core});
        const auto r = b->pinning();
        EXPECT_EQ(r.requested, pin_policy::core);
        ASSERT_TRUE(r.applied) << label(k, nthr) << ": " << r.message;
        EXPECT_TRUE(r.message.empty()) << r.message;
        ASSERT_EQ(static_cast<int>(r.cpus.size()), nthr);
        // Distinct PUs, each allowed, each on a different core.
        std::set<int> distinct(r.cpus.begin(), r.cpus.end());
        EXPECT_EQ(static_cast<int>(distinct.size()), nthr);
        for (int c : r.cpus) EXPECT_TRUE(std::count(before.begin(), before.end(), c)) << "PU " << c << " not allowed";
        std::set<int> cores_used;
        const auto cores = host_cores();
        for (int c : r.cpus)
          for (std::size_t i = 0; i < cores.size(); ++i)
            if (std::count(cores[i].begin(), cores[i].end(), c)) cores_used.insert(static_cast<int>(i));
        EXPECT_EQ(static_cast<int>(cores_used.size()), nthr);
        // Several calls (TBB workers leave and re-enter the arena between calls).
        for (int rep = 0; rep < 20; ++rep) EXPECT_EQ(misplaced_workers(*b, r), 0) << label(k, nthr) << " call " << rep;
        // While a pinned backend lives, the limit on threads is still the whole allowed cpuset.
        EXPECT_EQ(max_threads(), static_cast<int>(before.size()));
      }
      // The destroyed backend gave the calling thread its cpuset back.
      EXPECT_EQ(thread_affinity(), before) << label(k, nthr);
    }
  }
}

TEST(Pinning, NoneLeavesWorkersOnTheWholeAllowedSet) {
  const auto before = thread_affinity();
  for (auto k : all_kinds) {
    const int nthr = k == backend_kind::serial ? 1 : std::min(2, max_threads());
    // First leave pinned threads behind (TBB workers keep their binding after their backend is gone;
    // with OpenMP the pool threads would, were they not released): the unpinned backend must undo it.
    {
      const auto pinned = make_backend({k, nthr, pin_policy::core});
      pinned->parallel([](int, int) {});
    }
    const auto b = make_backend({k, nthr, pin_policy::none});
    const auto r = b->pinning();
    EXPECT_EQ(r.requested, pin_policy::none);
    EXPECT_FALSE(r.applied);
    EXPECT_TRUE(r.cpus.empty());
    EXPECT_TRUE(r.message.empty()) << r.message;
    std::atomic<int> narrowed{0}, arrived{0};
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    b->parallel([&](int, int n) {
      if (thread_affinity() != before) narrowed.fetch_add(1);
      // Hold every share until all have started, so each runs on its own thread (TBB would otherwise
      // let the calling thread run them all, and a stale worker binding would go unseen).
      arrived.fetch_add(1);
      while (arrived.load() < n && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    });
    EXPECT_EQ(arrived.load(), nthr);
    EXPECT_EQ(narrowed.load(), 0) << label(k, nthr);
  }
}

TEST(Pinning, TbbWorkersAreReleasedWhenTheirBackendGoes) {
  const int nthr = std::min(2, max_threads());
  if (nthr < 2 || host_cores().size() < 2) GTEST_SKIP() << "needs 2 allowed cores";
  const auto before = thread_affinity();
  {
    const auto pinned = make_backend({backend_kind::tbb, nthr, pin_policy::core});
    ASSERT_TRUE(pinned->pinning().applied) << pinned->pinning().message;
  }
  // Plain TBB code (not an infermark backend, so nothing rebinds) must find its workers unpinned.
  tbb::task_arena arena(nthr, 1);
  std::atomic<int> narrowed{0}, arrived{0};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  arena.execute([&] {
    tbb::parallel_for(tbb::blocked_range<int>(0, nthr, 1), [&](const tbb::blocked_range<int>&) {
      if (thread_affinity() != before) narrowed.fetch_add(1);
      arrived.fetch_add(1);
      while (arrived.load() < nthr && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    }, tbb::static_partitioner());
  });
  EXPECT_EQ(arrived.load(), nthr);
  EXPECT_EQ(narrowed.load(), 0);
}

TEST(Pinning, OpenmpBindingPersistsAcrossCallsAndIsRepairedAfterAnotherTeam) {
  const int ncores = static_cast<int>(host_cores().size());
  const int nthr = std::min(max_threads(), ncores);
  if (nthr < 2) GTEST_SKIP() << "needs 2 allowed cores";
  const auto pinned = make_backend({backend_kind::openmp, nthr, pin_policy::core});
  const auto r = pinned->pinning();
  ASSERT_TRUE(r.applied) << r.message;
  // libgomp keeps the same OS thread per thread number for equal team sizes.
  auto tids = [&](const backend& b) {
    std::vector<pid_t> t(static_cast<std::size_t>(b.threads()));
    b.parallel([&](int ithr, int) { t[static_cast<std::size_t>(ithr)] = gettid(); });
    return t;
  };
  const auto first = tids(*pinned);
  EXPECT_EQ(tids(*pinned), first);
  EXPECT_EQ(misplaced_workers(*pinned, r), 0);
  // Another backend uses the same libgomp pool unpinned: it widens the threads' cpusets ...
  {
    const auto loose = make_backend({backend_kind::openmp, nthr, pin_policy::none});
    EXPECT_EQ(tids(*loose), first);
    std::atomic<int> single{0};
    loose->parallel([&](int, int) {
      if (thread_affinity().size() == 1) single.fetch_add(1);
    });
    EXPECT_EQ(single.load(), 0) << "the unpinned backend ran on threads still pinned by the other one";
    // ... and the pinned backend rebinds them on its next call.
    EXPECT_EQ(misplaced_workers(*pinned, r), 0);
  }
  // A differently sized team in between, then the pinned backend again.
  const auto one = make_backend({backend_kind::openmp, 1, pin_policy::none});
  one->parallel([](int, int) {});
  EXPECT_EQ(misplaced_workers(*pinned, r), 0);
}

TEST(Pinning, CoresAreChosenFromTheAllowedCpuset) {
  const auto allowed = thread_affinity();
  // Only the last allowed PU: --pin core must land there, not on PU 0.
  const int last = allowed.back();
  scoped_affinity restrict_to({last});
  EXPECT_EQ(max_threads(), 1);
  for (auto k : all_kinds) {
    {
      const auto b = make_backend({k, 1, pin_policy::core});
      const auto r = b->pinning();
      ASSERT_TRUE(r.applied) << label(k, 1) << ": " << r.message;
      EXPECT_EQ(r.cpus, (std::vector<int>{last}));
      EXPECT_EQ(misplaced_workers(*b, r), 0);
    }
    EXPECT_EQ(thread_affinity(), (std::vector<int>{last}));
    if (allowed.size() >= 2) {
      EXPECT_THROW(make_backend({k, 2, pin_policy::core}), std::invalid_argument);
    }
  }
}

TEST(Pinning, TooFewAllowedCoresIsReportedNotApplied) {
  // Restrict the process to one PU and ask a binder for two pinned workers (make_backend would refuse
  // 2 threads here; the binder is what backends use underneath).
  const auto allowed = thread_affinity();
  scoped_affinity restrict_to({allowed.front()});
  thread_binder binder(pin_policy::core, 2);
  EXPECT_FALSE(binder.plan().ok);
  EXPECT_TRUE(binder.bind_current_thread(0));  // bound to the whole (restricted) allowed set
  EXPECT_EQ(thread_affinity(), (std::vector<int>{allowed.front()}));
  const auto r = binder.report();
  EXPECT_EQ(r.requested, pin_policy::core);
  EXPECT_FALSE(r.applied);
  EXPECT_TRUE(r.cpus.empty());
  EXPECT_NE(r.message.find("needs 2 cores but only 1 core(s)"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("PUs " + std::to_string(allowed.front()) + ")"), std::string::npos) << r.message;
  binder.release_current_thread();
}

TEST(Pinning, ReportNamesWorkersThatHaveNotStarted) {
  // A binder whose slot 1 never ran: the report must not claim it applied.
  if (host_cores().size() < 2 || max_threads() < 2) GTEST_SKIP() << "needs 2 allowed cores";
  const auto before = thread_affinity();
  {
    thread_binder binder(pin_policy::core, 2);
    ASSERT_TRUE(binder.plan().ok) << binder.plan().message;
    EXPECT_TRUE(binder.bind_current_thread(0));
    EXPECT_EQ(thread_affinity(), (std::vector<int>{binder.plan().cpus[0]}));
    const auto r = binder.report();
    EXPECT_FALSE(r.applied);
    EXPECT_EQ(r.cpus, (std::vector<int>{binder.plan().cpus[0], -1}));
    EXPECT_NE(r.message.find("worker 1 had not started"), std::string::npos) << r.message;
    binder.release_current_thread();
  }
  EXPECT_EQ(thread_affinity(), before);
}

}  // namespace
}  // namespace infermark
