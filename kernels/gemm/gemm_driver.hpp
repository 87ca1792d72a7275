// The blocked GEMM driver (BLIS-style loop nest), written once and instantiated per microkernel.
//
// Loop nest for one worker (its share of rows [m0, m1) and weight panels [jp0, jp1)):
//   for each k block of KC          (the packed B micro-panel KC x NR stays in L1 across the row loop)
//     for each row block of MC      (src rows packed once into MR-row micro-panels: MC x KC in L2)
//       for each weight panel of NR (B micro-panel: streamed from memory / L3 once per row block)
//         for each MR rows          (microkernel: MR x NR accumulators in registers over kc)
// The reduction over k is never split between workers and its order depends only on KC, so every
// thread count gives bit-identical results.
//
// Everything here has internal linkage (anonymous namespace): each ISA's translation unit includes this
// header and gets its own copy compiled with its own flags, so no AVX-512 code can leak into a baseline
// caller through a shared inline function (ODR merging of COMDATs).
#pragma once
#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/gemm/gemm.hpp"

// Dispatches the run-time row count of a tail tile to the compile-time tile<mr> (microkernels of up to
// 6 rows).
#define INFERMARK_MR_SWITCH(...)             \
  switch (mr) {                              \
    case 6: return tile<6>(__VA_ARGS__);     \
    case 5: return tile<5>(__VA_ARGS__);     \
    case 4: return tile<4>(__VA_ARGS__);     \
    case 3: return tile<3>(__VA_ARGS__);     \
    case 2: return tile<2>(__VA_ARGS__);     \
    default: return tile<1>(__VA_ARGS__);    \
  }

