// Hardware profiles: chips and systems read from profiles/{chips,systems}/*.toml, plus the host built
// from `infermark probe`. Every numeric figure carries its unit, source and confidence grade; figures
// without a public source are listed as unknown, and asking for one throws not_estimable. See
// profiles/README.md for the file schema.
#pragma once
#include <array>
#include <filesystem>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace infermark {

// How much to trust a figure. `measured` is reserved for infermark's own measurements (the host).
enum class confidence { vendor, paper, third_party, community, rumor, measured };
std::string_view to_string(confidence c);
// Accepts "vendor", "paper", "third-party", "community", "rumor", "measured"; throws
// std::invalid_argument naming the bad value and the valid choices.
confidence parse_confidence(std::string_view name);

// One source's value for a figure.
struct sourced_value {
  double value = 0;        // > 0, in `unit`
  std::string unit;        // fixed per field by the schema (e.g. "TB/s" for memory.bandwidth)
  std::string source;      // where the value comes from (URL, document, section)
  confidence grade = confidence::vendor;
  std::string notes;       // optional
};

// A figure: the chosen value plus other sources' values for the same field.
struct figure : sourced_value {
  std::vector<sourced_value> alternatives;
  std::string origin;      // "file:line" of the figure's table, for messages
};

// The profile data directory: chips/, systems/ (profile_db::load), calibration/ (load_calibration,
// load_overheads) and models/ (known_models). $INFERMARK_PROFILES_DIR when set and non-empty, else the
// source tree's profiles/ (compiled in); the CLI's --profiles-dir replaces it with set_profiles_dir before
// any command runs. Nothing checks the directory until a loader reads it.
const std::filesystem::path& profiles_dir();
void set_profiles_dir(std::filesystem::path dir);
// $INFERMARK_PROFILES_DIR when set and non-empty, else the compiled-in source directory.
std::filesystem::path default_profiles_dir();

// Malformed profile or calibration file. what(): "<file>:<line>: key '<key>': <problem>".
class profile_error : public std::invalid_argument {
 public:
  profile_error(std::string file, int line, std::string key, const std::string& problem);
  const std::string& file() const { return file_; }
  int line() const { return line_; }
  const std::string& key() const { return key_; }

 private:
  std::string file_;
  int line_;
  std::string key_;
};

// An estimate needs a figure the profile does not have. what(): "not estimable: <slug>: <field> is
// unknown (<reason>)".
class not_estimable : public std::runtime_error {
 public:
  not_estimable(const std::string& slug, const std::string& field, const std::string& reason);
  const std::string& field() const { return field_; }
  const std::string& reason() const { return reason_; }

 private:
  std::string field_;
  std::string reason_;
};

enum class profile_kind { chip, system, host };
std::string_view to_string(profile_kind k);

// Dense peak dtypes a chip profile accounts for (each: a figure, `peak.unsupported`, or unknown).
inline constexpr std::array<std::string_view, 7> peak_dtypes = {"fp32", "tf32", "bf16", "fp16",
                                                                 "fp8",  "int8", "fp4"};

struct profile {
  std::string slug;                 // file stem, lower-case
  profile_kind kind = profile_kind::chip;
  std::filesystem::path file;       // empty for the host
  std::string vendor;
  std::string name;
  std::optional<int> year;          // launch year; nullopt when unknown
  bool speculative = false;         // rumoured product (B30A): every figure is a rumour or estimate
  std::string notes;
  // Descriptive strings: process_node, form_factor, memory.type, scale_up.technology,
  // scale_out.technology, host (systems).
  std::map<std::string, std::string> text;
  // Figures by dotted key: peak.<dtype> (TFLOPS; int8 TOPS), memory.capacity (GB), memory.bandwidth
  // (TB/s), power.tdp (W), scale_up.bandwidth (GB/s one way), scale_up.domain (devices),
  // scale_out.bandwidth (GB/s one way); systems: power.all_in (kW), scale_up.domain, totals.* .
  std::map<std::string, figure> figures;
  std::map<std::string, std::string> unknown;  // dotted key -> why no figure exists
  std::vector<std::string> unsupported;        // peak dtypes the chip has no unit for
  std::string chip;                            // systems: slug of the chip profile
  int count = 0;                               // systems: chips per system

  bool has(std::string_view key) const { return figures.find(std::string(key)) != figures.end(); }
  // The figure for `key`; throws not_estimable with the recorded reason when it is unknown or absent.
  const figure& at(std::string_view key) const;
  // Dense peak of `dtype` in TFLOPS (TOPS for int8); nullopt when the chip has no such unit; throws
  // not_estimable when the figure is unknown, std::invalid_argument for a dtype outside peak_dtypes.
  std::optional<double> peak(std::string_view dtype) const;
  // Every field with its value or unknown reason, each figure with unit, source, confidence, notes and
  // alternatives.
  nlohmann::json to_json() const;
};

// Parses one profile file; `slug` defaults to the file stem. Throws profile_error (file, line, key) on
// syntax errors, unknown keys, missing required fields, wrong units, values <= 0, figures without a
// source or confidence, and a `kind` other than `expected` (when given).
profile load_profile(const std::filesystem::path& file,
                     std::optional<profile_kind> expected = std::nullopt);

// The host profile from a JSON object shaped like probe_result::to_json(): peak_gflops.{fp32,bf16,int8}
// (GFLOP/s, null = unsupported) and bandwidth_gbs.read (GB/s). Throws std::invalid_argument when fp32
// or the read bandwidth is missing or not positive.
profile make_host_profile(const nlohmann::json& probe);

// A system total computed as chip figure x count, beside the system's own published figure.
struct system_total {
  std::string key;                    // chip key, e.g. "peak.bf16", "memory.bandwidth"
  double computed = 0;                // chip value x count, in `unit`
  std::string unit;                   // PFLOPS / POPS / TB / TB/s
  std::optional<figure> published;    // totals.<key> from the system file, when it has one
};
// Totals for every chip figure that scales with count (peaks, memory capacity and bandwidth, scale-up
// bandwidth); keys whose chip figure is unknown are skipped.
std::vector<system_total> system_totals(const profile& system, const profile& chip);

class profile_db {
 public:
  // Loads dir/chips/*.toml and dir/systems/*.toml; checks every system's chip exists.
  static profile_db load(const std::filesystem::path& dir);

  // Adds a profile (e.g. the host); throws std::invalid_argument on a duplicate slug.
  void add(profile p);
  std::vector<std::string> slugs() const;  // sorted
  const profile* find(std::string_view slug) const;
  // Throws std::invalid_argument naming the bad slug and listing the valid ones.
  const profile& get(std::string_view slug) const;
  // A system's chip profile; a chip or host resolves to itself.
  const profile& chip_of(const profile& p) const;
  // `infermark profiles show NAME`: the profile's JSON; systems add "chip_profile" and "totals".
  nlohmann::json show(std::string_view slug) const;

 private:
  std::map<std::string, profile, std::less<>> profiles_;
};

}  // namespace infermark
