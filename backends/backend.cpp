#include "backends/backend.hpp"

#include <stdexcept>
#include <string>

#include "backends/pinning.hpp"

namespace infermark {

std::string_view to_string(backend_kind k) {
  switch (k) {
    case backend_kind::serial: return "serial";
    case backend_kind::openmp: return "openmp";
    case backend_kind::tbb: return "tbb";
  }
  return "unknown";
}

std::string_view to_string(pin_policy p) { return p == pin_policy::core ? "core" : "none"; }

std::vector<std::string> backend_names() { return {"serial", "openmp", "tbb"}; }

backend_kind parse_backend(std::string_view name) {
  for (auto k : {backend_kind::serial, backend_kind::openmp, backend_kind::tbb})
    if (name == to_string(k)) return k;
  throw std::invalid_argument("unknown backend '" + std::string(name) +
                              "'; valid choices: serial, openmp, tbb");
}

pin_policy parse_pin(std::string_view name) {
  if (name == "none") return pin_policy::none;
  if (name == "core") return pin_policy::core;
  throw std::invalid_argument("unknown pinning policy '" + std::string(name) + "'; valid choices: core, none");
}

int max_threads() {
  const auto n = static_cast<int>(allowed_pus().size());
  return n > 0 ? n : 1;
}

std::unique_ptr<backend> make_serial_backend(const backend_config& cfg);
std::unique_ptr<backend> make_openmp_backend(const backend_config& cfg);
std::unique_ptr<backend> make_tbb_backend(const backend_config& cfg);

std::unique_ptr<backend> make_backend(const backend_config& cfg) {
  const int maxt = max_threads();
  if (cfg.threads < 1 || cfg.threads > maxt)
    throw std::invalid_argument("thread count " + std::to_string(cfg.threads) +
                                " is out of range; valid choices: 1.." + std::to_string(maxt) +
                                " (processing units available to this process)");
  if (cfg.kind == backend_kind::serial && cfg.threads != 1)
    throw std::invalid_argument("the serial backend runs exactly 1 thread, not " +
                                std::to_string(cfg.threads) + "; use --backend openmp or tbb for more");
  switch (cfg.kind) {
    case backend_kind::serial: return make_serial_backend(cfg);
    case backend_kind::openmp: return make_openmp_backend(cfg);
    case backend_kind::tbb: return make_tbb_backend(cfg);
  }
  throw std::invalid_argument("unknown backend kind " + std::to_string(static_cast<int>(cfg.kind)) +
                              "; valid choices: serial, openmp, tbb");
}

}  // namespace infermark
