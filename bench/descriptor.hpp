// Problem descriptors: compact strings that parse to a struct and print back identically (benchdnn
// style). Form: <op>:<shape>:<dtype>[:<option>=<value>...], e.g. "gemm:m256n2048k7168:bf16" or
// "moe:t64e256k8h7168i2048:fp8:route=zipf". The shape is a run of <name><integer> fields; each op's spec
// lists its fields (printed in spec order), dtypes and options. Parsing accepts fields in any order;
// printing is canonical, so a canonical string round-trips exactly.
#pragma once
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/common/dtype.hpp"

namespace infermark {

// Thrown for any malformed or invalid descriptor; the message names the bad token and the choices.
class descriptor_error : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

struct field_spec {
  std::string name;          // lower-case letters, e.g. "m", "ctx", "hq"
  std::string help;          // what it means, with unit
  bool required = true;
  std::int64_t def = 0;      // used when not required and absent; not printed when equal
  std::int64_t min = 1;
  std::int64_t max = INT64_C(1) << 40;
};

struct option_spec {
  std::string name;                  // e.g. "route"
  std::string help;
  std::vector<std::string> choices;  // empty: any non-negative integer
  std::string def;                   // not printed when equal
};

struct descriptor_spec {
  std::string op;
  std::string help;
  std::vector<field_spec> fields;
  std::vector<dtype> dtypes;
  std::vector<option_spec> options;
};

struct descriptor {
  std::string op;
  std::map<std::string, std::int64_t> fields;   // every field of the spec, defaults filled in
  dtype dt = dtype::fp32;
  std::map<std::string, std::string> options;   // every option of the spec, defaults filled in

  std::int64_t at(const std::string& field) const;
  const std::string& option(const std::string& name) const;
  bool operator==(const descriptor&) const = default;
};

// Parses `text` against `spec` (whose op must match the text's first section).
descriptor parse_descriptor(const descriptor_spec& spec, std::string_view text);
// Canonical string.
std::string to_string(const descriptor_spec& spec, const descriptor& d);
// The op name of a descriptor string (text before the first ':').
std::string_view descriptor_op(std::string_view text);

}  // namespace infermark
