#include "bench/suites.hpp"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "bench/op.hpp"

namespace infermark {
namespace {

// Each embedded suite is a text in the suite-file format, so embedded and user suites share one parser.
struct embedded_suite {
  const char* name;
  const char* help;
  const char* text;
};

// quick: representative shapes of each family, small enough that the whole default job (probe
// included) stays within a few minutes on a 2-core machine. Expert shapes are DeepSeek-V3's
// (hidden 7168, expert intermediate 2048) and Qwen3-30B-A3B's (hidden 2048, intermediate 768).
constexpr embedded_suite kSuites[] = {
    {"quick", "representative shapes of each kernel family, with library peers side by side (default)",
     R"(# GEMM at expert shapes: portable kernel and library peers side by side
gemm:m256n2048k7168:fp32 @all
gemm:m256n7168k2048:fp32 @all
# GEMV (decode, M=1) with weights rotated through >= 4x the last-level cache: memory-bound
gemm:m1n7168k2048:fp32:cache=cold
gemm:m64n768k2048:fp32
)"},
    {"full", "every GEMM shape of the workload reference (DeepSeek-V3 experts, M in {256, 2048})",
     R"(gemm:m256n2048k7168:fp32 @all
gemm:m256n7168k2048:fp32 @all
gemm:m256n4096k7168:fp32 @all
gemm:m2048n2048k7168:fp32 @all
gemm:m2048n7168k2048:fp32 @all
gemm:m2048n4096k7168:fp32 @all
gemm:m1n2048k7168:fp32:cache=cold
gemm:m1n7168k2048:fp32:cache=cold
gemm:m8n2048k7168:fp32:cache=cold
)"},
    {"ci", "small, stable cases for regression tracking (DeepSeek-V2-Lite sizes)",
     R"(gemm:m64n1408k2048:fp32
gemm:m16n2048k1408:fp32
gemm:m1n2048k1408:fp32
)"},
};

std::vector<suite_entry> parse_suite_text(const std::string& text, const std::string& origin) {
  std::vector<suite_entry> out;
  std::istringstream in(text);
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (const auto hash = line.find('#'); hash != std::string::npos) line.erase(hash);
    std::istringstream words(line);
    std::string desc, extra, more;
    if (!(words >> desc)) continue;
    words >> extra;
    if (words >> more)
      throw std::invalid_argument(fmt::format("{}:{}: unexpected '{}' after the descriptor and implementation",
                                              origin, lineno, more));
    suite_entry e;
    try {
      e.descriptor = to_string(parse(desc));
    } catch (const std::invalid_argument& err) {
      throw std::invalid_argument(fmt::format("{}:{}: {}", origin, lineno, err.what()));
    }
    if (!extra.empty()) {
      if (extra[0] != '@' || extra.size() == 1)
        throw std::invalid_argument(fmt::format("{}:{}: expected '@<implementation>' or '@all' after the "
                                                "descriptor, not '{}'", origin, lineno, extra));
      e.impl = extra.substr(1);
    }
    out.push_back(std::move(e));
  }
  if (out.empty()) throw std::invalid_argument(fmt::format("suite '{}' has no cases", origin));
  return out;
}

}  // namespace

std::vector<suite_info> suite_names() {
  std::vector<suite_info> out;
  for (const auto& s : kSuites) out.push_back({s.name, s.help});
  return out;
}

std::vector<suite_entry> load_suite(const std::string& name) {
  for (const auto& s : kSuites)
    if (name == s.name) return parse_suite_text(s.text, std::string("suite ") + s.name);
  std::error_code ec;
  if (std::filesystem::is_regular_file(name, ec)) {
    std::ifstream f(name);
    if (!f) throw std::invalid_argument(fmt::format("cannot read suite file '{}'", name));
    std::stringstream ss;
    ss << f.rdbuf();
    return parse_suite_text(ss.str(), name);
  }
  std::string names;
  for (const auto& s : kSuites) names += std::string(names.empty() ? "" : ", ") + s.name;
  throw std::invalid_argument(fmt::format("unknown suite '{}'; valid choices: {}, or the path of a file of "
                                          "descriptors", name, names));
}

}  // namespace infermark
