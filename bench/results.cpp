#include "bench/results.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include "git_rev.hpp"

namespace infermark {

nlohmann::json build_info() {
  return {{"version", INFERMARK_VERSION},
          {"git_revision", INFERMARK_GIT_REVISION},
          {"compiler", INFERMARK_COMPILER},
          {"cxx_flags", INFERMARK_CXX_FLAGS},
          {"build_type", INFERMARK_BUILD_TYPE},
          {"sanitizer", INFERMARK_SANITIZE_MODE}};
}

namespace {
std::filesystem::path temp_path_for(const std::filesystem::path& path) {
  return path.parent_path() / fmt::format(".{}.tmp.{}", path.filename().string(), ::getpid());
}
}  // namespace

void check_writable(const std::filesystem::path& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw std::invalid_argument(fmt::format("output path '{}' is a directory; give a file name", path.string()));
  const auto dir = path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path();
  if (!std::filesystem::is_directory(dir, ec))
    throw std::invalid_argument(fmt::format("cannot write '{}': directory '{}' does not exist", path.string(),
                                            dir.string()));
  const auto tmp = temp_path_for(path.parent_path().empty() ? std::filesystem::path(".") / path : path);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
  if (fd < 0)
    throw std::invalid_argument(fmt::format("cannot write '{}': {}", path.string(), std::strerror(errno)));
  ::close(fd);
  std::filesystem::remove(tmp, ec);
}

void write_json_atomically(const std::filesystem::path& path, const nlohmann::json& j) {
  const auto full = path.parent_path().empty() ? std::filesystem::path(".") / path : path;
  const auto tmp = temp_path_for(full);
  const std::string text = j.dump(2) + "\n";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) throw std::runtime_error(fmt::format("cannot write '{}': {}", path.string(), std::strerror(errno)));
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      const std::string why = std::strerror(errno);
      ::close(fd);
      ::unlink(tmp.c_str());
      throw std::runtime_error(fmt::format("cannot write '{}': {}", path.string(), why));
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    throw std::runtime_error(fmt::format("cannot write '{}': {}", path.string(), std::strerror(errno)));
  }
  if (::rename(tmp.c_str(), full.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    ::unlink(tmp.c_str());
    throw std::runtime_error(fmt::format("cannot write '{}': {}", path.string(), why));
  }
}

nlohmann::json read_json_file(const std::filesystem::path& path) {
  std::ifstream f(path);
  if (!f) throw std::runtime_error(fmt::format("cannot read '{}': {}", path.string(), std::strerror(errno)));
  try {
    return nlohmann::json::parse(f);
  } catch (const nlohmann::json::parse_error& e) {
    throw std::runtime_error(fmt::format("'{}' is not valid JSON: {}", path.string(), e.what()));
  }
}

std::optional<double> alongside_read_gbs(const nlohmann::json& entry) {
  const auto it = entry.find("dram_read_gbs_alongside");
  if (it == entry.end() || !it->is_object()) return std::nullopt;
  const auto mean = it->find("mean");
  if (mean == it->end() || !mean->is_number() || !(mean->get<double>() > 0)) return std::nullopt;
  return mean->get<double>();
}

std::optional<double> time_unit_seconds(std::string_view unit) {
  if (unit == "ns") return 1e-9;
  if (unit == "us") return 1e-6;
  if (unit == "ms") return 1e-3;
  if (unit == "s") return 1.0;
  return std::nullopt;
}

std::filesystem::path default_results_dir() {
  if (const char* d = std::getenv("INFERMARK_RESULTS_DIR"); d != nullptr && *d != '\0') return d;
  return std::filesystem::path(INFERMARK_SOURCE_DIR) / "results";
}

}  // namespace infermark
