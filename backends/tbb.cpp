#include <tbb/blocked_range.h>
#include <tbb/global_control.h>
#include <tbb/parallel_for.h>
#include <tbb/partitioner.h>
#include <tbb/task_arena.h>

#include <atomic>
#include <chrono>
#include <exception>
#include <mutex>
#include <thread>

#include "backends/backend.hpp"
#include "backends/pinning.hpp"

namespace infermark {
namespace {

// Arena of nthr slots (slot 0 for the calling thread, nthr-1 for TBB workers); worker slot = arena slot.
//
// Binding happens at the start of every task body, keyed by the arena slot the executing thread holds.
// A tbb::task_scheduler_observer (on_scheduler_entry) would give the same slot -> PU mapping, but with
// oneTBB 2021.8 (Debian bookworm) a worker still holding the observer's proxy when the process exits
// makes LeakSanitizer report it (seen in tests/backends under ASan), and the sanitizer run must be clean.
class tbb_backend final : public backend {
 public:
  explicit tbb_backend(const backend_config& cfg) : nthr_(cfg.threads), binder_(cfg.pin, cfg.threads) {
    // TBB sizes its worker pool from the affinity mask it saw when it started; when that was narrower
    // (e.g. the calling thread was pinned then), raise the process-wide limit while this backend lives.
    if (tbb::global_control::active_value(tbb::global_control::max_allowed_parallelism) <
        static_cast<std::size_t>(nthr_))
      limit_ = std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism,
                                                     static_cast<std::size_t>(nthr_));
    arena_ = std::make_unique<tbb::task_arena>(nthr_, /*reserved_for_masters=*/1);
    arena_->initialize();
    // Occupy every slot once, all at the same time, so every worker has been bound before the first
    // measurement and pinning() reports every slot. Bounded: TBB may not deliver workers (the kernels
    // never depend on it), and the report then says which slots had not started.
    if (cfg.pin == pin_policy::core) occupy_every_slot([](int) {});
  }
  ~tbb_backend() override {
    // Unbind the workers as they were bound: every slot held at once, each thread restoring the cpuset
    // it had before (TBB's workers outlive the arena; pinned, they would skew whatever runs next).
    // A worker that does not show up within the bound stays bound until another backend rebinds it.
    if (binder_.report().requested == pin_policy::core) {
      try {
        occupy_every_slot([this](int) { binder_.release_current_thread(); });
      } catch (...) {  // a destructor must not throw; the calling thread is still restored below
      }
    }
    arena_.reset();
    binder_.release_current_thread();
  }
  backend_kind kind() const override { return backend_kind::tbb; }
  int threads() const override { return nthr_; }
  void parallel(const std::function<void(int, int)>& f) const override {
    std::exception_ptr error;
    std::mutex mu;
    // One range element per ithr; static_partitioner maps element i to arena slot i (TBB may still let
    // another thread take it). Kernels must not assume the nthr calls run concurrently (no barriers
    // inside a kernel); multi-stage ops call parallel() once per stage.
    arena_->execute([&] {
      tbb::parallel_for(
          tbb::blocked_range<int>(0, nthr_, 1),
          [&](const tbb::blocked_range<int>& r) {
            // Bind by arena slot, so slot s always runs on the PU planned for slot s whichever TBB thread
            // holds it; a thread-local compare when the thread already holds this slot.
            binder_.bind_current_thread(tbb::this_task_arena::current_thread_index());
            for (int ithr = r.begin(); ithr != r.end(); ++ithr) {
              try {
                f(ithr, nthr_);
              } catch (...) {
                std::lock_guard<std::mutex> lock(mu);
                if (!error) error = std::current_exception();
              }
            }
          },
          tbb::static_partitioner());
    });
    if (error) std::rethrow_exception(error);
  }
  pin_report pinning() const override { return binder_.report(); }

  // Runs `after_arrival(ithr)` on every slot once all nthr slots are held at the same time (waits at
  // most 2 s for TBB to deliver its workers; the kernels never depend on it).
  template <class F>
  void occupy_every_slot(F&& after_arrival) const {
    std::atomic<int> arrived{0};
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    parallel([&](int ithr, int n) {
      arrived.fetch_add(1);
      while (arrived.load() < n && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
      after_arrival(ithr);
    });
  }
  int worker_slot() const override { return tbb::this_task_arena::current_thread_index(); }

 private:
  int nthr_;
  thread_binder binder_;
  std::unique_ptr<tbb::global_control> limit_;
  std::unique_ptr<tbb::task_arena> arena_;
};

}  // namespace

std::unique_ptr<backend> make_tbb_backend(const backend_config& cfg) {
  return std::make_unique<tbb_backend>(cfg);
}

}  // namespace infermark
