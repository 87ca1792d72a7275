// bf16 / int8 / fp8 GEMM implementations: check()/pack() (baseline code) and the generic microkernels
// that compile everywhere. The AVX-512 and AVX2 microkernels live in gemm_lowp_<isa>.cpp.
#include <algorithm>
#include <string>

#include "kernels/common/isa.hpp"
#include "kernels/gemm/gemm_driver.hpp"
#include "kernels/gemm/gemm_kernels.hpp"

namespace infermark::gemm_detail {
namespace {

template <lowp_layout L>
std::size_t lowp_bytes(const gemm_desc& d) {
  const std::int64_t panels = ceil_div(d.n, L.nr);
  const std::int64_t elems = panels * L.nr * ceil_div(d.k, L.group) * L.group;
  return static_cast<std::size_t>(elems) * dtype_size(d.dt) +
         (L.comp ? static_cast<std::size_t>(panels * L.nr) * sizeof(std::int32_t) : 0) +
         (L.subnormal_blocks ? static_cast<std::size_t>(panels * ceil_div(d.k, gemm_fp8_block)) : 0);
}

// Weights wei[n][k] (1- or 2-byte elements) into the lowp_layout; zero padding; int8 compensation.
template <lowp_layout L, class T>
void lowp_pack_typed(const gemm_desc& d, const T* wei, T* out) {
  static_assert(!L.unpack_order || (L.nr == 64 && L.group == 2), "unpack order is for rows of 64 x 2");
  const std::int64_t panels = ceil_div(d.n, L.nr), kg = ceil_div(d.k, L.group);
  for (std::int64_t jp = 0; jp < panels; ++jp) {
    T* panel = out + lowp_offset(d, L.nr, L.group, jp, 0);
    for (std::int64_t q = 0; q < kg; ++q)
      for (std::int64_t r = 0; r < L.nr; ++r)
        for (std::int64_t g = 0; g < L.group; ++g) {
          const std::int64_t j = jp * L.nr + r, p = q * L.group + g;
          const std::int64_t s = r * L.group + g;
          panel[q * L.nr * L.group + (L.unpack_order ? lowp_unpack_pos(s) : s)] =
              (j < d.n && p < d.k) ? wei[j * d.k + p] : T{};
        }
  }
  if constexpr (L.comp) {
    // vpdpbusd multiplies unsigned by signed bytes, so kernels feed src + 128; this is the excess.
    auto* comp = reinterpret_cast<std::int32_t*>(out + panels * L.nr * kg * L.group);
    for (std::int64_t j = 0; j < panels * L.nr; ++j) {
      std::int32_t s = 0;
      if (j < d.n)
        for (std::int64_t p = 0; p < d.k; ++p) s += 128 * static_cast<std::int32_t>(wei[j * d.k + p]);
      std::memcpy(comp + j, &s, sizeof s);
    }
  }
}

// The subnormal_blocks flags of a packed fp8 buffer (see lowp_layout).
template <lowp_layout L>
void lowp_subnormal_blocks(const gemm_desc& d, fp8_t* out) {
  static_assert(L.nr == 64 && L.group == 2 && gemm_fp8_block == 2 * 64, "a flag covers one k block of 64 rows");
  const std::int64_t panels = ceil_div(d.n, L.nr), kg = ceil_div(d.k, L.group), kb = ceil_div(d.k, gemm_fp8_block);
  constexpr std::int64_t row_bytes = L.nr * L.group;
  std::uint8_t* flags = out + lowp_offset(d, L.nr, L.group, panels, 0);  // after the panels
  for (std::int64_t jp = 0; jp < panels; ++jp) {
    const fp8_t* panel = out + lowp_offset(d, L.nr, L.group, jp, 0);
    for (std::int64_t b = 0; b < kb; ++b) {
      const fp8_t* first = panel + b * 64 * row_bytes;
      const fp8_t* last = panel + std::min(kg, (b + 1) * 64) * row_bytes;
      flags[jp * kb + b] = std::any_of(first, last, fp8_is_subnormal) ? 1 : 0;
    }
  }
}

template <lowp_layout L>
void lowp_pack(const gemm_desc& d, const void* wei, void* packed) {
  if (d.dt == dtype::bf16)
    lowp_pack_typed<L>(d, static_cast<const bf16_t*>(wei), static_cast<bf16_t*>(packed));
  else if (d.dt == dtype::int8)
    lowp_pack_typed<L>(d, static_cast<const std::int8_t*>(wei), static_cast<std::int8_t*>(packed));
  else {
    lowp_pack_typed<L>(d, static_cast<const fp8_t*>(wei), static_cast<fp8_t*>(packed));
    if constexpr (L.subnormal_blocks) lowp_subnormal_blocks<L>(d, static_cast<fp8_t*>(packed));
  }
}

// Generic microkernels: 4 rows x 8 columns of plain C++; the source is packed as fp32 (bf16, fp8) or
// int32 (int8) so the inner loop is a multiply-add the compiler can vectorise.
template <dtype DT>
struct lowp_generic {
  using b_t = std::conditional_t<DT == dtype::bf16, bf16_t, std::conditional_t<DT == dtype::int8, std::int8_t, fp8_t>>;
  using a_t = std::conditional_t<DT == dtype::int8, std::int32_t, float>;
  using acc_t = a_t;
  static constexpr std::int64_t MR = 4, NR = lowp_generic_layout.nr;
  static constexpr std::int64_t KC = DT == dtype::fp8 ? fp8_kc : 256;
  static constexpr std::int64_t MC = 128;
  static constexpr bool packs_a = true;
  static std::int64_t a_panel_elems(std::int64_t kc) { return MR * kc; }
  static std::int64_t b_panel_bytes(std::int64_t kc) { return kc * NR * static_cast<std::int64_t>(sizeof(b_t)); }

