#include <omp.h>

#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>

#include "backends/backend.hpp"
#include "backends/pinning.hpp"

namespace infermark {
namespace {

// OpenMP team of nthr threads; worker slot = OpenMP thread number = ithr.
//
// Binding: every thread of the team calls bind_current_thread(its thread number) at the start of each
// parallel region. libgomp keeps its pool of OS threads between regions of the same team size and gives
// thread number t to the same OS thread again, so after the first region the call is only a
// thread-local compare. When the pool was reshuffled in between (another team size, another backend
// binding the same threads), the call binds again, so the placement reported stays the one in force.
class openmp_backend final : public backend {
 public:
  explicit openmp_backend(const backend_config& cfg) : nthr_(cfg.threads), binder_(cfg.pin, cfg.threads) {
    // The first region creates (and binds) the whole team; also check the runtime grants all threads
    // (OMP_THREAD_LIMIT or a nested call could give fewer, which would make --threads a lie).
    int team = 0;
    run([&](int ithr, int) {
      if (ithr == 0) team = omp_get_num_threads();
    });
    if (team != nthr_) {
      release_all();
      throw std::invalid_argument("the OpenMP runtime gives " + std::to_string(team) + " threads, not the " +
                                  std::to_string(nthr_) + " requested (check OMP_THREAD_LIMIT); valid choices: 1.." +
                                  std::to_string(team));
    }
  }
  ~openmp_backend() override { release_all(); }
  backend_kind kind() const override { return backend_kind::openmp; }
  int threads() const override { return nthr_; }
  void parallel(const std::function<void(int, int)>& f) const override { run(f); }
  pin_report pinning() const override { return binder_.report(); }
  int worker_slot() const override { return omp_get_thread_num(); }

 private:
  void run(const std::function<void(int, int)>& f) const {
    // Dynamic adjustment (OMP_DYNAMIC=true) lets libgomp shrink teams when the machine is loaded.
    if (omp_get_dynamic()) omp_set_dynamic(0);
    std::exception_ptr error;
    std::mutex mu;
    const int outer_level = omp_get_level();
#pragma omp parallel num_threads(nthr_)
    {
      const int t = omp_get_thread_num();
      const int team = omp_get_num_threads();
      // Bind only a full outermost team: a nested call runs on threads that belong to someone else.
      if (team == nthr_ && outer_level == 0) binder_.bind_current_thread(t);
      // A short team (nested call, thread limit) still runs every ithr, a few per thread.
      for (int ithr = t; ithr < nthr_; ithr += team) {
        try {
          f(ithr, nthr_);
        } catch (...) {
          std::lock_guard<std::mutex> lock(mu);
          if (!error) error = std::current_exception();
        }
      }
    }
    if (error) std::rethrow_exception(error);
  }

  // Gives the team's threads (the calling thread included) back the cpusets they had before this
  // backend bound them, so a pinned backend leaves no pinned threads behind (libgomp reuses them for
  // later regions of any OpenMP user, e.g. OpenBLAS or oneDNN).
  void release_all() const noexcept {
    if (omp_get_level() != 0) {
      binder_.release_current_thread();
      return;
    }
#pragma omp parallel num_threads(nthr_)
    binder_.release_current_thread();
  }

  int nthr_;
  thread_binder binder_;
};

}  // namespace

std::unique_ptr<backend> make_openmp_backend(const backend_config& cfg) {
  return std::make_unique<openmp_backend>(cfg);
}

}  // namespace infermark