namespace infermark::gemm_detail {
namespace {

inline std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

// [begin, end) of part `i` when [0, n) is cut into `parts` nearly equal contiguous ranges.
inline void split(std::int64_t n, std::int64_t parts, std::int64_t i, std::int64_t& b, std::int64_t& e) {
  const std::int64_t base = n / parts, rem = n % parts;
  b = i * base + std::min(i, rem);
  e = b + base + (i < rem ? 1 : 0);
}

// Where one microkernel call sits in the problem (kernels that apply scales or finish integer sums
// need it).
struct tile_pos {
  std::int64_t i0, j0, p0;  // first row, first column, first k of the tile
  bool first, last;         // first / last k block: initialise dst / finish dst
  bool streamed = false;    // the decode loop: this call reads its weights once, straight from memory
};

// Splits the (row micro-panels x weight panels) grid over nthr workers as a tm x tn grid (tm * tn = nthr)
// with the least work on the busiest worker; ties go to more column splits because those keep each
// worker's weights private (weights are read once in total, the memory-bound case).
inline void partition(std::int64_t m, std::int64_t n_panels, std::int64_t mr, int ithr, int nthr,
                      std::int64_t& m0, std::int64_t& m1, std::int64_t& jp0, std::int64_t& jp1) {
  const std::int64_t m_panels = ceil_div(m, mr);
  std::int64_t best_tn = 1, best_cost = -1;
  for (std::int64_t tn = nthr; tn >= 1; --tn) {
    if (nthr % tn) continue;
    const std::int64_t tm = nthr / tn;
    const std::int64_t cost = ceil_div(m_panels, tm) * ceil_div(n_panels, tn);
    if (best_cost < 0 || cost < best_cost) best_cost = cost, best_tn = tn;
  }
  const std::int64_t tm = nthr / best_tn, it = ithr / best_tn, jt = ithr % best_tn;
  std::int64_t b = 0, e = 0;
  split(m_panels, tm, it, b, e);
  m0 = std::min(m, b * mr);
  m1 = std::min(m, e * mr);
  split(n_panels, best_tn, jt, jp0, jp1);
}

// A microkernel whose weights must be converted before use (K::converts_b): the driver converts each
// packed kc x NR weight micro-panel once per row block into the worker's workspace
// (K::convert_b(panel, kc, out), K::b_scratch_bytes(kc) bytes, element type K::bk_t) and every row tile
// of the block reads the converted copy (unless the block is small enough for direct_tiles below).
template <class K>
constexpr bool converts_b() {
  if constexpr (requires { K::converts_b; }) return K::converts_b;
  return false;
}

// A converting kernel may also take its packed panels unconverted (K::direct_tiles > 0, and a ukr
// overload for the packed type, converting in registers): in a row block of at most that many row
// tiles a converted copy would be read that few times, so it costs more than it saves (decode).
template <class K>
constexpr std::int64_t direct_tiles() {
  if constexpr (requires { K::direct_tiles; }) return K::direct_tiles;
  return 0;
}

inline std::size_t round64(std::size_t v) { return (v + 63) / 64 * 64; }

// Bytes of workspace one worker of `nthr` needs for `d`: the packed row block (MC x KC in MR-row
// micro-panels) for kernels that pack the source, plus the converted weight micro-panel for kernels
// that convert weights; 0 for neither. Rounded to 64 so worker slices and parts stay aligned.
// A problem of at most kDecodeTiles row tiles (decode) streams each weight panel over all of k (see
// drive): its source is packed once for all of k. The size never shrinks as m grows (callers such as
// the MoE layer size one workspace by their largest sub-problem).
inline constexpr std::int64_t kDecodeTiles = 2;
// Most weight panels one decode call reads in lockstep (K::decode_streams).
inline constexpr int kMaxStreams = 4;
// decode_streams of a kernel with 16 vector registers and two accumulators per row and 16-column panel
// (the AVX2 ones): one row reads 4 panels (8 accumulators), two rows 2, more rows one.
constexpr int lockstep_panels_16_regs(int mr) { return mr == 1 ? 4 : mr == 2 ? 2 : 1; }

// The k block of the decode loop: K::decode_kc(d) where a kernel has one and the problem is a single
// row tile read straight from the packed weights (a longer block for few rows, where each microkernel
// call streams a run of a panel and per-call work is not hidden behind reuse), else K::KC. The source
// stays packed per KC block ([block][MR][KC / pairs...], see drive), so such a microkernel finds k block
// j of its call a_panel_elems(KC) elements after block 0; the workspace does not change.
template <class K>
std::int64_t decode_kc(const gemm_desc& d) {
  if constexpr (requires { K::decode_kc(d); }) {
    if (ceil_div(d.m, K::MR) == 1 && (!converts_b<K>() || direct_tiles<K>() >= 1)) return K::decode_kc(d);
  }
  return K::KC;
}

template <class K>
std::size_t a_workspace(const gemm_desc& d) {
  if constexpr (K::packs_a) {
    const std::int64_t kc = std::min<std::int64_t>(K::KC, d.k);
    const std::int64_t decode = ceil_div(d.k, K::KC) * kDecodeTiles * K::a_panel_elems(kc);
    const std::int64_t blocked = (std::min<std::int64_t>(K::MC, ceil_div(d.m, K::MR) * K::MR) / K::MR) * K::a_panel_elems(kc);
    const std::int64_t a_elems = std::max(decode, blocked);
    return round64(static_cast<std::size_t>(a_elems) * sizeof(typename K::a_t));
  } else {
    (void)d;
    return 0;
  }
}

template <class K>
std::size_t worker_workspace(const gemm_desc& d, int nthr) {
  (void)nthr;  // a worker never gets more rows than m (nor more than MC at a time)
  std::size_t bytes = a_workspace<K>(d);
  if constexpr (converts_b<K>()) bytes += round64(static_cast<std::size_t>(K::b_scratch_bytes(std::min<std::int64_t>(K::KC, d.k))));
  return bytes;
}

// gemm_impl::workspace_bytes: nthr worker slices.
template <class K>
std::size_t drive_workspace(const gemm_desc& d, int nthr) {
  return static_cast<std::size_t>(nthr) * worker_workspace<K>(d, nthr);
}

// Runs row_tiles(b) on one packed kc x NR weight micro-panel read by `tiles` row tiles: on the packed
// panel itself, or, for a converting kernel with more tiles than its direct_tiles, on a copy converted
// into the worker's workspace.
// A converting kernel without direct_tiles always converts, and needs no ukr for the packed type.
template <class K, class RowTiles>
inline void run_panel(const RowTiles& row_tiles, const auto* packed, std::int64_t kc, std::int64_t tiles, void* bbuf) {
  if constexpr (converts_b<K>()) {
    if (direct_tiles<K>() == 0 || tiles > direct_tiles<K>()) {
      auto* out = static_cast<typename K::bk_t*>(bbuf);
      K::convert_b(packed, kc, out);
      return row_tiles(static_cast<const typename K::bk_t*>(out));
    }
    if constexpr (direct_tiles<K>() > 0) row_tiles(packed);
  } else {
    (void)kc, (void)tiles, (void)bbuf;
    row_tiles(packed);
  }
}

// K supplies: MR, NR, KC, MC (multiple of MR), a_t, packs_a, b_panel(desc, packed, jp, p0),
// b_panel_bytes(kc) (bytes of one packed kc x NR weight micro-panel) and
// ukr(mr, kc, a, b, c, ldc, nr, desc, args, tile_pos). With packs_a, also a_panel_elems(kc) (elements
// of one packed MR x kc micro-panel) and pack_a(desc, args, i0, mc, p0, kc, buf); `a` is then the
// packed micro-panel, in worker ithr's slice of args.workspace. Without, `a` points at src[i0][p0] in
// place (row stride d.k). Optionally decode_streams(m) (constexpr, <= kMaxStreams: weight panels one
// decode call of m rows reads in lockstep, 1 for none) and ukr_streams(m, kc, a, b[], c[], ldc, desc,
// args, tile_pos, j0[]) reading S = decode_streams(m) whole panels b[s] into dst columns c[s] from j0[s].
template <class K>
void drive(const gemm_desc& d, const gemm_args& args, int ithr, int nthr) {
  static_assert(K::MC % K::MR == 0, "row blocks must hold whole micro-panels");
  const std::int64_t n_panels = ceil_div(d.n, K::NR);
  std::int64_t m0, m1, jp0, jp1;
  partition(d.m, n_panels, K::MR, ithr, nthr, m0, m1, jp0, jp1);
  if (m0 >= m1 || jp0 >= jp1) return;
  using a_t = typename K::a_t;
  // This worker's slice of the workspace (null when the kernel needs none).
  unsigned char* mine = args.workspace == nullptr ? nullptr
                                                  : static_cast<unsigned char*>(args.workspace) +
                                                        static_cast<std::size_t>(ithr) * worker_workspace<K>(d, nthr);
  a_t* abuf = nullptr;
  if constexpr (K::packs_a) abuf = reinterpret_cast<a_t*>(mine);
  [[maybe_unused]] void* bbuf = mine == nullptr ? nullptr : mine + a_workspace<K>(d);
  if (d.m <= K::MR * kDecodeTiles) {
    // Decode (every worker has all rows and its own weight panels): each panel is streamed from its
    // first k to its last, so a worker reads its weights as one contiguous range (the blocked order
    // below jumps between panels every KC, which the hardware prefetchers follow worse: fp8
    // m1n2048k7168, cold, 2 cores: 0.74 ms = 50% of DRAM read -> 0.40-0.54 ms = 82-90%). The source is
    // packed once for all of k: k block b, row tile r at ((b * tiles) + r) micro-panels of KC. The
    // reduction order over k is unchanged.
    const std::int64_t tiles = ceil_div(d.m, K::MR);
    const std::int64_t KC = decode_kc<K>(d);  // k per microkernel call (a multiple of K::KC)
    if constexpr (K::packs_a)
      for (std::int64_t p0 = 0; p0 < d.k; p0 += K::KC)
        K::pack_a(d, args, 0, d.m, p0, std::min<std::int64_t>(K::KC, d.k - p0),
                  abuf + (p0 / K::KC) * tiles * K::a_panel_elems(K::KC));
    std::int64_t jp = jp0;
    if constexpr (requires { K::decode_streams(1); }) {
      // Several weight streams per worker: the worker's full-width panels are cut into S runs of h
      // consecutive panels and one call reads the i-th panel of every run, S panels in lockstep, so S
      // sequential streams are in flight instead of one (see decode_streams). What is left over
      // (fewer than S panels, a part-width last panel) goes through the one-stream loop below. A
      // panel's sums do not depend on the panels beside it, so results stay independent of nthr.
      static_assert(K::decode_streams(1) <= kMaxStreams && K::decode_streams(2) <= kMaxStreams);
      const int S = tiles == 1 ? K::decode_streams(static_cast<int>(d.m)) : 1;
      const std::int64_t full_end = std::min(jp1, d.n / K::NR);
      const std::int64_t h = S > 1 && full_end > jp0 ? (full_end - jp0) / S : 0;
      for (std::int64_t i = 0; i < h; ++i)
        for (std::int64_t p0 = 0; p0 < d.k; p0 += KC) {
          const std::int64_t kc = std::min<std::int64_t>(KC, d.k - p0);
          decltype(K::b_panel(d, args.packed_wei, 0, 0)) b[kMaxStreams];
          float* c[kMaxStreams];
          std::int64_t j0[kMaxStreams];
          for (int s = 0; s < S; ++s) {
            const std::int64_t js = jp0 + s * h + i;
            b[s] = K::b_panel(d, args.packed_wei, js, p0);
            c[s] = args.dst + js * K::NR;
            j0[s] = js * K::NR;
          }
          const a_t* a;
          if constexpr (K::packs_a) a = abuf + (p0 / K::KC) * K::a_panel_elems(K::KC);
          else a = static_cast<const a_t*>(args.src) + p0;
          K::ukr_streams(static_cast<int>(d.m), kc, a, b, c, d.n, d, args, tile_pos{0, j0[0], p0, p0 == 0, p0 + kc == d.k, true}, j0);
        }
      jp = jp0 + S * h;
    }
    for (; jp < jp1; ++jp) {
      const int nr = static_cast<int>(std::min<std::int64_t>(K::NR, d.n - jp * K::NR));
      for (std::int64_t p0 = 0; p0 < d.k; p0 += KC) {
        const std::int64_t kc = std::min<std::int64_t>(KC, d.k - p0);
        const auto row_tiles = [&](const auto* b) {
          for (std::int64_t ir = 0; ir < d.m; ir += K::MR) {
            const int mr = static_cast<int>(std::min<std::int64_t>(K::MR, d.m - ir));
            const tile_pos t{ir, jp * K::NR, p0, p0 == 0, p0 + kc == d.k, true};
            const a_t* a;
            if constexpr (K::packs_a) a = abuf + ((p0 / K::KC) * tiles) * K::a_panel_elems(K::KC) + (ir / K::MR) * K::a_panel_elems(kc);
            else a = static_cast<const a_t*>(args.src) + ir * d.k + p0;
            K::ukr(mr, kc, a, b, args.dst + ir * d.n + jp * K::NR, d.n, nr, d, args, t);
          }
        };
        run_panel<K>(row_tiles, K::b_panel(d, args.packed_wei, jp, p0), kc, tiles, bbuf);
      }
    }
    return;
  }
  for (std::int64_t p0 = 0; p0 < d.k; p0 += K::KC) {
    const std::int64_t kc = std::min<std::int64_t>(K::KC, d.k - p0);
    for (std::int64_t ic = m0; ic < m1; ic += K::MC) {
      const std::int64_t mc = std::min<std::int64_t>(K::MC, m1 - ic);
      if constexpr (K::packs_a) K::pack_a(d, args, ic, mc, p0, kc, abuf);
      const std::int64_t tiles = ceil_div(mc, K::MR);
      const std::int64_t b_bytes = K::b_panel_bytes(kc);
      const std::int64_t chunk = ceil_div(b_bytes, tiles * 64) * 64;
      for (std::int64_t jp = jp0; jp < jp1; ++jp) {
        const int nr = static_cast<int>(std::min<std::int64_t>(K::NR, d.n - jp * K::NR));
        // The next weight panel comes from memory: with several row tiles per panel (compute-bound),
        // each tile asks for its share of it into L2 so the next panel's first tile does not wait on
        // DRAM. With few rows the k loop streams the panel and the hardware prefetcher keeps up.
        const char* next = (tiles >= 4 && jp + 1 < jp1)
                               ? reinterpret_cast<const char*>(K::b_panel(d, args.packed_wei, jp + 1, p0))
                               : nullptr;
        const auto row_tiles = [&](const auto* b) {
          for (std::int64_t ir = 0; ir < mc; ir += K::MR) {
            if (next) {
              const std::int64_t o0 = (ir / K::MR) * chunk, o1 = std::min(b_bytes, o0 + chunk);
              for (std::int64_t o = o0; o < o1; o += 64) __builtin_prefetch(next + o, 0, 2);
            }
            const int mr = static_cast<int>(std::min<std::int64_t>(K::MR, mc - ir));
            const tile_pos t{ic + ir, jp * K::NR, p0, p0 == 0, p0 + kc == d.k};
            const a_t* a;
            if constexpr (K::packs_a) a = abuf + (ir / K::MR) * K::a_panel_elems(kc);
            else a = static_cast<const a_t*>(args.src) + (ic + ir) * d.k + p0;
            K::ukr(mr, kc, a, b, args.dst + (ic + ir) * d.n + jp * K::NR, d.n, nr, d, args, t);
          }
        };
        run_panel<K>(row_tiles, K::b_panel(d, args.packed_wei, jp, p0), kc, tiles, bbuf);
      }
    }
  }
}

// Packs rows [i0, i0+mc) x k [p0, p0+kc) of a row-major fp32 source into MR-row micro-panels laid out
// [panel][p][MR]. Rows past the end of a tail panel are zero-filled, so a microkernel that always
// computes MR rows (and stores only the valid ones) never reads indeterminate memory.
template <std::int64_t MR, class T>
inline void pack_rows(const T* src, std::int64_t ld, std::int64_t i0, std::int64_t mc, std::int64_t p0,
                      std::int64_t kc, T* buf) {
  for (std::int64_t ir = 0; ir < mc; ir += MR) {
    const std::int64_t mr = std::min(MR, mc - ir);
    T* out = buf + ir * kc;
    for (std::int64_t i = 0; i < mr; ++i) {
      const T* row = src + (i0 + ir + i) * ld + p0;
      for (std::int64_t p = 0; p < kc; ++p) out[p * MR + i] = row[p];
    }
    for (std::int64_t i = mr; i < MR; ++i)
      for (std::int64_t p = 0; p < kc; ++p) out[p * MR + i] = T{};
  }
}

// Weight packing shared by the fp32 kernels: panels of NR output channels, [panel][k][NR], the last
// panel zero-padded (padding only feeds columns that are never stored).
template <std::int64_t NR>
inline void pack_panels_f32(const gemm_desc& d, const float* wei, float* out) {
  const std::int64_t n_panels = ceil_div(d.n, NR);
  for (std::int64_t jp = 0; jp < n_panels; ++jp) {
    float* panel = out + jp * NR * d.k;
    for (std::int64_t r = 0; r < NR; ++r) {
      const std::int64_t j = jp * NR + r;
      if (j < d.n)
        for (std::int64_t p = 0; p < d.k; ++p) panel[p * NR + r] = wei[j * d.k + p];
      else
        for (std::int64_t p = 0; p < d.k; ++p) panel[p * NR + r] = 0.0f;
    }
  }
}

// e4m3 -> fp32 without tables or branches: the 7 exponent+mantissa bits shifted into fp32's fields
// give the value times 2^-120 (subnormals included, as an fp32 denormal), so one multiply fixes the
// bias. NaN codes are not valid inputs (see gemm.hpp).
constexpr float fp8_to_f32_fast(std::uint8_t x) {
  const std::uint32_t em = static_cast<std::uint32_t>(x & 0x7fu) << 20, sign = static_cast<std::uint32_t>(x & 0x80u) << 24;
  return std::bit_cast<float>(std::bit_cast<std::uint32_t>(std::bit_cast<float>(em) * 0x1p120f) | sign);
}

// Packs rows [i0, i0+mc) x k [p0, p0+kc) of a row-major source in storage type S into fp32 MR-row
// micro-panels, converting with `cvt`. Micro-panel r starts at r * MR * kc and holds its mr =
// min(MR, rows left) rows densely, [p][mr]: a tile of mr rows reads k step p at p * mr. A tail panel is
// not padded to MR rows: with one row (decode) the padding was five times the row's own bytes, read
// on every weight panel (m1n64k8192 fp8, AVX2, one core: 192 KiB of source panel per 512 KiB of
// weights).
template <std::int64_t MR, class S, class Cvt>
inline void pack_rows_f32(const S* src, std::int64_t ld, std::int64_t i0, std::int64_t mc, std::int64_t p0,
                          std::int64_t kc, float* buf, Cvt cvt) {
  for (std::int64_t ir = 0; ir < mc; ir += MR) {
    const std::int64_t mr = std::min(MR, mc - ir);
    float* out = buf + ir * kc;
    for (std::int64_t i = 0; i < mr; ++i) {
      const S* row = src + (i0 + ir + i) * ld + p0;
      for (std::int64_t p = 0; p < kc; ++p) out[p * mr + i] = cvt(row[p]);
    }
  }
}

// Offset in elements of panel jp at k = p0 (p0 a multiple of the group) in a lowp_layout buffer.
inline std::int64_t lowp_offset(const gemm_desc& d, std::int64_t nr, std::int64_t group, std::int64_t jp,
                                std::int64_t p0) {
  return jp * nr * ceil_div(d.k, group) * group + p0 * nr;
}

}  // namespace
}  // namespace infermark::gemm_detail
