#include <gtest/gtest.h>

#include "bench/descriptor.hpp"
#include "bench/op.hpp"
#include "bench/suites.hpp"

namespace infermark {
namespace {

descriptor_spec test_spec() {
  return {"attn",
          "test op",
          {{"b", "batch"}, {"ctx", "context"}, {"hq", "query heads"}, {"bs", "block size", false, 16, 1, 1024}},
          {dtype::fp32, dtype::bf16},
          {{"route", "routing", {"uniform", "zipf"}, "uniform"}, {"seed", "seed", {}, "0"}}};
}

TEST(Descriptor, CanonicalStringRoundTripsExactly) {
  const auto spec = test_spec();
  for (const char* text : {"attn:b4ctx4096hq32:bf16", "attn:b1ctx1hq1bs64:fp32:route=zipf",
                           "attn:b2ctx3hq8:fp32:route=zipf:seed=7"}) {
    const auto d = parse_descriptor(spec, text);
    EXPECT_EQ(to_string(spec, d), text);
    EXPECT_EQ(parse_descriptor(spec, to_string(spec, d)), d);
  }
}

TEST(Descriptor, ParsesValuesAndDefaults) {
  const auto d = parse_descriptor(test_spec(), "attn:hq32ctx4096b4:bf16");
  EXPECT_EQ(d.at("b"), 4);
  EXPECT_EQ(d.at("ctx"), 4096);
  EXPECT_EQ(d.at("hq"), 32);
  EXPECT_EQ(d.at("bs"), 16);  // default filled in
  EXPECT_EQ(d.dt, dtype::bf16);
  EXPECT_EQ(d.option("route"), "uniform");
  // Any field order parses; printing is canonical.
  EXPECT_EQ(to_string(test_spec(), d), "attn:b4ctx4096hq32:bf16");
}

void expect_error(const std::string& text, const std::vector<std::string>& needles) {
  try {
    parse_descriptor(test_spec(), text);
    FAIL() << "no error for " << text;
  } catch (const descriptor_error& e) {
    for (const auto& n : needles) EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << e.what() << " lacks " << n;
  }
}

TEST(Descriptor, BadInputNamesTheTokenAndTheChoices) {
  expect_error("attn:b4ctx4096hq32x7:bf16", {"unknown field 'x'", "hq<query heads>"});
  expect_error("attn:b4ctx4096:bf16", {"missing required field 'hq'"});
  expect_error("attn:b4ctx4096hq32:fp16", {"'fp16'", "fp32, bf16"});
  expect_error("attn:b4ctx4096hq32:int8", {"'int8' is not valid", "fp32, bf16"});
  expect_error("attn:b0ctx4096hq32:fp32", {"'b' = 0 is out of range"});
  expect_error("attn:b4b5ctx1hq1:fp32", {"'b' given twice"});
  expect_error("attn:b4ctx4096hq32:fp32:route=skewed", {"'skewed'", "uniform, zipf"});
  expect_error("attn:b4ctx4096hq32:fp32:color=red", {"unknown option 'color=red'", "route=uniform|zipf"});
  expect_error("attn:b4ctx4096hq32:fp32:seed=-1", {"non-negative integer"});
  expect_error("attn:b4ctx4096hq32", {"expected attn:<shape>:<dtype>"});
  expect_error("attn:4b:fp32", {"malformed shape token"});
  expect_error("attn::fp32", {"empty shape"});
  expect_error("attn:b99999999999999999999ctx1hq1:fp32", {"out of range"});
}

TEST(Registry, GemmDescriptorRoundTripsAndUnknownOpIsNamed) {
  const auto d = parse("gemm:m256n2048k7168:bf16");
  EXPECT_EQ(d.at("m"), 256);
  EXPECT_EQ(d.at("n"), 2048);
  EXPECT_EQ(d.at("k"), 7168);
  EXPECT_EQ(to_string(d), "gemm:m256n2048k7168:bf16");
  EXPECT_EQ(to_string(parse("gemm:m1n2k3:fp32:cache=cold")), "gemm:m1n2k3:fp32:cache=cold");
  try {
    parse("conv:m1:fp32");
    FAIL();
  } catch (const descriptor_error& e) {
    EXPECT_NE(std::string(e.what()).find("unknown op 'conv'"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("gemm"), std::string::npos);
  }
}

TEST(Suites, EmbeddedSuitesParseAndUnknownSuiteListsChoices) {
  for (const auto& s : suite_names()) {
    const auto cases = load_suite(s.name);
    EXPECT_FALSE(cases.empty()) << s.name;
    for (const auto& c : cases) EXPECT_EQ(to_string(parse(c.descriptor)), c.descriptor);
  }
  try {
    load_suite("nosuch");
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("unknown suite 'nosuch'"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("quick, full, ci"), std::string::npos);
  }
}

TEST(Suites, FileErrorsNameFileAndLine) {
  const std::string path = ::testing::TempDir() + "/suite.txt";
  {
    FILE* f = std::fopen(path.c_str(), "w");
    std::fputs("# comment\ngemm:m1n2k3:fp32 @all\n\ngemm:m1n2q3:fp32\n", f);
    std::fclose(f);
  }
  try {
    load_suite(path);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(path + ":4:"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("unknown field 'q'"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace infermark
