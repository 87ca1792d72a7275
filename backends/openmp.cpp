#include <omp.h>

#include <exception>
#include <mutex>

#include "backends/backend.hpp"
#include "backends/pinning.hpp"

namespace infermark {
namespace {

class openmp_backend final : public backend {
 public:
  explicit openmp_backend(const backend_config& cfg) : nthr_(cfg.threads), pin_(cfg.pin) {
    // Pin once: libgomp keeps the same OS threads for same-sized teams, so the binding persists.
    std::vector<pin_report> reports(nthr_);
    parallel([&](int ithr, int) { reports[ithr] = pin_this_thread_for(pin_, ithr); });
    report_ = merge_pin_reports(pin_, reports);
  }
  backend_kind kind() const override { return backend_kind::openmp; }
  int threads() const override { return nthr_; }
  void parallel(const std::function<void(int, int)>& f) const override {
    std::exception_ptr error;
    std::mutex mu;
#pragma omp parallel num_threads(nthr_)
    {
      try {
        f(omp_get_thread_num(), nthr_);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        if (!error) error = std::current_exception();
      }
    }
    if (error) std::rethrow_exception(error);
  }
  pin_report pinning() const override { return report_; }

 private:
  int nthr_;
  pin_policy pin_;
  pin_report report_;
};

}  // namespace

std::unique_ptr<backend> make_openmp_backend(const backend_config& cfg) {
  return std::make_unique<openmp_backend>(cfg);
}

}  // namespace infermark
