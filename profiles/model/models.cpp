// Model architecture files (profiles/models/<slug>.toml) -> model_config. Strict: unknown keys, missing
// required keys, wrong types, unknown enum names and inconsistent shapes are profile_errors naming the
// file, line and key.
#include <algorithm>
#include <filesystem>
#include <map>
#include <variant>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "profiles/model/profile.hpp"
#include "profiles/model/toml_read.hpp"
#include "profiles/model/workload.hpp"

namespace infermark {
namespace {

using toml_read::line_of;

using int_field = std::int64_t model_config::*;
using bool_field = bool model_config::*;
using text_field = std::string model_config::*;
using real_field = double model_config::*;
using field = std::variant<int_field, bool_field, text_field, real_field>;

// Keys of a model file: top level, then [quoted]. Required: present in every file.
struct key_spec {
  field f;
  bool required;
};
using key_table = std::map<std::string, key_spec, std::less<>>;
const key_table& top_keys() {
  static const key_table k = {
      {"name", {&model_config::name, true}},
      {"source", {&model_config::source, true}},
      {"hidden", {&model_config::hidden, true}},
      {"layers", {&model_config::layers, true}},
      {"dense_layers", {&model_config::dense_layers, true}},
      {"vocab", {&model_config::vocab, true}},
      {"heads", {&model_config::heads, true}},
      {"kv_heads", {&model_config::kv_heads, true}},
      {"head_dim", {&model_config::head_dim, false}},
      {"qk_norm", {&model_config::qk_norm, false}},
      {"window", {&model_config::window, false}},
      {"sliding_every", {&model_config::sliding_every, false}},
      {"sinks", {&model_config::sinks, false}},
      {"q_lora_rank", {&model_config::q_lora_rank, false}},
      {"kv_lora_rank", {&model_config::kv_lora_rank, false}},
      {"qk_nope_dim", {&model_config::qk_nope_dim, false}},
      {"qk_rope_dim", {&model_config::qk_rope_dim, false}},
      {"v_head_dim", {&model_config::v_head_dim, false}},
      {"dense_inter", {&model_config::dense_inter, false}},
      {"experts", {&model_config::experts, false}},
      {"top_k", {&model_config::top_k, false}},
      {"expert_inter", {&model_config::expert_inter, false}},
      {"shared_experts", {&model_config::shared_experts, false}},
      {"n_group", {&model_config::n_group, false}},
      {"topk_group", {&model_config::topk_group, false}},
  };
  return k;
}
const key_table& quoted_keys() {
  static const key_table k = {
      {"total_params", {&model_config::quoted_total_params, true}},
      {"active_params", {&model_config::quoted_active_params, true}},
      {"source", {&model_config::quoted_source, true}},
      {"active_convention", {&model_config::active_convention, true}},
  };
  return k;
}
constexpr std::string_view kEnumKeys[] = {"attention", "scoring", "activation"};

std::string valid_keys(const key_table& keys, bool with_enums) {
  std::vector<std::string> v;
  for (const auto& [name, spec] : keys) v.push_back(name);
  if (with_enums) {
    for (auto e : kEnumKeys) v.emplace_back(e);
    v.emplace_back("[quoted]");
  }
  std::sort(v.begin(), v.end());
  return fmt::format("{}", fmt::join(v, ", "));
}

struct reader {
  std::string file;
  model_config& m;

