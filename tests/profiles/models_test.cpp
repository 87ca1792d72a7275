// Model files (profiles/models/*.toml): the shipped ones load with the shapes of their config.json, and a
// malformed file is a profile_error naming the file, the line and the key, with the valid choices.
#include <gtest/gtest.h>

#include <filesystem>

#include "profiles/model/profile.hpp"
#include "profiles/model/workload.hpp"
#include "tests/profiles/temp_files.hpp"

namespace infermark {
namespace {

namespace fs = std::filesystem;

// A small valid GQA MoE model; each test breaks one thing.
const std::string kModel = R"(name = "Tiny"
source = "test"
hidden = 256
layers = 4
dense_layers = 1
vocab = 1000
attention = "gqa"
heads = 8
kv_heads = 2
head_dim = 32
dense_inter = 512
experts = 8
top_k = 2
expert_inter = 128
scoring = "topk_softmax"

[quoted]
total_params = 1e6
active_params = 5e5
source = "test"
active_convention = "including the input embedding"
)";

using test::replace;
using test::temp_dir;

// The profile_error of loading `text`; fails the test when it loads.
profile_error error_of(const std::string& text) {
  temp_dir d;
  const fs::path f = d.write("tiny.toml", text);
  try {
    (void)load_model(f);
  } catch (const profile_error& e) {
    EXPECT_EQ(e.file(), f.string());
    return e;
  }
  ADD_FAILURE() << "loaded:\n" << text;
  return profile_error("", 1, "", "");
}

TEST(Models, ShippedFilesLoadWithTheirShapes) {
  const auto& models = known_models();
  ASSERT_EQ(models.size(), 7u);
  std::vector<std::string> slugs;
  for (const auto& m : models) slugs.push_back(m.slug);
  EXPECT_EQ(slugs, (std::vector<std::string>{"deepseek-v2-lite", "deepseek-v3", "gpt-oss-120b", "llama-2-70b", "mixtral-8x7b",
                                             "qwen3-235b-a22b", "qwen3-30b-a3b"}));
  const model_config& v3 = find_model("deepseek-v3");
  EXPECT_EQ(v3.attn, attention_kind::mla);
  EXPECT_EQ(v3.hidden, 7168);
  EXPECT_EQ(v3.q_lora_rank, 1536);
  EXPECT_EQ(v3.n_group, 8);
  EXPECT_EQ(v3.topk_group, 4);
  EXPECT_EQ(v3.scoring, moe_scoring::sigmoid_group_topk);
  EXPECT_DOUBLE_EQ(v3.quoted_total_params, 671e9);
  const model_config& oss = find_model("gpt-oss-120b");
  EXPECT_TRUE(oss.sinks);
  EXPECT_EQ(oss.window, 128);
  EXPECT_EQ(oss.act, moe_activation::swiglu_oai);
  EXPECT_TRUE(oss.sliding(0));
  EXPECT_FALSE(oss.sliding(1));
  const model_config& llama = find_model("llama-2-70b");
  EXPECT_FALSE(llama.moe());
  EXPECT_EQ(llama.dense_layers, llama.layers);
  EXPECT_TRUE(find_model("qwen3-30b-a3b").qk_norm);
  // Defaults of keys a file leaves out.
  EXPECT_EQ(llama.n_group, 1);
  EXPECT_EQ(llama.act, moe_activation::swiglu);
}

// known_models() reads profiles_dir()/models, and reads again when set_profiles_dir moves it.
TEST(Models, KnownModelsFollowTheProfilesDirectory) {
  const fs::path shipped = profiles_dir();
  EXPECT_EQ(shipped, default_profiles_dir());
  temp_dir d({"models"});
  d.write("models/tiny-moe.toml", kModel);
  set_profiles_dir(d.path);
  std::vector<std::string> slugs;
  for (const auto& m : known_models()) slugs.push_back(m.slug);
  EXPECT_EQ(slugs, std::vector<std::string>{"tiny-moe"});
  EXPECT_EQ(find_model("tiny-moe").experts, 8);
  EXPECT_THROW(find_model("deepseek-v3"), std::invalid_argument);
  set_profiles_dir(d.path / "none");
  try {
    (void)known_models();
    ADD_FAILURE() << "a missing models/ loaded";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find((d.path / "none" / "models").string()), std::string::npos) << e.what();
  }
  set_profiles_dir(shipped);
  EXPECT_EQ(known_models().size(), 7u);
}

TEST(Models, ValidFileLoads) {
  temp_dir d;
  const model_config m = load_model(d.write("tiny-moe.toml", kModel));
  EXPECT_EQ(m.slug, "tiny-moe");
  EXPECT_EQ(m.name, "Tiny");
  EXPECT_EQ(m.kv_heads, 2);
  EXPECT_EQ(m.scoring, moe_scoring::topk_softmax);
  EXPECT_DOUBLE_EQ(m.quoted_active_params, 5e5);
  EXPECT_TRUE(m.moe());
}

