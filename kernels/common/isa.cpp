#include "kernels/common/isa.hpp"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#define INFERMARK_X86_64 1
#endif
#if defined(INFERMARK_X86_64) && defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace infermark {
namespace {

#ifdef INFERMARK_X86_64
unsigned long long xgetbv0() {
  unsigned eax = 0, edx = 0;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<unsigned long long>(edx) << 32) | eax;
}
#endif

// Asks the kernel for the AMX tile data state (XFEATURE_XTILEDATA = 18); without it the first tile
// instruction kills the process. Granted once per process, for every thread.
bool amx_permission() {
#ifdef __linux__
  constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
  return false;
#endif
}

bool probe_amd() {
#ifdef INFERMARK_X86_64
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(0, &a, &b, &c, &d)) return false;
  char v[12];
  std::memcpy(v, &b, 4);  // the vendor string is EBX, EDX, ECX
  std::memcpy(v + 4, &d, 4);
  std::memcpy(v + 8, &c, 4);
  return std::string_view(v, 12) == "AuthenticAMD";
#else
  return false;
#endif
}

cpu_features probe_features() {
  cpu_features f;
#ifdef INFERMARK_X86_64
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = (c >> 27) & 1;
  const unsigned long long xcr0 = osxsave ? xgetbv0() : 0;
  const bool os_avx = (xcr0 & 0x6) == 0x6;          // XMM + YMM state
  const bool os_avx512 = (xcr0 & 0xe6) == 0xe6;     // + opmask, ZMM_Hi256, Hi16_ZMM
  f.fma = os_avx && ((c >> 12) & 1);
  f.f16c = os_avx && ((c >> 29) & 1);
  unsigned max_leaf = __get_cpuid_max(0, nullptr);
  if (max_leaf >= 7) {
    __cpuid_count(7, 0, a, b, c, d);
    f.avx2 = os_avx && ((b >> 5) & 1);
    f.avx512f = os_avx512 && ((b >> 16) & 1);
    f.avx512dq = os_avx512 && ((b >> 17) & 1);
    f.avx512bw = os_avx512 && ((b >> 30) & 1);
    f.avx512vl = os_avx512 && ((b >> 31) & 1);
    f.avx512_vnni = os_avx512 && ((c >> 11) & 1);
    f.avx512_vbmi = os_avx512 && ((c >> 1) & 1);
    f.gfni = os_avx512 && ((c >> 8) & 1);  // only its EVEX (zmm) form is used
    unsigned a1 = 0, b1 = 0, c1 = 0, d1 = 0;
    __cpuid_count(7, 1, a1, b1, c1, d1);
    f.avx512_bf16 = os_avx512 && ((a1 >> 5) & 1);
    // AMX: CPUID.7.0:EDX bit 24 tile, 22 bf16, 25 int8; XCR0 bits 17-18 (tile config and data) enabled
    // by the OS; on Linux the tile data state must also be requested once per process.
    const bool tile = ((d >> 24) & 1) && (xcr0 & 0x60000) == 0x60000 && os_avx512 && amx_permission();
    f.amx_bf16 = tile && ((d >> 22) & 1);
    f.amx_int8 = tile && ((d >> 25) & 1);
  }
#elif defined(__aarch64__)
  f.neon = true;  // Advanced SIMD is mandatory on AArch64.
#endif
  return f;
}

// -1: no explicit cap (fall back to the environment); otherwise an isa_level value.
std::atomic<int> g_cap{-1};

int env_cap() {
  static const int cap = [] {
    const char* v = std::getenv("INFERMARK_MAX_ISA");
    if (v == nullptr || *v == '\0') return -2;
    return static_cast<int>(parse_isa(v));  // throws on a bad value: a silent default would mislead
  }();
  return cap;
}

}  // namespace

const cpu_features& detected_features() {
  static const cpu_features f = probe_features();
  return f;
}

bool cpu_is_amd() {
  static const bool amd = probe_amd();
  return amd;
}

