// The work model: exact FLOPs and minimum bytes moved by one kernel invocation, split by phase.
#pragma once
#include <string>
#include <vector>

namespace infermark {

struct work_phase {
  std::string name;   // e.g. "gemm", "router", "experts.gate_up", "combine"
  double flops = 0;   // floating-point (or integer multiply-add) operations, 2 per multiply-add
  double bytes = 0;   // minimum bytes read + written, each tensor counted once
};

struct work_model {
  std::vector<work_phase> phases;
  double flops() const {
    double s = 0;
    for (const auto& p : phases) s += p.flops;
    return s;
  }
  double bytes() const {
    double s = 0;
    for (const auto& p : phases) s += p.bytes;
    return s;
  }
  // FLOPs per byte; 0 when nothing moves.
  double intensity() const { return bytes() > 0 ? flops() / bytes() : 0.0; }
};

}  // namespace infermark
