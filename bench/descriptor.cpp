#include "bench/descriptor.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <charconv>

namespace infermark {
namespace {

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  for (;;) {
    const auto pos = s.find(sep, start);
    out.push_back(s.substr(start, pos == std::string_view::npos ? std::string_view::npos : pos - start));
    if (pos == std::string_view::npos) break;
    start = pos + 1;
  }
  return out;
}

std::string field_names(const descriptor_spec& spec) {
  std::vector<std::string> names;
  for (const auto& f : spec.fields) names.push_back(f.name + "<" + f.help + ">");
  return fmt::format("{}", fmt::join(names, ", "));
}

std::string dtype_names(const descriptor_spec& spec) {
  std::vector<std::string> names;
  for (auto dt : spec.dtypes) names.emplace_back(to_string(dt));
  return fmt::format("{}", fmt::join(names, ", "));
}

std::string option_names(const descriptor_spec& spec) {
  std::vector<std::string> names;
  for (const auto& o : spec.options)
    names.push_back(o.choices.empty() ? o.name + "=<integer>"
                                      : fmt::format("{}={}", o.name, fmt::join(o.choices, "|")));
  return names.empty() ? "none" : fmt::format("{}", fmt::join(names, ", "));
}

void parse_shape(const descriptor_spec& spec, std::string_view text, std::string_view shape,
                 descriptor& d) {
  if (shape.empty())
    throw descriptor_error(fmt::format("descriptor '{}': empty shape; {} takes fields {}", text, spec.op,
                                       field_names(spec)));
  std::size_t i = 0;
  while (i < shape.size()) {
    const std::size_t name_begin = i;
    while (i < shape.size() && std::islower(static_cast<unsigned char>(shape[i]))) ++i;
    const std::string_view name = shape.substr(name_begin, i - name_begin);
    const std::size_t num_begin = i;
    while (i < shape.size() && std::isdigit(static_cast<unsigned char>(shape[i]))) ++i;
    const std::string_view num = shape.substr(num_begin, i - num_begin);
    const std::string token(shape.substr(name_begin, i - name_begin));
    if (name.empty() || num.empty()) {
      const std::string bad(shape.substr(name_begin, std::max<std::size_t>(i - name_begin, 1)));
      throw descriptor_error(fmt::format(
          "descriptor '{}': malformed shape token '{}' (expected <name><integer>); {} takes fields {}", text,
          bad, spec.op, field_names(spec)));
    }
    const auto it = std::find_if(spec.fields.begin(), spec.fields.end(),
                                 [&](const field_spec& f) { return f.name == name; });
    if (it == spec.fields.end())
      throw descriptor_error(fmt::format("descriptor '{}': unknown field '{}' in '{}'; {} takes fields {}",
                                         text, name, token, spec.op, field_names(spec)));
    if (d.fields.count(it->name) != 0)
      throw descriptor_error(fmt::format("descriptor '{}': field '{}' given twice", text, name));
    std::int64_t value = 0;
    const auto res = std::from_chars(num.data(), num.data() + num.size(), value);
    if (res.ec != std::errc() || value < it->min || value > it->max)
      throw descriptor_error(fmt::format("descriptor '{}': field '{}' = {} is out of range; valid: {}..{} ({})",
                                         text, name, num, it->min, it->max, it->help));
    d.fields[it->name] = value;
  }
  for (const auto& f : spec.fields) {
    if (d.fields.count(f.name) != 0) continue;
    if (f.required)
      throw descriptor_error(fmt::format("descriptor '{}': missing required field '{}' ({}); {} takes fields {}",
                                         text, f.name, f.help, spec.op, field_names(spec)));
    d.fields[f.name] = f.def;
  }
}

void parse_option(const descriptor_spec& spec, std::string_view text, std::string_view section,
                  descriptor& d) {
  const auto eq = section.find('=');
  const std::string name(section.substr(0, eq));
  const auto it = std::find_if(spec.options.begin(), spec.options.end(),
                               [&](const option_spec& o) { return o.name == name; });
  if (eq == std::string_view::npos || it == spec.options.end())
    throw descriptor_error(fmt::format("descriptor '{}': unknown option '{}'; {} takes options {}", text,
                                       section, spec.op, option_names(spec)));
  const std::string value(section.substr(eq + 1));
  if (it->choices.empty()) {
    std::int64_t v = 0;
    const auto res = std::from_chars(value.data(), value.data() + value.size(), v);
    if (value.empty() || res.ec != std::errc() || res.ptr != value.data() + value.size() || v < 0)
      throw descriptor_error(fmt::format("descriptor '{}': option '{}' needs a non-negative integer, not '{}'",
                                         text, name, value));
  } else if (std::find(it->choices.begin(), it->choices.end(), value) == it->choices.end()) {
    throw descriptor_error(fmt::format("descriptor '{}': option '{}' has no value '{}'; valid choices: {}", text,
                                       name, value, fmt::join(it->choices, ", ")));
  }
  if (d.options.count(name) != 0)
    throw descriptor_error(fmt::format("descriptor '{}': option '{}' given twice", text, name));
  d.options[name] = value;
}

}  // namespace

std::int64_t descriptor::at(const std::string& field) const {
  const auto it = fields.find(field);
  if (it == fields.end()) throw std::out_of_range("descriptor of " + op + " has no field '" + field + "'");
  return it->second;
}

const std::string& descriptor::option(const std::string& name) const {
  const auto it = options.find(name);
  if (it == options.end()) throw std::out_of_range("descriptor of " + op + " has no option '" + name + "'");
  return it->second;
}

std::string_view descriptor_op(std::string_view text) { return text.substr(0, text.find(':')); }

descriptor parse_descriptor(const descriptor_spec& spec, std::string_view text) {
  const auto sections = split(text, ':');
  if (sections[0] != spec.op)
    throw descriptor_error(fmt::format("descriptor '{}' is not a {} descriptor", text, spec.op));
  if (sections.size() < 3)
    throw descriptor_error(fmt::format(
        "descriptor '{}': expected {}:<shape>:<dtype>[:option=value...]; shape fields {}; dtypes {}", text,
        spec.op, field_names(spec), dtype_names(spec)));
  descriptor d;
  d.op = spec.op;
  parse_shape(spec, text, sections[1], d);
  try {
    d.dt = parse_dtype(sections[2]);
  } catch (const std::invalid_argument&) {
    throw descriptor_error(fmt::format("descriptor '{}': unknown data type '{}'; {} supports {}", text,
                                       sections[2], spec.op, dtype_names(spec)));
  }
  if (std::find(spec.dtypes.begin(), spec.dtypes.end(), d.dt) == spec.dtypes.end())
    throw descriptor_error(fmt::format("descriptor '{}': data type '{}' is not valid for {}; valid choices: {}",
                                       text, sections[2], spec.op, dtype_names(spec)));
  for (std::size_t s = 3; s < sections.size(); ++s) parse_option(spec, text, sections[s], d);
  for (const auto& o : spec.options)
    if (d.options.count(o.name) == 0) d.options[o.name] = o.def;
  return d;
}

std::string to_string(const descriptor_spec& spec, const descriptor& d) {
  std::string out = spec.op + ":";
  for (const auto& f : spec.fields) {
    const std::int64_t v = d.at(f.name);
    if (!f.required && v == f.def) continue;
    out += fmt::format("{}{}", f.name, v);
  }
  out += ":";
  out += to_string(d.dt);
  for (const auto& o : spec.options) {
    const auto& v = d.option(o.name);
    if (v == o.def) continue;
    out += fmt::format(":{}={}", o.name, v);
  }
  return out;
}

}  // namespace infermark
