// TBB sizes its worker pool from the affinity mask it sees when it starts. When that happens while the
// calling thread is restricted (e.g. pinned by another backend), a later TBB backend with more threads
// must still get real workers: it raises the process-wide limit while it lives. Own binary: TBB must not
// have started before this test restricts the thread.
#include <gtest/gtest.h>
#include <sched.h>
#include <tbb/info.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "backends/backend.hpp"

namespace infermark {
namespace {

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

TEST(TbbLimit, WorkersAvailableAfterTbbStartedOnOnePu) {
  const auto allowed = thread_affinity();
  if (allowed.size() < 2) GTEST_SKIP() << "needs 2 allowed PUs";
  set_thread_affinity({allowed.front()});
  {
    const auto one = make_backend({backend_kind::tbb, 1, pin_policy::none});
    one->parallel([](int, int) {});
  }
  set_thread_affinity(allowed);
  // The precondition this test is about: TBB started believing it has one PU.
  ASSERT_EQ(tbb::info::default_concurrency(), 1);

  const auto b = make_backend({backend_kind::tbb, 2, pin_policy::core});
  const auto r = b->pinning();
  EXPECT_TRUE(r.applied) << r.message;
  std::atomic<int> arrived{0};
  std::atomic<bool> timed_out{false};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  b->parallel([&](int, int n) {
    arrived.fetch_add(1);
    while (arrived.load() < n) {
      if (std::chrono::steady_clock::now() > deadline) {
        timed_out = true;
        break;
      }
      std::this_thread::yield();
    }
  });
  EXPECT_FALSE(timed_out.load()) << "the 2 TBB workers never ran at the same time";
}

}  // namespace
}  // namespace infermark
