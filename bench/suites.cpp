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
     R"(# GEMM at a DeepSeek-V3 expert shape: portable kernel and library peers side by side, then each format
gemm:m256n2048k7168:fp32 @all
gemm:m256n2048k7168:bf16
gemm:m256n2048k7168:int8
gemm:m256n2048k7168:fp8
# GEMV (decode, M=1) with weights rotated through >= 4x the last-level cache: memory-bound
gemm:m1n7168k2048:fp32:cache=cold
# MoE layers: DeepSeek-V3 (fp8, a shard of 8 of 256 experts as under expert parallelism) and Qwen3-30B-A3B
moe:t64e256k8h7168i2048s2048g8gk4el8:fp8:score=sigmoid_group_topk
moe:t64e128k8h2048i768:bf16
moe:t8e128k8h2048i768:bf16:cache=cold
# attention: MHA decode (memory-bound here), GQA decode (Qwen3-235B heads), MLA decode (DeepSeek-V3
# absorbed, 16 heads), causal prefill, gpt-oss sliding window with sinks
attn:b16q1ctx4096hq32hkv32dk128:bf16:cache=cold
attn:b16q1ctx4096hq64hkv4dk128:bf16:cache=cold
attn:b32q1ctx4096hq16hkv1dk576dv512bs64:bf16:mla=on:cache=cold
attn:b1q2048ctx2048hq32hkv8dk128:fp32
attn:b8q1ctx4096hq64hkv8dk64win128:bf16:sinks=on
# RMSNorm with the fused residual add (DeepSeek-V3 hidden size)
rmsnorm:t256h7168:bf16:residual=on
)"},
    {"full", "every family at the workload reference's shapes (decode and prefill)",
     R"(gemm:m256n2048k7168:fp32 @all
gemm:m256n7168k2048:fp32 @all
gemm:m256n4096k7168:fp32 @all
gemm:m2048n2048k7168:fp32 @all
gemm:m2048n7168k2048:fp32 @all
gemm:m2048n4096k7168:fp32 @all
gemm:m256n2048k7168:bf16 @all
gemm:m256n2048k7168:int8 @all
gemm:m256n2048k7168:fp8 @all
gemm:m1n2048k7168:fp32:cache=cold
gemm:m1n7168k2048:fp32:cache=cold
gemm:m8n2048k7168:fp32:cache=cold
moe:t1e256k8h7168i2048s2048g8gk4el8:fp8:score=sigmoid_group_topk:cache=cold
moe:t256e256k8h7168i2048s2048g8gk4el8:fp8:score=sigmoid_group_topk
moe:t2048e256k8h7168i2048s2048g8gk4el8:fp8:score=sigmoid_group_topk
moe:t256e256k8h7168i2048s2048g8gk4el8:int8:score=sigmoid_group_topk
moe:t64e128k8h2048i768:fp32
moe:t512e128k8h2048i768:bf16
moe:t64e128k8h4096i1536el32:bf16
moe:t64e8k2h4096i14336:bf16:score=topk_softmax
moe:t64e128k4h2880i2880el32:bf16:score=topk_softmax:act=swiglu_oai
moe:t64e128k8h2048i768:bf16:route=zipf
attn:b16q1ctx4096hq32hkv32dk128:fp32:cache=cold
attn:b16q1ctx4096hq32hkv32dk128:bf16:cache=cold
attn:b16q1ctx4096hq64hkv8dk128:bf16:cache=cold
attn:b16q1ctx4096hq64hkv8dk128:int8:cache=cold
attn:b16q1ctx4096hq64hkv8dk128:fp8:cache=cold
attn:b8q1ctx32768hq32hkv8dk128split8:bf16:cache=cold
attn:b32q1ctx4096hq16hkv1dk576dv512bs64:bf16:mla=on:cache=cold
attn:b32q2ctx4096hq128hkv1dk576dv512bs64:bf16:mla=on
attn:b1q2048ctx2048hq32hkv8dk128:fp32
attn:b1q2048ctx2048hq32hkv8dk128:bf16
attn:b1q4096ctx4096hq64hkv4dk128:bf16
attn:b1q2048ctx2048hq128hkv128dk192dv128:bf16
attn:b8q1ctx4096hq64hkv8dk64win128:bf16:sinks=on
rmsnorm:t256h7168:bf16:residual=on
rmsnorm:t4096h7168:fp32
)"},
    {"ci", "small, stable cases for regression tracking (DeepSeek-V2-Lite sizes)",
     R"(gemm:m64n1408k2048:fp32
gemm:m16n2048k1408:bf16
gemm:m1n2048k1408:fp32
moe:t16e64k6h2048i1408s2816:fp32:score=softmax_topk
attn:b4q1ctx1024hq16hkv16dk128:fp32
attn:b4q1ctx1024hq16hkv1dk576dv512bs64:bf16:mla=on
rmsnorm:t64h2048:fp32:residual=on
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
