// Backends: same results bit for bit, the requested threads really run (and concurrently), pinning is
// applied and verifiable from inside the workers, worker exceptions propagate, bad configs are refused.
#include <gtest/gtest.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <mutex>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "backends/backend.hpp"
#include "kernels/common/partition.hpp"
#include "kernels/gemm/gemm.hpp"

namespace infermark {
namespace {

const backend_kind all_kinds[] = {backend_kind::serial, backend_kind::openmp, backend_kind::tbb};

// Thread counts each backend accepts on this machine: serial 1; the others 1, 2 and all PUs.
std::vector<int> thread_counts(backend_kind k) {
  if (k == backend_kind::serial) return {1};
  std::vector<int> t{1};
  if (max_threads() >= 2) t.push_back(2);
  if (max_threads() > 2) t.push_back(max_threads());
  return t;
}

std::vector<float> seeded(std::size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(gen);
  return v;
}

std::vector<float> run_gemm(const backend& b, const gemm_impl& impl, const gemm_desc& d,
                            const std::vector<float>& src, const std::vector<float>& wei) {
  std::vector<unsigned char> packed(impl.packed_bytes(d));
  impl.pack(d, wei.data(), packed.data());
  // NaN fill: a row no worker writes stays NaN and fails the comparison.
  std::vector<float> dst(static_cast<std::size_t>(d.m * d.n), std::numeric_limits<float>::quiet_NaN());
  gemm_args a;
  a.src = src.data();
  a.packed_wei = packed.data();
  a.dst = dst.data();
  std::vector<std::byte> ws(impl.workspace_bytes(d, b.threads()) + 64);
  a.workspace = ws.data() + (64 - reinterpret_cast<std::uintptr_t>(ws.data()) % 64) % 64;
  b.parallel([&](int ithr, int nthr) { impl.execute(d, a, ithr, nthr); });
  return dst;
}

bool bitwise_equal(const std::vector<float>& x, const std::vector<float>& y) {
  return x.size() == y.size() && std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) == 0;
}

// Per-worker float partial sums over balance() shares, combined in ithr order: the result depends on
// nthr (float addition is not associative) but must not depend on the backend.
float partial_sum(const backend& b, const std::vector<float>& x) {
  std::vector<float> partial(static_cast<std::size_t>(b.threads()), std::numeric_limits<float>::quiet_NaN());
  b.parallel([&](int ithr, int nthr) {
    const auto [i0, i1] = balance(static_cast<std::int64_t>(x.size()), ithr, nthr);
    float s = 0.f;
    for (auto i = i0; i < i1; ++i) s += x[static_cast<std::size_t>(i)];
    partial[static_cast<std::size_t>(ithr)] = s;
  });
  float total = 0.f;
  for (float p : partial) total += p;
  return total;
}

// The same computation on the test thread: the oracle for partial_sum.
float partial_sum_oracle(const std::vector<float>& x, int nthr) {
  float total = 0.f;
  for (int ithr = 0; ithr < nthr; ++ithr) {
    const auto [i0, i1] = balance(static_cast<std::int64_t>(x.size()), ithr, nthr);
    float s = 0.f;
    for (auto i = i0; i < i1; ++i) s += x[static_cast<std::size_t>(i)];
    total += s;
  }
  return total;
}

std::string label(backend_kind k, int nthr) { return std::string(to_string(k)) + " x" + std::to_string(nthr); }

TEST(Backends, GemmBitIdenticalAcrossBackends) {
  // Odd sizes so the row split is uneven.
  const gemm_desc d{37, 29, 131, dtype::fp32};
  const auto src = seeded(static_cast<std::size_t>(d.m * d.k), 1);
  const auto wei = seeded(static_cast<std::size_t>(d.n * d.k), 2);
  std::vector<const gemm_impl*> impls{&gemm_reference()};
  for (const auto& impl : gemm_impls())
    if (!impl.check(d) && impl.name != gemm_reference().name) {
      impls.push_back(&impl);  // the best optimized implementation for this CPU
      break;
    }
  for (const gemm_impl* impl : impls) {
    // Reference result: serial backend.
    const auto serial = make_backend({backend_kind::serial, 1, pin_policy::none});
    const auto expected = run_gemm(*serial, *impl, d, src, wei);
    for (float v : expected) ASSERT_FALSE(std::isnan(v)) << impl->name;
    for (auto k : all_kinds)
      for (int nthr : thread_counts(k)) {
        const auto b = make_backend({k, nthr, pin_policy::none});
        // Row-split kernels give the same bits for any thread count; compare to serial directly.
        EXPECT_TRUE(bitwise_equal(run_gemm(*b, *impl, d, src, wei), expected)) << impl->name << " " << label(k, nthr);
      }
  }
}

TEST(Backends, PartialSumsBitIdenticalForEqualThreadCounts) {
  const auto x = seeded(100003, 3);
  for (int nthr = 1; nthr <= std::min(max_threads(), 4); ++nthr) {
    const float oracle = partial_sum_oracle(x, nthr);
    for (auto k : all_kinds) {
      if (k == backend_kind::serial && nthr != 1) continue;
      const auto b = make_backend({k, nthr, pin_policy::none});
      for (int rep = 0; rep < 3; ++rep) {
        const float got = partial_sum(*b, x);
        EXPECT_EQ(std::memcmp(&got, &oracle, sizeof(float)), 0)
            << label(k, nthr) << ": " << got << " vs oracle " << oracle;
      }
    }
  }
}

TEST(Backends, EveryIthrRunsExactlyOnceWithTheRequestedNthr) {
  for (auto k : all_kinds)
    for (int nthr : thread_counts(k)) {
      const auto b = make_backend({k, nthr, pin_policy::none});
      ASSERT_EQ(b->threads(), nthr) << label(k, nthr);
      EXPECT_EQ(b->name(), to_string(k));
      for (int rep = 0; rep < 5; ++rep) {
        std::vector<std::atomic<int>> calls(static_cast<std::size_t>(nthr));
        std::atomic<int> bad_nthr{0};
        b->parallel([&](int ithr, int n) {
          if (n != nthr || ithr < 0 || ithr >= nthr) {
            bad_nthr.fetch_add(1);
            return;
          }
          calls[static_cast<std::size_t>(ithr)].fetch_add(1);
        });
        EXPECT_EQ(bad_nthr.load(), 0) << label(k, nthr);
        for (int i = 0; i < nthr; ++i) EXPECT_EQ(calls[static_cast<std::size_t>(i)].load(), 1) << label(k, nthr) << " ithr " << i;
      }
    }
}

// All nthr calls must be in flight at once: each waits (bounded) until all have arrived. Records the
// OS thread of each ithr; distinct threads follow when everyone arrived.
struct rendezvous_result {
  bool all_arrived = true;
  std::set<pid_t> tids;
};
rendezvous_result rendezvous(const backend& b) {
  const int nthr = b.threads();
  std::atomic<int> arrived{0};
  std::atomic<bool> timed_out{false};
  std::vector<pid_t> tid(static_cast<std::size_t>(nthr), 0);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  b.parallel([&](int ithr, int) {
    tid[static_cast<std::size_t>(ithr)] = gettid();
    arrived.fetch_add(1);
    while (arrived.load() < nthr) {
      if (std::chrono::steady_clock::now() > deadline) {
        timed_out = true;
        break;
      }
      std::this_thread::yield();
    }
  });
  rendezvous_result r;
  r.all_arrived = !timed_out.load();
  r.tids.insert(tid.begin(), tid.end());
  return r;
}

TEST(Backends, ThreadsRunConcurrentlyOnDistinctOsThreads) {
  if (max_threads() < 2) GTEST_SKIP() << "needs 2 processing units, this process has " << max_threads();
  for (auto k : {backend_kind::openmp, backend_kind::tbb})
    for (int nthr : thread_counts(k)) {
      if (nthr < 2) continue;
      const auto b = make_backend({k, nthr, pin_policy::none});
      for (int rep = 0; rep < 3; ++rep) {
        const auto r = rendezvous(*b);
        ASSERT_TRUE(r.all_arrived) << label(k, nthr) << ": the workers never ran at the same time";
        EXPECT_EQ(static_cast<int>(r.tids.size()), nthr) << label(k, nthr);
      }
    }
}

TEST(Backends, SerialRunsOnTheCallingThread) {
  const auto b = make_backend({backend_kind::serial, 1, pin_policy::none});
  pid_t seen = 0;
  b->parallel([&](int, int) { seen = gettid(); });
  EXPECT_EQ(seen, gettid());
}

TEST(Backends, WorkerExceptionPropagatesAfterAllWorkersRan) {
  for (auto k : all_kinds)
    for (int nthr : thread_counts(k)) {
      const auto b = make_backend({k, nthr, pin_policy::none});
      const int thrower = nthr - 1;
      std::atomic<int> ran{0};
      try {
        b->parallel([&](int ithr, int) {
          ran.fetch_add(1);
          if (ithr == thrower) throw std::runtime_error("worker " + std::to_string(ithr) + " failed");
        });
        ADD_FAILURE() << label(k, nthr) << ": no exception";
      } catch (const std::runtime_error& e) {
        EXPECT_EQ(std::string(e.what()), "worker " + std::to_string(thrower) + " failed") << label(k, nthr);
      }
      EXPECT_EQ(ran.load(), nthr) << label(k, nthr);
      // Still usable afterwards.
      std::atomic<int> after{0};
      b->parallel([&](int, int) { after.fetch_add(1); });
      EXPECT_EQ(after.load(), nthr) << label(k, nthr);
    }
}

void expect_invalid(const backend_config& cfg, const std::vector<std::string>& must_contain) {
  try {
    make_backend(cfg);
    ADD_FAILURE() << "no exception for " << to_string(cfg.kind) << " x" << cfg.threads;
  } catch (const std::invalid_argument& e) {
    const std::string msg = e.what();
    for (const auto& s : must_contain) EXPECT_NE(msg.find(s), std::string::npos) << "'" << s << "' not in: " << msg;
  }
}

TEST(Backends, BadConfigsNameTheValueAndTheChoices) {
  const std::string range = "1.." + std::to_string(max_threads());
  for (auto k : all_kinds) {
    expect_invalid({k, 0, pin_policy::none}, {"0", range});
    expect_invalid({k, -3, pin_policy::none}, {"-3", range});
    expect_invalid({k, max_threads() + 1, pin_policy::none}, {std::to_string(max_threads() + 1), range});
  }
  if (max_threads() >= 2) expect_invalid({backend_kind::serial, 2, pin_policy::none}, {"2", "serial", "openmp", "tbb"});
  expect_invalid({static_cast<backend_kind>(42), 1, pin_policy::none}, {"42", "serial, openmp, tbb"});
}

TEST(Backends, NamesParseAndUnknownNamesAreRefused) {
  for (auto k : all_kinds) EXPECT_EQ(parse_backend(to_string(k)), k);
  EXPECT_EQ(backend_names(), (std::vector<std::string>{"serial", "openmp", "tbb"}));
  EXPECT_EQ(parse_pin("core"), pin_policy::core);
  EXPECT_EQ(parse_pin("none"), pin_policy::none);
  try {
    parse_backend("cuda");
    ADD_FAILURE() << "cuda accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'cuda'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("serial, openmp, tbb"), std::string::npos) << e.what();
  }
  try {
    parse_pin("socket");
    ADD_FAILURE() << "socket accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'socket'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("core, none"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_backend(""), std::invalid_argument);
  EXPECT_THROW(parse_backend("OpenMP"), std::invalid_argument);
}

}  // namespace
}  // namespace infermark
