#include "backends/backend.hpp"
#include "backends/pinning.hpp"

namespace infermark {
namespace {

class serial_backend final : public backend {
 public:
  explicit serial_backend(const backend_config& cfg) : report_(pin_this_thread_for(cfg.pin, 0)) {}
  backend_kind kind() const override { return backend_kind::serial; }
  int threads() const override { return 1; }
  void parallel(const std::function<void(int, int)>& f) const override { f(0, 1); }
  pin_report pinning() const override { return report_; }

 private:
  pin_report report_;
};

}  // namespace

std::unique_ptr<backend> make_serial_backend(const backend_config& cfg) {
  return std::make_unique<serial_backend>(cfg);
}

}  // namespace infermark