  static a_t cvt(b_t v) {
    if constexpr (DT == dtype::bf16) return bf16_to_f32(v);
    else if constexpr (DT == dtype::int8) return v;
    else return fp8_to_f32_fast(v);
  }
  static void pack_a(const gemm_desc& d, const gemm_args& a, std::int64_t i0, std::int64_t mc,
                     std::int64_t p0, std::int64_t kc, a_t* buf) {
    const auto* src = static_cast<const b_t*>(a.src);
    for (std::int64_t ir = 0; ir < mc; ir += MR) {
      const std::int64_t mr = std::min(MR, mc - ir);
      a_t* out = buf + ir * kc;
      for (std::int64_t i = 0; i < MR; ++i)
        for (std::int64_t p = 0; p < kc; ++p)
          out[p * MR + i] = i < mr ? cvt(src[(i0 + ir + i) * d.k + p0 + p]) : a_t{};
    }
  }
  static const b_t* b_panel(const gemm_desc& d, const void* packed, std::int64_t jp, std::int64_t p0) {
    return static_cast<const b_t*>(packed) + lowp_offset(d, NR, 1, jp, p0);
  }

  static void ukr(int mr, std::int64_t kc, const a_t* a, const b_t* b, float* c, std::int64_t ldc, int nr,
                  const gemm_desc& d, const gemm_args& args, const tile_pos& t) {
    acc_t acc[MR][NR] = {};
    for (std::int64_t p = 0; p < kc; ++p) {
      a_t bv[NR];
      for (int j = 0; j < NR; ++j) bv[j] = cvt(b[j]);
      for (int i = 0; i < MR; ++i)
        for (int j = 0; j < NR; ++j) acc[i][j] += a[i] * bv[j];
      a += MR;
      b += NR;
    }
    for (int i = 0; i < mr; ++i)
      for (int j = 0; j < nr; ++j) {
        float* out = c + i * ldc + j;
        if constexpr (DT == dtype::bf16) {
          *out = t.first ? acc[i][j] : *out + acc[i][j];
        } else if constexpr (DT == dtype::fp8) {
          const std::int64_t kb = ceil_div(d.k, gemm_fp8_block), b_idx = t.p0 / gemm_fp8_block;
          const float s = args.src_scale[(t.i0 + i) * kb + b_idx] * args.wei_scale[((t.j0 + j) / gemm_fp8_block) * kb + b_idx];
          *out = t.first ? acc[i][j] * s : *out + acc[i][j] * s;
        } else {
          // Partial int32 sums live in dst between k blocks (same size as the float result).
          std::int32_t sum = acc[i][j];
          if (!t.first) {
            std::int32_t prev;
            std::memcpy(&prev, out, 4);
            sum += prev;
          }
          if (t.last) *out = static_cast<float>(sum) * args.src_scale[t.i0 + i] * args.wei_scale[t.j0 + j];
          else std::memcpy(out, &sum, 4);
        }
      }
  }
};

template <dtype DT>
void generic_execute(const gemm_desc& d, const gemm_args& a, int ithr, int nthr) {
  drive<lowp_generic<DT>>(d, a, ithr, nthr);
}
template <dtype DT>
std::size_t generic_workspace(const gemm_desc& d, int nthr) {
  return drive_workspace<lowp_generic<DT>>(d, nthr);
}

std::optional<std::string> needs(const gemm_desc& d, const char* impl, dtype dt, isa_level level,
                                 bool feature, const char* feature_name) {
  if (d.dt != dt)
    return std::string(impl) + " computes " + std::string(to_string(dt)) + " only, not " +
           std::string(to_string(d.dt));
  if (effective_isa() < level)
    return std::string(impl) + " needs ISA " + std::string(to_string(level)) + ", effective ISA is " +
           std::string(to_string(effective_isa()));
  if (!feature) return std::string(impl) + " needs the CPU feature " + feature_name + " (absent or capped)";
  return std::nullopt;
}

}  // namespace

#if defined(__x86_64__) || defined(_M_X64)
// The AMX kernels read the AVX-512 kernels' packed panels (same layout, same packing); up to two rows they
// run the AVX-512 microkernels, so fp8 needs VBMI and GFNI as avx512:fp8 does.
const gemm_impl bf16_amx_impl{
    "amx:bf16",
    [](const gemm_desc& d) { return needs(d, "amx:bf16", dtype::bf16, isa_level::amx, effective_features().amx_bf16, "amx_bf16"); },
    lowp_bytes<bf16_avx512_layout>, lowp_pack<bf16_avx512_layout>, bf16_execute_amx, bf16_workspace_amx};
const gemm_impl int8_amx_impl{
    "amx:int8",
    [](const gemm_desc& d) { return needs(d, "amx:int8", dtype::int8, isa_level::amx, effective_features().amx_int8, "amx_int8"); },
    lowp_bytes<int8_avx512_layout>, lowp_pack<int8_avx512_layout>, int8_execute_amx, int8_workspace_amx};
const gemm_impl fp8_amx_impl{
    "amx:fp8",
    [](const gemm_desc& d) {
      const cpu_features f = effective_features();
      return needs(d, "amx:fp8", dtype::fp8, isa_level::amx, f.amx_bf16 && f.avx512_vbmi && f.gfni,
                   "amx_bf16, avx512_vbmi and gfni");
    },
    lowp_bytes<fp8_avx512_layout>, lowp_pack<fp8_avx512_layout>, fp8_execute_amx, fp8_workspace_amx};
const gemm_impl bf16_avx512_impl{
    "avx512:bf16",
    [](const gemm_desc& d) {
      return needs(d, "avx512:bf16", dtype::bf16, isa_level::avx512, effective_features().avx512_bf16, "avx512_bf16");
    },
    lowp_bytes<bf16_avx512_layout>, lowp_pack<bf16_avx512_layout>, bf16_execute_avx512, bf16_workspace_avx512};
const gemm_impl int8_avx512_impl{
    "avx512:int8",
    [](const gemm_desc& d) {
      return needs(d, "avx512:int8", dtype::int8, isa_level::avx512, effective_features().avx512_vnni, "avx512_vnni");
    },
    lowp_bytes<int8_avx512_layout>, lowp_pack<int8_avx512_layout>, int8_execute_avx512, int8_workspace_avx512};
const gemm_impl fp8_avx512_impl{
    "avx512:fp8",
    [](const gemm_desc& d) {
      const cpu_features f = effective_features();
      return needs(d, "avx512:fp8", dtype::fp8, isa_level::avx512, f.avx512_bf16 && f.avx512_vbmi && f.gfni,
                   "avx512_bf16, avx512_vbmi and gfni");
    },
    lowp_bytes<fp8_avx512_layout>, lowp_pack<fp8_avx512_layout>, fp8_execute_avx512, fp8_workspace_avx512};
const gemm_impl fp8_fma_avx512_impl{
    "avx512:fp8-fma",
    [](const gemm_desc& d) { return needs(d, "avx512:fp8-fma", dtype::fp8, isa_level::avx512, true, ""); },
    lowp_bytes<fp8_fma_avx512_layout>, lowp_pack<fp8_fma_avx512_layout>, fp8_fma_execute_avx512,
    fp8_fma_workspace_avx512};
const gemm_impl bf16_avx2_impl{
    "avx2:bf16", [](const gemm_desc& d) { return needs(d, "avx2:bf16", dtype::bf16, isa_level::avx2, true, ""); },
    lowp_bytes<bf16_avx2_layout>, lowp_pack<bf16_avx2_layout>, bf16_execute_avx2, bf16_workspace_avx2};
const gemm_impl int8_avx2_impl{
    "avx2:int8", [](const gemm_desc& d) { return needs(d, "avx2:int8", dtype::int8, isa_level::avx2, true, ""); },
    lowp_bytes<int8_avx2_layout>, lowp_pack<int8_avx2_layout>, int8_execute_avx2, int8_workspace_avx2};
const gemm_impl fp8_avx2_impl{
    "avx2:fp8", [](const gemm_desc& d) { return needs(d, "avx2:fp8", dtype::fp8, isa_level::avx2, true, ""); },
    lowp_bytes<fp8_avx2_layout>, lowp_pack<fp8_avx2_layout>, fp8_execute_avx2, fp8_workspace_avx2};
#endif
const gemm_impl bf16_generic_impl{
    "generic:bf16",
    [](const gemm_desc& d) { return needs(d, "generic:bf16", dtype::bf16, isa_level::generic, true, ""); },
    lowp_bytes<lowp_generic_layout>, lowp_pack<lowp_generic_layout>, generic_execute<dtype::bf16>, generic_workspace<dtype::bf16>};
const gemm_impl int8_generic_impl{
    "generic:int8",
    [](const gemm_desc& d) { return needs(d, "generic:int8", dtype::int8, isa_level::generic, true, ""); },
    lowp_bytes<lowp_generic_layout>, lowp_pack<lowp_generic_layout>, generic_execute<dtype::int8>, generic_workspace<dtype::int8>};
const gemm_impl fp8_generic_impl{
    "generic:fp8",
    [](const gemm_desc& d) { return needs(d, "generic:fp8", dtype::fp8, isa_level::generic, true, ""); },
    lowp_bytes<lowp_generic_layout>, lowp_pack<lowp_generic_layout>, generic_execute<dtype::fp8>, generic_workspace<dtype::fp8>};

}  // namespace infermark::gemm_detail
