// Run-time ISA detection and the ISA cap (INFERMARK_MAX_ISA).
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace infermark {

// Ordered ISA levels: a kernel variant for level L runs on any CPU whose effective level is >= L.
// `avx512` means AVX-512 F/BW/VL/DQ + FMA; BF16 and VNNI are separate features below. `amx` is avx512
// plus the AMX tile unit with bf16 tile products (Sapphire Rapids and later) and the operating system's
// permission to use the tile state (Linux: arch_prctl ARCH_REQ_XCOMP_PERM, requested at detection).
enum class isa_level { generic = 0, neon = 1, avx2 = 2, avx512 = 3, amx = 4 };

struct cpu_features {
  bool fma = false, f16c = false, avx2 = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false;
  bool avx512_bf16 = false;  // vdpbf16ps
  bool avx512_vnni = false;  // vpdpbusd
  bool avx512_vbmi = false;  // vpermb / vpermi2b (byte table lookups)
  bool gfni = false;         // gf2p8affineqb (bit-matrix byte transforms; used in its AVX-512 form)
  bool amx_bf16 = false;     // tdpbf16ps (tile unit usable: CPU, XCR0 and OS permission)
  bool amx_int8 = false;     // tdpbssd and friends
  bool neon = false;
};

// What the CPU supports, ignoring any cap.
const cpu_features& detected_features();
// CPUID vendor "AuthenticAMD" (false elsewhere, and off x86): for tuning choices measured to differ
// between AMD and Intel cores, never for correctness.
bool cpu_is_amd();
// The best level the CPU can run, ignoring any cap.
isa_level detected_isa();
// The level kernels dispatch to: min(detected, cap). The cap comes from set_max_isa() if called, else
// from the environment variable INFERMARK_MAX_ISA (amx|avx512|avx2|neon|generic), else none.
isa_level effective_isa();
// Features usable under the cap (e.g. avx512_bf16 is false when capped to avx2).
cpu_features effective_features();

// Caps dispatch (tests, instruction-count runs). Throws std::invalid_argument naming the valid choices.
void set_max_isa(std::string_view name);
void clear_max_isa();

std::string_view to_string(isa_level level);
// Parses a level name; throws std::invalid_argument listing the valid choices.
isa_level parse_isa(std::string_view name);
// Levels this CPU can run, lowest first (what tests iterate over).
std::vector<isa_level> runnable_isas();
// ISA extensions detected, as names ("avx2", "fma", "avx512f", "avx512_bf16", ...).
std::vector<std::string> feature_names(const cpu_features& f);

// RAII cap for tests: caps to `level` for its lifetime, restores the previous cap after.
class scoped_isa_cap {
 public:
  explicit scoped_isa_cap(isa_level level);
  ~scoped_isa_cap();
  scoped_isa_cap(const scoped_isa_cap&) = delete;
  scoped_isa_cap& operator=(const scoped_isa_cap&) = delete;

 private:
  int previous_;
};

}  // namespace infermark