isa_level detected_isa() {
  const auto& f = detected_features();
  if (f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.fma) return f.amx_bf16 ? isa_level::amx : isa_level::avx512;
  if (f.avx2 && f.fma) return isa_level::avx2;
  if (f.neon) return isa_level::neon;
  return isa_level::generic;
}

isa_level effective_isa() {
  int cap = g_cap.load(std::memory_order_relaxed);
  if (cap < 0) cap = env_cap();
  const isa_level det = detected_isa();
  if (cap < 0) return det;
  // neon and the x86 levels are different families: a cap of avx2 on ARM means "generic" and a cap of
  // neon on x86 also means "generic".
  const auto capped = static_cast<isa_level>(cap);
  if (capped == isa_level::generic) return isa_level::generic;
  if ((det == isa_level::neon) != (capped == isa_level::neon)) return isa_level::generic;
  return static_cast<int>(det) <= cap ? det : capped;
}

cpu_features effective_features() {
  cpu_features f = detected_features();
  const isa_level e = effective_isa();
  if (e < isa_level::amx) f.amx_bf16 = f.amx_int8 = false;
  if (e < isa_level::avx512) {
    f.avx512f = f.avx512bw = f.avx512vl = f.avx512dq = f.avx512_bf16 = f.avx512_vnni = f.avx512_vbmi = f.gfni = false;
  }
  if (e < isa_level::avx2) f.avx2 = f.fma = f.f16c = false;
  if (e != isa_level::neon) f.neon = false;
  return f;
}

void set_max_isa(std::string_view name) { g_cap.store(static_cast<int>(parse_isa(name))); }
void clear_max_isa() { g_cap.store(-1); }

std::string_view to_string(isa_level level) {
  switch (level) {
    case isa_level::generic: return "generic";
    case isa_level::neon: return "neon";
    case isa_level::avx2: return "avx2";
    case isa_level::avx512: return "avx512";
    case isa_level::amx: return "amx";
  }
  return "unknown";
}

isa_level parse_isa(std::string_view name) {
  for (auto l : {isa_level::generic, isa_level::neon, isa_level::avx2, isa_level::avx512, isa_level::amx})
    if (name == to_string(l)) return l;
  throw std::invalid_argument("unknown ISA level '" + std::string(name) +
                              "'; valid choices: amx, avx512, avx2, neon, generic");
}

std::vector<isa_level> runnable_isas() {
  std::vector<isa_level> out{isa_level::generic};
  const isa_level det = detected_isa();
  if (det == isa_level::neon) out.push_back(isa_level::neon);
  if (det >= isa_level::avx2) out.push_back(isa_level::avx2);
  if (det >= isa_level::avx512) out.push_back(isa_level::avx512);
  if (det >= isa_level::amx) out.push_back(isa_level::amx);
  return out;
}

std::vector<std::string> feature_names(const cpu_features& f) {
  std::vector<std::string> out;
  auto add = [&](bool on, const char* n) { if (on) out.emplace_back(n); };
  add(f.fma, "fma");
  add(f.f16c, "f16c");
  add(f.avx2, "avx2");
  add(f.avx512f, "avx512f");
  add(f.avx512bw, "avx512bw");
  add(f.avx512vl, "avx512vl");
  add(f.avx512dq, "avx512dq");
  add(f.avx512_bf16, "avx512_bf16");
  add(f.avx512_vnni, "avx512_vnni");
  add(f.avx512_vbmi, "avx512_vbmi");
  add(f.gfni, "gfni");
  add(f.amx_bf16, "amx_bf16");
  add(f.amx_int8, "amx_int8");
  add(f.neon, "neon");
  return out;
}

scoped_isa_cap::scoped_isa_cap(isa_level level) : previous_(g_cap.load()) {
  g_cap.store(static_cast<int>(level));
}
scoped_isa_cap::~scoped_isa_cap() { g_cap.store(previous_); }

}  // namespace infermark
