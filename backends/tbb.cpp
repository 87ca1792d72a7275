#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>
#include <tbb/task_scheduler_observer.h>

#include <exception>
#include <mutex>

#include "backends/backend.hpp"
#include "backends/pinning.hpp"

namespace infermark {
namespace {

// Pins each thread that enters the arena, by its arena slot, so worker `ithr` sits on core `ithr`.
class pinning_observer final : public tbb::task_scheduler_observer {
 public:
  pinning_observer(tbb::task_arena& arena, pin_policy pin, int nthr)
      : tbb::task_scheduler_observer(arena), pin_(pin), reports_(nthr) {
    observe(true);
  }
  ~pinning_observer() override { observe(false); }
  void on_scheduler_entry(bool) override {
    const int slot = tbb::this_task_arena::current_thread_index();
    if (slot < 0 || slot >= static_cast<int>(reports_.size())) return;
    auto r = pin_this_thread_for(pin_, slot);
    std::lock_guard<std::mutex> lock(mu_);
    reports_[slot] = r;
  }
  std::vector<pin_report> reports() {
    std::lock_guard<std::mutex> lock(mu_);
    return reports_;
  }

 private:
  pin_policy pin_;
  std::mutex mu_;
  std::vector<pin_report> reports_;
};

class tbb_backend final : public backend {
 public:
  explicit tbb_backend(const backend_config& cfg)
      : nthr_(cfg.threads), pin_(cfg.pin), arena_(cfg.threads, /*reserved_for_masters=*/1) {
    arena_.initialize();
    if (pin_ != pin_policy::none) observer_ = std::make_unique<pinning_observer>(arena_, pin_, nthr_);
    // Warm up: every slot runs once, so all workers have entered (and been pinned).
    parallel([](int, int) {});
    if (observer_) report_ = merge_pin_reports(pin_, observer_->reports());
    else report_.requested = pin_;
  }
  ~tbb_backend() override { observer_.reset(); }
  backend_kind kind() const override { return backend_kind::tbb; }
  int threads() const override { return nthr_; }
  void parallel(const std::function<void(int, int)>& f) const override {
    std::exception_ptr error;
    std::mutex mu;
    // One task per ithr. Kernels must not assume the nthr calls run concurrently (no barriers inside
    // a kernel); multi-stage ops call parallel() once per stage.
    arena_.execute([&] {
      tbb::parallel_for(tbb::blocked_range<int>(0, nthr_, 1),
                        [&](const tbb::blocked_range<int>& r) {
                          for (int ithr = r.begin(); ithr != r.end(); ++ithr) {
                            try {
                              f(ithr, nthr_);
                            } catch (...) {
                              std::lock_guard<std::mutex> lock(mu);
                              if (!error) error = std::current_exception();
                            }
                          }
                        },
                        tbb::simple_partitioner());
    });
    if (error) std::rethrow_exception(error);
  }
  pin_report pinning() const override { return report_; }

 private:
  int nthr_;
  pin_policy pin_;
  mutable tbb::task_arena arena_;
  std::unique_ptr<pinning_observer> observer_;
  pin_report report_;
};

}  // namespace

std::unique_ptr<backend> make_tbb_backend(const backend_config& cfg) {
  return std::make_unique<tbb_backend>(cfg);
}

}  // namespace infermark