TEST(Models, UnknownKeyNamesTheValidOnes) {
  const profile_error e = error_of(replace(kModel, "vocab = 1000", "vocab = 1000\nhiden = 3"));
  EXPECT_EQ(e.key(), "hiden");
  EXPECT_EQ(e.line(), 7);  // the line after vocab (line 6)
  EXPECT_NE(std::string(e.what()).find("valid: "), std::string::npos) << e.what();
  EXPECT_NE(std::string(e.what()).find("hidden"), std::string::npos) << e.what();
  EXPECT_EQ(error_of(replace(kModel, "source = \"test\"\nactive", "sauce = \"test\"\nactive")).key(), "quoted.sauce");
}

TEST(Models, MissingRequiredKeys) {
  EXPECT_EQ(error_of(replace(kModel, "hidden = 256\n", "")).key(), "hidden");
  EXPECT_EQ(error_of(replace(kModel, "attention = \"gqa\"\n", "")).key(), "attention");
  EXPECT_EQ(error_of(replace(kModel, "active_params = 5e5\n", "")).key(), "quoted.active_params");
  const std::string no_quoted = kModel.substr(0, kModel.find("[quoted]"));
  EXPECT_EQ(error_of(no_quoted).key(), "quoted");
}

TEST(Models, WrongTypesAndValues) {
  const profile_error t = error_of(replace(kModel, "heads = 8", "heads = \"8\""));
  EXPECT_EQ(t.key(), "heads");
  EXPECT_NE(std::string(t.what()).find("expected an integer"), std::string::npos) << t.what();
  EXPECT_EQ(error_of(replace(kModel, "layers = 4", "layers = -4")).key(), "layers");
  EXPECT_EQ(error_of(replace(kModel, "total_params = 1e6", "total_params = 0")).key(), "quoted.total_params");
  EXPECT_EQ(error_of(replace(kModel, "name = \"Tiny\"", "name = \"\"")).key(), "name");
  EXPECT_EQ(error_of(kModel + "qk_norm = 1\n").key(), "quoted.qk_norm");  // after [quoted]: a key of that table
  EXPECT_EQ(error_of(replace(kModel, "vocab = 1000", "vocab = 1000\nqk_norm = 1")).key(), "qk_norm");
}

TEST(Models, UnknownEnumNamesListTheChoices) {
  const profile_error a = error_of(replace(kModel, "attention = \"gqa\"", "attention = \"mha\""));
  EXPECT_EQ(a.key(), "attention");
  EXPECT_NE(std::string(a.what()).find("gqa, mla"), std::string::npos) << a.what();
  const profile_error s = error_of(replace(kModel, "scoring = \"topk_softmax\"", "scoring = \"sigmoid\""));
  EXPECT_EQ(s.key(), "scoring");
  EXPECT_NE(std::string(s.what()).find("softmax_topk_renorm"), std::string::npos) << s.what();
  EXPECT_EQ(error_of(replace(kModel, "vocab = 1000", "vocab = 1000\nactivation = \"gelu\"")).key(), "activation");
}

TEST(Models, InconsistentShapes) {
  const profile_error h = error_of(replace(kModel, "kv_heads = 2", "kv_heads = 3"));
  EXPECT_EQ(h.key(), "kv_heads");
  EXPECT_NE(std::string(h.what()).find("does not divide heads = 8"), std::string::npos) << h.what();
  EXPECT_EQ(error_of(replace(kModel, "top_k = 2", "top_k = 9")).key(), "top_k");
  EXPECT_EQ(error_of(replace(kModel, "dense_layers = 1", "dense_layers = 5")).key(), "dense_layers");
  EXPECT_EQ(error_of(replace(kModel, "head_dim = 32\n", "")).key(), "head_dim");
  EXPECT_EQ(error_of(replace(kModel, "vocab = 1000", "vocab = 1000\nn_group = 3")).key(), "n_group");
  EXPECT_EQ(error_of(replace(kModel, "vocab = 1000", "vocab = 1000\nwindow = 128")).key(), "window");
  // MLA needs its latent shapes and one KV head.
  EXPECT_EQ(error_of(replace(kModel, "attention = \"gqa\"", "attention = \"mla\"")).key(), "kv_heads");
  const std::string mla = replace(replace(kModel, "attention = \"gqa\"", "attention = \"mla\""), "kv_heads = 2", "kv_heads = 1");
  EXPECT_EQ(error_of(mla).key(), "kv_lora_rank");
  // A dense model has every layer dense.
  const std::string dense = replace(replace(kModel, "experts = 8\ntop_k = 2\nexpert_inter = 128\n", ""), "scoring = \"topk_softmax\"\n", "");
  EXPECT_EQ(error_of(dense).key(), "dense_layers");
}

TEST(Models, BadTomlAndDirectories) {
  const profile_error p = error_of("name = \n");
  EXPECT_EQ(p.line(), 1);
  temp_dir d;
  EXPECT_THROW((void)load_models(d.path), std::invalid_argument);  // no *.toml
  EXPECT_THROW((void)load_models(d.path / "absent"), std::invalid_argument);
  d.write("a.toml", kModel);
  d.write("b.toml", replace(kModel, "hidden = 256", "hidden = 512"));
  d.write("notes.txt", "not a model");
  const auto ms = load_models(d.path);
  ASSERT_EQ(ms.size(), 2u);
  EXPECT_EQ(ms[0].slug, "a");
  EXPECT_EQ(ms[1].hidden, 512);
}

}  // namespace
}  // namespace infermark
