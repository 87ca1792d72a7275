#include "backends/backend.hpp"
#include "backends/pinning.hpp"

namespace infermark {
namespace {

// Runs f(0, 1) on the calling thread. With --pin core the calling thread is bound to the first allowed
// core while the backend lives (and restored when it is destroyed on that thread).
class serial_backend final : public backend {
 public:
  explicit serial_backend(const backend_config& cfg) : binder_(cfg.pin, 1) { binder_.bind_current_thread(0); }
  ~serial_backend() override { binder_.release_current_thread(); }
  backend_kind kind() const override { return backend_kind::serial; }
  int threads() const override { return 1; }
  void parallel(const std::function<void(int, int)>& f) const override {
    // Free when already bound; rebinds when parallel() is called from another thread or after another
    // backend moved this thread.
    binder_.bind_current_thread(0);
    f(0, 1);
  }
  pin_report pinning() const override { return binder_.report(); }
  int worker_slot() const override { return 0; }

 private:
  thread_binder binder_;
};

}  // namespace

std::unique_ptr<backend> make_serial_backend(const backend_config& cfg) {
  return std::make_unique<serial_backend>(cfg);
}

}  // namespace infermark
