// The list of ops the harness knows. One line per op; each op lives in bench/ops/<op>_op.cpp.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "bench/op.hpp"
#include "backends/topology.hpp"

namespace infermark {

op_def make_gemm_op();
op_def make_moe_op();
op_def make_attention_op();
op_def make_rmsnorm_op();

const std::vector<op_def>& ops() {
  static const std::vector<op_def> list = [] {
    std::vector<op_def> v;
    v.push_back(make_gemm_op());
    v.push_back(make_moe_op());
    v.push_back(make_attention_op());
    v.push_back(make_rmsnorm_op());
    return v;
  }();
  return list;
}

const op_def& find_op(std::string_view text) {
  const auto name = descriptor_op(text);
  std::vector<std::string> names;
  for (const auto& op : ops()) {
    if (op.spec.op == name) return op;
    names.push_back(op.spec.op);
  }
  throw descriptor_error(fmt::format("descriptor '{}': unknown op '{}'; valid choices: {}", text, name,
                                     fmt::join(names, ", ")));
}

descriptor parse(std::string_view text) { return parse_descriptor(find_op(text).spec, text); }

std::string to_string(const descriptor& d) { return to_string(find_op(d.op).spec, d); }

void check_memory(const descriptor& d, std::uint64_t bytes) {
  const std::uint64_t avail = available_memory_bytes();
  if (avail != 0 && bytes > avail)
    throw memory_error(fmt::format("{}: needs {:.2f} GiB of memory but only {:.2f} GiB is available; "
                                   "run a smaller shape or an expert shard",
                                   to_string(d), bytes / 1073741824.0, avail / 1073741824.0));
}

}  // namespace infermark
