// The harness's view of a kernel family ("op"): its descriptor spec, its ordered implementation list and
// a factory for runnable cases. Data flow: descriptor -> implementation (first that accepts, reference
// last) -> backend runs it -> output verified -> timed -> work model -> roofline fraction.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "backends/backend.hpp"
#include "bench/descriptor.hpp"
#include "kernels/common/work.hpp"

namespace infermark {

// No implementation can run the problem (each refusal is listed), or the named one refused.
class unsupported_error : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};
// The case would need more memory than is available; thrown before allocating.
class memory_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct verdict {
  bool ok = false;
  std::string detail;       // e.g. "exact (integer data), 4096 of 524288 elements checked"
  double max_abs_err = 0;
  double max_rel_err = 0;
  std::int64_t checked = 0; // output elements compared
};

// One descriptor bound to one implementation, with its data allocated and initialized (seeded).
class kernel_case {
 public:
  virtual ~kernel_case() = default;
  virtual std::string impl_name() const = 0;   // e.g. "avx512:fp32", "onednn:matmul", "ref:any"
  virtual work_model work() const = 0;         // per run()
  // One timed iteration through `be`. Must not allocate on the hot path.
  virtual void run(const backend& be) = 0;
  // Recomputes (a deterministic sample of) the output with the reference implementation and compares it
  // with the output of the most recent run(). Call run() first.
  virtual verdict verify(const backend& be) = 0;
  // False for library peers that run their own threads (the backend choice does not apply to them).
  virtual bool uses_backend() const { return true; }
  // The dtype whose probe peak bounds this case ("" = the descriptor's dtype), e.g. "fp32" for an fp8
  // kernel that dequantizes into fp32 FMAs.
  virtual std::string peak_dtype() const { return ""; }
};

struct impl_choice {
  std::string name;
  std::string refusal;      // empty when this implementation accepts the descriptor
};

struct op_def {
  descriptor_spec spec;
  // Every implementation in preference order (reference last), with its verdict for `d` on this CPU.
  std::function<std::vector<impl_choice>(const descriptor& d)> implementations;
  // Bytes the case would allocate (inputs, packed weights, outputs, reference scratch).
  std::function<std::uint64_t(const descriptor& d)> footprint_bytes;
  // Builds the case with the implementation `impl` ("" = first that accepts). Throws unsupported_error,
  // or descriptor_error for inconsistent fields (e.g. top-k > experts).
  std::function<std::unique_ptr<kernel_case>(const descriptor& d, const std::string& impl,
                                             std::uint64_t seed)>
      make;
};

// All ops, registered in bench/ops/*.cpp.
const std::vector<op_def>& ops();
// The op for a descriptor string; throws descriptor_error naming the op and the valid ops.
const op_def& find_op(std::string_view descriptor_text);
// Parses a descriptor string with its op's spec.
descriptor parse(std::string_view text);
std::string to_string(const descriptor& d);

// Refuses (memory_error) when `bytes` exceeds the memory available now, naming the size needed.
void check_memory(const descriptor& d, std::uint64_t bytes);

}  // namespace infermark
