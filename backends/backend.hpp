// Threading backends: one small interface hides whether nothing, OpenMP or oneTBB runs the threads.
// Kernels never see this: the harness calls backend.parallel(f) and f(ithr, nthr) calls the kernel's
// pure `execute(problem, args, ithr, nthr)`.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace infermark {

enum class backend_kind { serial, openmp, tbb };
enum class pin_policy { none, core };

std::string_view to_string(backend_kind k);
std::string_view to_string(pin_policy p);
// Both throw std::invalid_argument naming the bad value and the valid choices.
backend_kind parse_backend(std::string_view name);
pin_policy parse_pin(std::string_view name);
std::vector<std::string> backend_names();

struct backend_config {
  backend_kind kind = backend_kind::openmp;
  int threads = 1;                 // >= 1 and <= max_threads(); serial requires 1
  pin_policy pin = pin_policy::none;
};

// What pinning actually did, for the results context: requested vs applied, and why not when not.
struct pin_report {
  pin_policy requested = pin_policy::none;
  bool applied = false;
  // OS processor index each worker slot is bound to, in slot order (slot = ithr for serial and OpenMP,
  // the arena slot for TBB; see backend::worker_slot()); -1 for a slot not bound (yet). Empty with
  // --pin none and when the plan could not be made (then message says why).
  std::vector<int> cpus;
  std::string message;             // empty when applied as asked; otherwise the reason
};

class backend {
 public:
  virtual ~backend() = default;
  virtual backend_kind kind() const = 0;
  std::string_view name() const { return to_string(kind()); }
  // Number of workers parallel() runs.
  virtual int threads() const = 0;
  // Runs f(ithr, nthr) once for each ithr in [0, nthr), nthr == threads(), concurrently; returns when
  // all calls have returned. An exception thrown by f is rethrown here (the first one).
  virtual void parallel(const std::function<void(int ithr, int nthr)>& f) const = 0;
  // Pinning as planned and as applied so far (see pin_report).
  virtual pin_report pinning() const = 0;
  // Called from inside f: the worker slot of the calling thread, i.e. its index into pinning().cpus.
  // Serial and OpenMP: equals ithr. TBB: the arena slot, which is ithr in most calls but need not be
  // (TBB may hand a worker's share to another thread). -1 when the backend cannot tell.
  virtual int worker_slot() const { return -1; }
};

// Largest accepted thread count: the number of processing units the calling thread may run on (its
// cpuset as it was before any infermark backend pinned it, so a live pinned backend does not shrink it).
int max_threads();

// Validates the config (throws std::invalid_argument with the bad value and the valid range) and
// builds the backend, applying pinning when asked.
std::unique_ptr<backend> make_backend(const backend_config& cfg);

}  // namespace infermark