  [[noreturn]] void fail(const toml::node* n, const std::string& key, const std::string& what) const {
    throw profile_error(file, line_of(n), key, what);
  }
  void set(const key_spec& spec, const toml::node& v, const std::string& key) const {
    std::visit(
        [&](auto member) {
          using T = std::remove_reference_t<decltype(m.*member)>;
          if constexpr (std::is_same_v<T, std::int64_t>) {
            if (!v.is_integer()) fail(&v, key, "expected an integer");
            const std::int64_t x = *v.value<std::int64_t>();
            if (x < 0) fail(&v, key, fmt::format("{} must be >= 0", x));
            m.*member = x;
          } else if constexpr (std::is_same_v<T, bool>) {
            if (!v.is_boolean()) fail(&v, key, "expected true or false");
            m.*member = *v.value<bool>();
          } else if constexpr (std::is_same_v<T, std::string>) {
            if (!v.is_string() || v.value<std::string>()->empty()) fail(&v, key, "expected a non-empty string");
            m.*member = *v.value<std::string>();
          } else {
            if (!v.is_number()) fail(&v, key, "expected a number");
            const double x = *v.value<double>();
            if (!(x > 0)) fail(&v, key, fmt::format("{} must be > 0", x));
            m.*member = x;
          }
        },
        spec.f);
  }
  // Sets the keys of `t` from `keys` (plus the enum keys at the top level); checks the required ones.
  void read(const toml::table& t, const key_table& keys, const std::string& prefix, bool top) const {
    for (auto&& kv : t) {
      const std::string key(kv.first.str());
      const toml::node& v = kv.second;
      if (top && key == "quoted") continue;
      if (top && std::find(std::begin(kEnumKeys), std::end(kEnumKeys), key) != std::end(kEnumKeys)) {
        if (!v.is_string()) fail(&v, key, "expected a string");
        const std::string s = *v.value<std::string>();
        try {
          if (key == "attention") {
            if (s == "gqa") m.attn = attention_kind::gqa;
            else if (s == "mla") m.attn = attention_kind::mla;
            else throw std::invalid_argument(fmt::format("unknown attention '{}' (valid: gqa, mla)", s));
          } else if (key == "scoring") {
            m.scoring = parse_moe_scoring(s);
          } else {
            m.act = parse_moe_activation(s);
          }
        } catch (const std::invalid_argument& e) {
          fail(&v, key, e.what());
        }
        continue;
      }
      const auto it = keys.find(key);
      if (it == keys.end()) fail(&v, prefix + key, fmt::format("unknown key (valid: {})", valid_keys(keys, top)));
      set(it->second, v, prefix + key);
    }
    for (const auto& [name, spec] : keys)
      if (spec.required && !t.contains(name)) fail(&t, prefix + name, "missing required key");
    if (top && !t.contains("attention")) fail(&t, "attention", "missing required key (gqa or mla)");
  }
  // Shapes the decomposition relies on.
  void check(const toml::table& root) const {
    auto need = [&](bool ok, const char* key, const std::string& what) {
      if (!ok) fail(root.get(key) ? root.get(key) : &root, key, what);
    };
    need(m.hidden > 0 && m.layers > 0 && m.vocab > 0 && m.heads > 0 && m.kv_heads > 0, "hidden",
         "hidden, layers, vocab, heads and kv_heads must be >= 1");
    need(m.dense_layers <= m.layers, "dense_layers", fmt::format("{} exceeds layers = {}", m.dense_layers, m.layers));
    need(m.heads % m.kv_heads == 0, "kv_heads", fmt::format("{} does not divide heads = {}", m.kv_heads, m.heads));
    if (m.attn == attention_kind::mla) {
      need(m.kv_heads == 1, "kv_heads", "MLA has one shared latent cache row: kv_heads must be 1");
      need(m.kv_lora_rank > 0 && m.qk_nope_dim > 0 && m.qk_rope_dim > 0 && m.v_head_dim > 0, "kv_lora_rank",
           "MLA needs kv_lora_rank, qk_nope_dim, qk_rope_dim and v_head_dim >= 1");
    } else {
      need(m.head_dim > 0, "head_dim", "GQA needs head_dim >= 1");
    }
    need(m.dense_layers == 0 || m.dense_inter > 0, "dense_inter", "dense layers need dense_inter >= 1");
    if (m.experts > 0) {
      need(m.dense_layers < m.layers, "dense_layers", "a MoE model needs at least one MoE layer");
      need(m.top_k >= 1 && m.top_k <= m.experts, "top_k", fmt::format("{} must be in [1, experts = {}]", m.top_k, m.experts));
      need(m.expert_inter > 0, "expert_inter", "MoE layers need expert_inter >= 1");
      need(m.n_group >= 1 && m.experts % m.n_group == 0, "n_group",
           fmt::format("{} groups do not divide experts = {}", m.n_group, m.experts));
      need(m.topk_group >= 1 && m.topk_group <= m.n_group, "topk_group", fmt::format("{} must be in [1, n_group = {}]", m.topk_group, m.n_group));
    } else {
      need(m.dense_layers == m.layers, "dense_layers", "a dense model (no experts) has dense_layers = layers");
    }
    need((m.window == 0) == (m.sliding_every == 0), "window", "window and sliding_every go together (both 0 or both >= 1)");
  }
};

}  // namespace

model_config load_model(const std::filesystem::path& file) {
  const std::string fname = file.string();
  const toml::table root = toml_read::parse(file);
  model_config m;
  m.slug = file.stem().string();
  const reader r{fname, m};
  r.read(root, top_keys(), "", true);
  const toml::node* quoted = root.get("quoted");
  if (!quoted || !quoted->is_table()) r.fail(quoted ? quoted : &root, "quoted", "missing [quoted] table (the authors' parameter counts)");
  r.read(*quoted->as_table(), quoted_keys(), "quoted.", false);
  r.check(root);
  return m;
}

std::vector<model_config> load_models(const std::filesystem::path& dir) {
  if (!std::filesystem::is_directory(dir)) throw std::invalid_argument(fmt::format("model directory '{}' does not exist (models/ of the profiles directory: --profiles-dir or INFERMARK_PROFILES_DIR)", dir.string()));
  const std::vector<std::filesystem::path> files = toml_read::files(dir);
  if (files.empty()) throw std::invalid_argument(fmt::format("model directory '{}' holds no *.toml file", dir.string()));
  std::vector<model_config> out;
  for (const auto& f : files) out.push_back(load_model(f));
  return out;
}

const std::vector<model_config>& known_models() {
  // Loaded on first use, again if profiles_dir() has changed since.
  static std::filesystem::path from;
  static std::vector<model_config> models;
  if (models.empty() || from != profiles_dir()) {
    models = load_models(profiles_dir() / "models");
    from = profiles_dir();
  }
  return models;
}

}  // namespace infermark
