// The probe driver: times the pure loops of probe_kernels on the OpenMP backend, single core and all
// cores, sizes working sets from the cache hierarchy, fingerprints the machine and caches the result.
#include "bench/probe/probe.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>
#include <stdexcept>

#include <fmt/format.h>

#include "backends/backend.hpp"
#include "backends/memory.hpp"
#include "backends/topology.hpp"
#include "bench/probe/machine.hpp"
#include "bench/probe/probe_kernels.hpp"
#include "kernels/common/isa.hpp"
#include "kernels/common/partition.hpp"

namespace infermark {
namespace {

namespace fs = std::filesystem;
namespace pk = probe_kernels;
using steady = std::chrono::steady_clock;

double seconds_between(steady::time_point a, steady::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// A seed the compiler cannot see, so no loop is folded at compile time.
volatile float g_seed = 0.999f;

// ---------------------------------------------------------------------------------------------------
// Memory: host memory (huge-page advised when large, as every benchmark buffer is), left untouched by
// the allocation so the threads that use it touch it first.
using buffer = host_ptr<double>;

buffer alloc_doubles(std::size_t n) {
  try {
    return make_host_array<double>(n);
  } catch (const std::bad_alloc&) {
    throw std::runtime_error("probe: cannot allocate " + std::to_string(n * sizeof(double)) + " bytes");
  }
}

std::size_t round_up(std::size_t v, std::size_t m) { return (v + m - 1) / m * m; }

// Restores the calling thread's CPU affinity: the OpenMP backend pins its master (this thread) when
// pinning is asked, and the probe must not leave the rest of the program bound to one core.
class affinity_guard {
 public:
  affinity_guard() { ok_ = pthread_getaffinity_np(pthread_self(), sizeof(set_), &set_) == 0; }
  ~affinity_guard() {
    if (ok_) pthread_setaffinity_np(pthread_self(), sizeof(set_), &set_);
  }
  affinity_guard(const affinity_guard&) = delete;
  affinity_guard& operator=(const affinity_guard&) = delete;

 private:
  cpu_set_t set_{};
  bool ok_ = false;
};

// One parallel region running work(ithr) on every worker, all released together by a spin barrier.
// window: from the earliest start to the latest end, timed inside the workers, so the fork/join and
// wake-up of the region (tens of microseconds, far more on a loaded machine) are left out while the
// workers' combined rate over the time they ran together is still what is measured. busy: the
// shortest single worker's own time (what calibration sizes the work by).
struct region_time {
  double window = 0, busy = 0;
};

template <class Work>
region_time timed_region(const backend& be, Work&& work) {
  struct alignas(64) stamps {
    steady::time_point start, end;
  };
  const int nthr = be.threads();
  std::vector<stamps> t(static_cast<std::size_t>(nthr));
  std::atomic<int> arrived{0};
  be.parallel([&](int ithr, int) {
    arrived.fetch_add(1, std::memory_order_acq_rel);
    for (int spins = 0; arrived.load(std::memory_order_acquire) < nthr; ++spins)
      if (spins > 1000) std::this_thread::yield();  // a worker that is not running yet needs the core
    t[ithr].start = steady::now();
    work(ithr);
    t[ithr].end = steady::now();
  });
  region_time r;
  steady::time_point first = t[0].start, last = t[0].end;
  r.busy = 1e300;
  for (const auto& s : t) {
    first = std::min(first, s.start);
    last = std::max(last, s.end);
    r.busy = std::min(r.busy, seconds_between(s.start, s.end));
  }
  r.window = seconds_between(first, last);
  return r;
}

// Repeats `call` (which returns one region_time) until `seconds` have passed and at
// least `min_reps` ran; returns the fastest. The fastest is the one least disturbed by other load.
template <class F>
double best_time(double seconds, F&& call, int min_reps = 3) {
  double best = 1e300;
  const auto start = steady::now();
  for (int rep = 0; rep < 100000; ++rep) {
    best = std::min(best, call().window);
    if (rep + 1 >= min_reps && seconds_between(start, steady::now()) >= seconds) break;
  }
  return best;
}

// Length of one timed region: short, and repeated for the whole seconds_per_test. On a shared machine
// the scheduler preempts a busy thread every few milliseconds; regions of about 2 ms are often not
// preempted at all, so the fastest of many of them is the undisturbed figure, where one long region
// would always include other processes' time slices.
double region_target(double seconds) { return std::min(seconds / 5, 0.002); }

// Grows a repeat count until one worker's share of `time_of(count)` lasts at least half of `target`
// (the faster of two tries, so one preempted try does not stop the growth early).
template <class F>
std::int64_t calibrate(double target, std::int64_t count, F&& time_of) {
  for (int round = 0; round < 60; ++round) {
    const double t = std::min(time_of(count).busy, time_of(count).busy);
    if (t >= 0.5 * target) break;
    const double scale = t > 1e-7 ? std::min(16.0, 1.1 * target / t) : 16.0;
    count = static_cast<std::int64_t>(static_cast<double>(count) * scale) + 1;
  }
  return std::max<std::int64_t>(count, 1);
}

// ---------------------------------------------------------------------------------------------------
// Compute peaks.

void check_finite(const std::vector<double>& sinks, const char* path) {
  for (double s : sinks)
    if (!std::isfinite(s)) throw std::runtime_error(std::string("probe: non-finite result from ") + path);
}

// GFLOP/s (or GOP/s) of `k` with every worker of `be` running `iters` iterations at once.
double measure_compute(const pk::compute_kernel& k, const backend& be, std::int64_t iters, double seconds) {
  std::vector<double> sinks(static_cast<std::size_t>(be.threads()) * 8, 0.0);
  const double t = best_time(seconds, [&] {
    return timed_region(be, [&](int ithr) { sinks[static_cast<std::size_t>(ithr) * 8] += k.run(iters, g_seed); });
  });
  check_finite(sinks, k.path);
  return static_cast<double>(be.threads()) * static_cast<double>(iters) * k.ops_per_iter / t * 1e-9;
}

struct peak_pair {
  double one = 0, all = 0;
};

peak_pair measure_peak(const pk::compute_kernel& k, const backend& one, const backend& all, double seconds) {
  double sink = 0;
  const std::int64_t iters = calibrate(region_target(seconds), 256, [&](std::int64_t n) {
    return timed_region(one, [&](int) { sink += k.run(n, g_seed); });
  });
  check_finite({sink}, k.path);
  peak_pair p;
  p.one = measure_compute(k, one, iters, seconds);
  if (all.threads() == 1) {
    p.all = p.one;
    return p;
  }
  // Register-only FMA/dot-product loops scale linearly with cores. An all-core figure well below
  // threads x the single-core one means another process held a core for the whole window (seen on
  // this project's shared 2-core machines: bf16 "all cores" = 1 core): measure again, longer, keeping
  // the best; what is still low after that is what the machine gives now, and is kept.
  const double linear = p.one * all.threads();
  p.all = measure_compute(k, all, iters, seconds);
  for (int retry = 1; retry <= 3 && p.all < 0.9 * linear; ++retry)
    p.all = std::max(p.all, measure_compute(k, all, iters, seconds * (1 + retry)));
  return p;
}

// ---------------------------------------------------------------------------------------------------
// Bandwidth.

// Elements [begin, end) of `n` owned by thread ithr, in whole stream blocks.
std::pair<std::size_t, std::size_t> block_range(std::size_t n, int ithr, int nthr) {
  const auto [b, e] = balance(static_cast<std::int64_t>(n / pk::stream_block), ithr, nthr);
  return {static_cast<std::size_t>(b) * pk::stream_block, static_cast<std::size_t>(e) * pk::stream_block};
}

// Each thread walks its own part of the DRAM arrays in consecutive chunks, wrapping around, so a short
// timed region reads data last touched a whole array (>= 4x the LLC) ago: still DRAM traffic.
struct dram_cursor {
  std::size_t begin = 0, end = 0, pos = 0;  // the thread's element range and where the next chunk starts
  // Calls f(offset, count) for the next `blocks` stream blocks (split in two at the wrap-around).
  template <class F>
  void next(std::size_t blocks, F&& f) {
    std::size_t left = std::min(blocks * pk::stream_block, end - begin);
    while (left > 0) {
      const std::size_t count = std::min(left, end - pos);
      f(pos, count);
      left -= count;
      pos += count;
      if (pos == end) pos = begin;
    }
  }
};

std::vector<dram_cursor> dram_cursors(std::size_t n, int nthr) {
  std::vector<dram_cursor> c(static_cast<std::size_t>(nthr));
  for (int ithr = 0; ithr < nthr; ++ithr) {
    const auto [b, e] = block_range(n, ithr, nthr);
    c[ithr] = {b, e, b};
  }
  return c;
}

// DRAM read: one array of `n` doubles split across the threads, each touching its part first.
buffer dram_read_array(const backend& be, std::size_t n) {
  buffer src = alloc_doubles(n);
  const int nthr = be.threads();
  be.parallel([&](int ithr, int) {
    const auto [b, e] = block_range(n, ithr, nthr);
    for (std::size_t i = b; i < e; ++i) src[i] = 1.0;
  });
  return src;
}

double measure_dram_read(const pk::read_kernel& k, const backend& be, const double* src, std::size_t n,
                         double seconds, double* sustained_gbs = nullptr) {
  const int nthr = be.threads();
  std::vector<dram_cursor> cur = dram_cursors(n, nthr);
  std::vector<double> sums(static_cast<std::size_t>(nthr) * 8, 0.0);
  auto region = [&](std::int64_t blocks) {
    return timed_region(be, [&](int ithr) {
      double s = 0;
      cur[ithr].next(static_cast<std::size_t>(blocks), [&](std::size_t off, std::size_t cnt) { s += k.run(src + off, cnt); });
      sums[static_cast<std::size_t>(ithr) * 8] = s;
    });
  };
  const std::size_t per_thread_blocks = n / pk::stream_block / static_cast<std::size_t>(nthr);
  const std::int64_t blocks = std::min<std::int64_t>(calibrate(region_target(seconds), 64, region),
                                                     static_cast<std::int64_t>(per_thread_blocks));
  double total_s = 0;
  int regions = 0;
  const double t = best_time(seconds, [&] {
    const region_time r = region(blocks);
    total_s += r.window;
    ++regions;
    return r;
  });
  for (int ithr = 0; ithr < nthr; ++ithr) {  // every element is 1.0: the sums prove every element was read
    const auto& c = cur[ithr];
    const double want = static_cast<double>(std::min<std::size_t>(blocks * pk::stream_block, c.end - c.begin));
    if (sums[static_cast<std::size_t>(ithr) * 8] != want)
      throw std::runtime_error(fmt::format("probe: read loop {} summed {} instead of {}", k.path,
                                           sums[static_cast<std::size_t>(ithr) * 8], want));
  }
  std::size_t bytes = 0;
  for (const auto& c : cur) bytes += std::min<std::size_t>(blocks * pk::stream_block, c.end - c.begin) * sizeof(double);
  if (sustained_gbs) *sustained_gbs = static_cast<double>(bytes) * regions / total_s * 1e-9;
  return static_cast<double>(bytes) / t * 1e-9;
}

// Elements of the DRAM read array: 4x the last-level cache (all instances), so at most a quarter of
// the data can be a cache hit. With no cache information at all, 256 MiB is larger than any current
// LLC slice a core can reach.
std::size_t dram_read_elements(int nthr) {
  const std::uint64_t llc = probe_machine().llc_total_bytes();
  const std::uint64_t dram_bytes = llc > 0 ? 4 * llc : (256ull << 20);
  return round_up(dram_bytes / sizeof(double), static_cast<std::size_t>(nthr) * pk::stream_block);
}

// DRAM triad a = b + s*c on three arrays of `n` doubles, counted as 3 x 8 bytes per element.
struct triad_arrays {
  buffer a, b, c;
  std::size_t n;
  triad_arrays(const backend& be, std::size_t count) : a(alloc_doubles(count)), b(alloc_doubles(count)), c(alloc_doubles(count)), n(count) {
    const int nthr = be.threads();
    be.parallel([&](int ithr, int) {
      const auto [lo, hi] = block_range(n, ithr, nthr);
      for (std::size_t i = lo; i < hi; ++i) {
        a[i] = 0.0;
        b[i] = 1.0;
        c[i] = 2.0;
      }
    });
  }
};

double measure_dram_triad(const pk::triad_kernel& k, const backend& be, triad_arrays& arr, double seconds) {
  const std::size_t n = arr.n;
  double* a = arr.a.get();
  const double* b = arr.b.get();
  const double* c = arr.c.get();
  const int nthr = be.threads();
  std::vector<dram_cursor> cur = dram_cursors(n, nthr);
  const double s = 3.0;
  auto region = [&](std::int64_t blocks) {
    return timed_region(be, [&](int ithr) {
      cur[ithr].next(static_cast<std::size_t>(blocks), [&](std::size_t off, std::size_t cnt) {
        k.run(a + off, b + off, c + off, s, cnt);
      });
    });
  };
  const std::size_t per_thread_blocks = n / pk::stream_block / static_cast<std::size_t>(nthr);
  const std::int64_t blocks = std::min<std::int64_t>(calibrate(region_target(seconds), 64, region),
                                                     static_cast<std::int64_t>(per_thread_blocks));
  const double t = best_time(seconds, [&] { return region(blocks); });
  // The calibration and timed regions together cover every thread's range at least once only when
  // they ran long enough, so check the elements written so far: each is 0 (not yet) or b + s*c = 7.
  for (std::size_t i : {std::size_t{0}, n / 2, n - 1})
    if (a[i] != 7.0 && a[i] != 0.0)
      throw std::runtime_error(fmt::format("probe: triad loop {} wrote {} at {}", k.path, a[i], i));
  if (a[0] != 7.0) throw std::runtime_error(fmt::format("probe: triad loop {} did not write a[0]", k.path));
  std::size_t bytes = 0;
  for (const auto& cu : cur) bytes += std::min<std::size_t>(blocks * pk::stream_block, cu.end - cu.begin) * sizeof(double);
  return 3.0 * static_cast<double>(bytes) / t * 1e-9;
}

// Read bandwidth with each thread re-reading its own buffer of `per_thread` doubles (cache-resident).
double measure_cache_read(const pk::read_kernel& k, const backend& be, std::size_t per_thread, double seconds) {
  const int nthr = be.threads();
  // Each thread's buffer starts on its own page so no two threads share a line or a page.
  const std::size_t stride = round_up(per_thread, 4096 / sizeof(double));
  buffer buf = alloc_doubles(stride * static_cast<std::size_t>(nthr));
  be.parallel([&](int ithr, int) {
    double* p = buf.get() + stride * static_cast<std::size_t>(ithr);
    for (std::size_t i = 0; i < per_thread; ++i) p[i] = 1.0;
  });
  std::vector<double> sums(static_cast<std::size_t>(nthr) * 8, 0.0);
  auto region = [&](std::int64_t passes) {
    return timed_region(be, [&](int ithr) {
      const double* p = buf.get() + stride * static_cast<std::size_t>(ithr);
      double s = 0;
      for (std::int64_t r = 0; r < passes; ++r) s += k.run(p, per_thread);
      sums[static_cast<std::size_t>(ithr) * 8] = s;
    });
  };
  const std::int64_t passes = calibrate(region_target(seconds), 1, region);
  const double t = best_time(seconds, [&] { return region(passes); });
  for (int ithr = 0; ithr < nthr; ++ithr)  // every element is 1.0: the sums prove every pass read it all
    if (sums[static_cast<std::size_t>(ithr) * 8] != static_cast<double>(per_thread) * static_cast<double>(passes))
      throw std::runtime_error(
          fmt::format("probe: cache read loop {} summed {}", k.path, sums[static_cast<std::size_t>(ithr) * 8]));
  return static_cast<double>(nthr) * static_cast<double>(passes) *
         static_cast<double>(per_thread * sizeof(double)) / t * 1e-9;
}

// Threads sharing one instance of cache `c` when `threads` workers are spread one per core.
std::uint64_t per_thread_share(const cache_info& c, int threads, int pus) {
  int instances = c.instances;
  if (instances <= 0) instances = std::max(1, pus / std::max(c.pus_sharing, 1));
  const int sharing = std::max(1, (threads + instances - 1) / instances);
  return c.size_bytes / static_cast<std::uint64_t>(sharing);
}

std::string iso8601_utc_now() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t secs = std::chrono::system_clock::to_time_t(now);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:03d}Z", buf, static_cast<int>(ms));
}

nlohmann::json pin_json(const pin_report& r) {
  return {{"requested", std::string(to_string(r.requested))},
          {"applied", r.applied},
          {"cpus", r.cpus},
          {"message", r.message}};
}

nlohmann::json peaks_json(const probe_peaks& p) {
  auto v = [](const std::optional<double>& x) { return x ? nlohmann::json(*x) : nlohmann::json(nullptr); };
  return {{"fp32", v(p.fp32)}, {"bf16", v(p.bf16)}, {"int8", v(p.int8)}};
}

// ---------------------------------------------------------------------------------------------------
// Strict JSON reading: every field must be there with the right type and a plausible value.

[[noreturn]] void bad_field(const std::string& field, const std::string& why) {
  throw std::runtime_error("probe result field '" + field + "' " + why);
}

const nlohmann::json& need(const nlohmann::json& j, const std::string& key, const std::string& where) {
  if (!j.is_object()) bad_field(where, "is not an object");
  auto it = j.find(key);
  if (it == j.end()) bad_field(where.empty() ? key : where + "." + key, "is missing");
  return *it;
}

double need_positive(const nlohmann::json& j, const std::string& key, const std::string& where) {
  const auto& v = need(j, key, where);
  if (!v.is_number()) bad_field(where + "." + key, "is not a number");
  const double d = v.get<double>();
  if (!std::isfinite(d) || d <= 0) bad_field(where + "." + key, "is not a positive finite number");
  return d;
}

std::optional<double> need_optional_positive(const nlohmann::json& j, const std::string& key,
                                             const std::string& where) {
  const auto& v = need(j, key, where);
  if (v.is_null()) return std::nullopt;
  return need_positive(j, key, where);
}

std::uint64_t need_u64(const nlohmann::json& j, const std::string& key, const std::string& where) {
  const auto& v = need(j, key, where);
  if (!v.is_number_unsigned()) bad_field(where + "." + key, "is not a non-negative integer");
  return v.get<std::uint64_t>();
}

std::string need_string(const nlohmann::json& j, const std::string& key, const std::string& where) {
  const auto& v = need(j, key, where);
  if (!v.is_string()) bad_field(where + "." + key, "is not a string");
  return v.get<std::string>();
}

probe_peaks peaks_from(const nlohmann::json& j, const std::string& key) {
  const auto& p = need(j, key, "");
  probe_peaks out;
  out.fp32 = need_positive(p, "fp32", key);
  out.bf16 = need_optional_positive(p, "bf16", key);
  out.int8 = need_optional_positive(p, "int8", key);
  return out;
}

std::string compiler_id() {
#if defined(__clang__)
  return std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
  return std::string("gcc ") + __VERSION__;
#else
  return "unknown";
#endif
}

}  // namespace

// -----------------------------------------------------------------------------------------------------
nlohmann::json probe_result::to_json() const {
  nlohmann::json caches_j = nlohmann::json::array();
  for (const auto& c : caches)
    caches_j.push_back({{"level", c.level},
                        {"size_bytes", c.size_bytes},
                        {"working_set_per_thread_bytes", c.working_set_per_thread_bytes},
                        {"cache_size_bytes", c.cache_size_bytes},
                        {"read_gbs", c.read_gbs}});
  return {{"fingerprint", fingerprint},
          {"fingerprint_fields", fingerprint_fields},
          {"isa", isa},
          {"isa_level", isa_level},
          {"isa_used", isa_used},
          {"threads", threads},
          {"pinning", pinning},
          {"peak_gflops", peaks_json(peak_gflops)},
          {"peak_gflops_1core", peaks_json(peak_gflops_1core)},
          {"bandwidth_gbs", {{"read", read_gbs}, {"triad", triad_gbs}}},
          {"dram_working_set_bytes", dram_working_set_bytes},
          {"dram_huge_page_share", dram_huge_page_share < 0 ? nlohmann::json() : nlohmann::json(dram_huge_page_share)},
          {"memory_bytes", memory_bytes == 0 ? nlohmann::json() : nlohmann::json(memory_bytes)},
          {"caches", caches_j},
          {"measured_at", measured_at},
          {"units",
           {{"peak_gflops", "1e9 operations/s; an FMA or a multiply+add counts 2, a bf16 or u8*s8 product pair "
                            "in a dot product counts 2 (multiply and add)"},
            {"bandwidth_gbs", "1e9 bytes/s of fp64 elements; read counts 8 bytes per element, triad "
                              "a=b+s*c counts 3 x 8 bytes per element (STREAM convention, write-allocate "
                              "traffic not counted)"}}}};
}

probe_result probe_result::from_json(const nlohmann::json& j) {
  if (!j.is_object()) throw std::runtime_error("probe result is not a JSON object");
  probe_result r;
  try {
    r.fingerprint = need_string(j, "fingerprint", "");
    if (r.fingerprint.empty()) bad_field("fingerprint", "is empty");
    r.fingerprint_fields = need(j, "fingerprint_fields", "");
    if (!r.fingerprint_fields.is_object()) bad_field("fingerprint_fields", "is not an object");
    const auto& isa = need(j, "isa", "");
    if (!isa.is_array()) bad_field("isa", "is not an array");
    for (const auto& e : isa) {
      if (!e.is_string()) bad_field("isa", "has a non-string entry");
      r.isa.push_back(e.get<std::string>());
    }
    r.isa_level = need_string(j, "isa_level", "");
    parse_isa(r.isa_level);  // throws std::invalid_argument on an unknown level
    r.isa_used = need(j, "isa_used", "");
    if (!r.isa_used.is_object()) bad_field("isa_used", "is not an object");
    const auto& th = need(j, "threads", "");
    if (!th.is_number_integer() || th.get<long long>() < 1 || th.get<long long>() > 1 << 20)
      bad_field("threads", "is not a thread count >= 1");
    r.threads = th.get<int>();
    r.pinning = need(j, "pinning", "");
    r.peak_gflops = peaks_from(j, "peak_gflops");
    r.peak_gflops_1core = peaks_from(j, "peak_gflops_1core");
    const auto& bw = need(j, "bandwidth_gbs", "");
    r.read_gbs = need_positive(bw, "read", "bandwidth_gbs");
    r.triad_gbs = need_positive(bw, "triad", "bandwidth_gbs");
    r.dram_working_set_bytes = need_u64(j, "dram_working_set_bytes", "");
    if (const auto it = j.find("memory_bytes"); it != j.end() && !it->is_null()) {
      if (!it->is_number_unsigned() || it->get<std::uint64_t>() == 0) bad_field("memory_bytes", "is not a byte count > 0");
      r.memory_bytes = it->get<std::uint64_t>();
    }
    if (const auto it = j.find("dram_huge_page_share"); it != j.end() && !it->is_null()) {
      if (!it->is_number() || it->get<double>() < 0 || it->get<double>() > 1)
        bad_field("dram_huge_page_share", "is not a fraction in [0, 1]");
      r.dram_huge_page_share = it->get<double>();
    }
    const auto& caches = need(j, "caches", "");
    if (!caches.is_array()) bad_field("caches", "is not an array");
    for (const auto& c : caches) {
      cache_bandwidth cb;
      const auto& lv = need(c, "level", "caches[]");
      if (!lv.is_number_integer() || lv.get<int>() < 1) bad_field("caches[].level", "is not a level >= 1");
      cb.level = lv.get<int>();
      cb.size_bytes = need_u64(c, "size_bytes", "caches[]");
      cb.working_set_per_thread_bytes = need_u64(c, "working_set_per_thread_bytes", "caches[]");
      cb.cache_size_bytes = need_u64(c, "cache_size_bytes", "caches[]");
      cb.read_gbs = need_positive(c, "read_gbs", "caches[]");
      r.caches.push_back(cb);
    }
    r.measured_at = need_string(j, "measured_at", "");
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(std::string("probe result has a field of the wrong type: ") + e.what());
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(std::string("probe result field 'isa_level': ") + e.what());
  }
  return r;
}

std::optional<double> probe_result::peak_for(const std::string& dtype_name, int nthreads) const {
  if (nthreads < 1)
    throw std::invalid_argument("peak_for: thread count " + std::to_string(nthreads) + " is not >= 1");
  auto scaled = [&](const std::optional<double>& one, const std::optional<double>& all) -> std::optional<double> {
    if (!one) return std::nullopt;
    double v = *one * nthreads;
    if (all) v = std::min(v, *all);
    return v;
  };
  if (dtype_name == "fp32") return scaled(peak_gflops_1core.fp32, peak_gflops.fp32);
  if (dtype_name == "bf16") return scaled(peak_gflops_1core.bf16, peak_gflops.bf16);
  if (dtype_name == "int8") return scaled(peak_gflops_1core.int8, peak_gflops.int8);
  if (dtype_name == "fp8") {
    const auto f = scaled(peak_gflops_1core.fp32, peak_gflops.fp32);
    const auto b = scaled(peak_gflops_1core.bf16, peak_gflops.bf16);
    if (f && b) return std::max(*f, *b);
    return b ? b : f;
  }
  throw std::invalid_argument("peak_for: unknown dtype '" + dtype_name + "'; valid choices: fp32, bf16, int8, fp8");
}

std::string probe_result::to_table() const {
  std::string out;
  auto cell = [](const std::optional<double>& v) { return v ? fmt::format("{:10.1f}", *v) : fmt::format("{:>10}", "-"); };
  auto path = [&](const char* key) {
    auto it = isa_used.find(key);
    return it != isa_used.end() && it->is_string() ? it->get<std::string>() : std::string("-");
  };
  std::string cpu_model = "?";
  if (auto it = fingerprint_fields.find("cpu_model"); it != fingerprint_fields.end() && it->is_string())
    cpu_model = it->get<std::string>();
  std::string isa_list;
  for (const auto& s : isa) isa_list += (isa_list.empty() ? "" : " ") + s;
  out += fmt::format("host roofline probe  fingerprint {}  measured {}\n", fingerprint, measured_at);
  out += fmt::format("cpu {}  isa level {}  [{}]\n", cpu_model, isa_level, isa_list);
  out += fmt::format("{:<16}{:>10}{:>10}  {}\n", "peak", "1 core", fmt::format("{} thr", threads), "instruction path");
  out += fmt::format("{:<16}{}{}  {}\n", "fp32 GFLOP/s", cell(peak_gflops_1core.fp32), cell(peak_gflops.fp32), path("fp32"));
  out += fmt::format("{:<16}{}{}  {}\n", "bf16 GFLOP/s", cell(peak_gflops_1core.bf16), cell(peak_gflops.bf16), path("bf16"));
  out += fmt::format("{:<16}{}{}  {}\n", "int8 GOP/s", cell(peak_gflops_1core.int8), cell(peak_gflops.int8), path("int8"));
  out += fmt::format("{:<16}{:>10}  working set ({} threads)\n", "bandwidth", "GB/s", threads);
  out += fmt::format("{:<16}{:10.1f}  {:.1f} MiB  {}\n", "dram read", read_gbs,
                     static_cast<double>(dram_working_set_bytes) / (1 << 20), path("read"));
  out += fmt::format("{:<16}{:>10}  {}\n", "dram pages", "",
                     dram_huge_page_share < 0 ? std::string("huge-page share unknown (no /proc/self/smaps)")
                                              : fmt::format("{:.0f}% of the read array on transparent huge pages ({})",
                                                            100 * dram_huge_page_share,
                                                            fingerprint_fields.value("transparent_huge_pages", "?")));
  out += fmt::format("{:<16}{:10.1f}  {:.1f} MiB  {}\n", "dram triad", triad_gbs,
                     static_cast<double>(dram_working_set_bytes) / (1 << 20), path("triad"));
  for (const auto& c : caches)
    out += fmt::format("{:<16}{:10.1f}  {} KiB per thread (cache {} KiB)\n", fmt::format("L{} read", c.level),
                       c.read_gbs, c.working_set_per_thread_bytes >> 10, c.cache_size_bytes >> 10);
  return out;
}

// -----------------------------------------------------------------------------------------------------
nlohmann::json fingerprint_fields() {
  const machine_summary& m = probe_machine();
  nlohmann::json caches = nlohmann::json::array();
  for (const auto& c : m.caches)
    caches.push_back({{"level", c.level}, {"type", c.type}, {"size_bytes", c.size_bytes}, {"instances", c.instances}});
  nlohmann::json f = {{"probe_version", probe_version},
                      {"cpu_model", m.cpu_model},
                      {"arch", m.arch},
                      {"cores", m.cores},
                      {"pus", m.pus},
                      {"numa_nodes", m.numa_nodes},
                      {"isa_detected", feature_names(detected_features())},
                      {"isa_level", std::string(to_string(effective_isa()))},
                      {"caches", caches},
                      {"compiler", compiler_id()},
                      {"transparent_huge_pages", transparent_huge_pages_mode()}};
#ifdef INFERMARK_SANITIZED
  f["sanitizer"] = "address-undefined";  // instrumented loads change the bandwidth figures
#endif
  return f;
}

std::string fingerprint_hash(const nlohmann::json& fields) {
  // nlohmann::json objects keep keys sorted, so dump() is canonical.
  const std::string text = fields.dump();
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return fmt::format("{:016x}", h);
}

std::string machine_fingerprint() { return fingerprint_hash(fingerprint_fields()); }

// -----------------------------------------------------------------------------------------------------
probe_result measure_probe(const probe_options& opt) {
  const int maxt = max_threads();
  if (opt.threads < 0 || opt.threads > maxt)
    throw std::invalid_argument("probe thread count " + std::to_string(opt.threads) + " is out of range; valid choices: 0 (all) or 1.." +
                                std::to_string(maxt));
  if (!(opt.seconds_per_test > 0) || !std::isfinite(opt.seconds_per_test) || opt.seconds_per_test > 60)
    throw std::invalid_argument("probe seconds_per_test " + std::to_string(opt.seconds_per_test) +
                                " is out of range; valid choices: (0, 60]");
  const int nthr = opt.threads == 0 ? maxt : opt.threads;
  const double secs = opt.seconds_per_test;
  const cpu_features feat = effective_features();
  const machine_summary& m = probe_machine();

  probe_result r;
  r.fingerprint_fields = fingerprint_fields();
  r.fingerprint = fingerprint_hash(r.fingerprint_fields);
  r.isa = feature_names(detected_features());
  r.isa_level = std::string(to_string(effective_isa()));
  r.threads = nthr;
  r.isa_used = nlohmann::json::object();

  affinity_guard keep_affinity;
  const auto one = make_backend({backend_kind::openmp, 1, pin_policy::core});
  const auto all = nthr == 1 ? nullptr : make_backend({backend_kind::openmp, nthr, pin_policy::core});
  const backend& be_all = all ? *all : *one;
  r.pinning = pin_json(be_all.pinning());

  const pk::compute_kernel fp32 = pk::select_fp32(feat);
  const peak_pair f = measure_peak(fp32, *one, be_all, secs);
  r.peak_gflops_1core.fp32 = f.one;
  r.peak_gflops.fp32 = f.all;
  r.isa_used["fp32"] = fp32.path;
  if (const auto bf16 = pk::select_bf16(feat)) {
    const peak_pair p = measure_peak(*bf16, *one, be_all, secs);
    r.peak_gflops_1core.bf16 = p.one;
    r.peak_gflops.bf16 = p.all;
    r.isa_used["bf16"] = bf16->path;
  } else {
    r.isa_used["bf16"] = "none: needs avx2+fma (bf16 widened to fp32) or avx512_bf16, not usable at isa level " + r.isa_level;
  }
  if (const auto int8 = pk::select_int8(feat)) {
    const peak_pair p = measure_peak(*int8, *one, be_all, secs);
    r.peak_gflops_1core.int8 = p.one;
    r.peak_gflops.int8 = p.all;
    r.isa_used["int8"] = int8->path;
  } else {
    r.isa_used["int8"] = "none: needs avx2+fma (int8 widened to int16) or avx512_vnni, not usable at isa level " + r.isa_level;
  }

  // DRAM: 4x the last-level cache; the triad's three arrays together are as large as the read array.
  const std::size_t n_read = dram_read_elements(nthr);
  const std::size_t unit = static_cast<std::size_t>(nthr) * pk::stream_block;
  const std::size_t n_triad = round_up((n_read + 2) / 3, unit);
  const pk::read_kernel rk = pk::select_read(feat);
  const pk::triad_kernel tk = pk::select_triad(feat);
  {
    // Read and triad alternate three times (a third of the time each), best of each kept: the DRAM
    // bandwidth of a shared host moves with other tenants' load within seconds (one probe measured read
    // 34.8 then triad 52.8 GB/s), and a single window can fall entirely into a busy moment.
    const buffer src = dram_read_array(be_all, n_read);
    const long long huge = huge_page_backed_bytes(src.get(), n_read * sizeof(double));
    r.dram_huge_page_share = huge < 0 ? -1.0 : static_cast<double>(huge) / static_cast<double>(n_read * sizeof(double));
    triad_arrays tri(be_all, n_triad);
    for (int round = 0; round < 3; ++round) {
      r.read_gbs = std::max(r.read_gbs, measure_dram_read(rk, be_all, src.get(), n_read, secs / 3));
      r.triad_gbs = std::max(r.triad_gbs, measure_dram_triad(tk, be_all, tri, secs / 3));
    }
  }
  r.dram_working_set_bytes = n_read * sizeof(double);
  r.isa_used["read"] = rk.path;
  r.isa_used["triad"] = tk.path;

  // Per cache level: each thread reads a buffer of half its share of that level (the share is the cache
  // divided among the threads using one instance), and more than the level below holds.
  std::uint64_t below = 0;
  for (const auto& c : m.caches) {
    const std::uint64_t share = per_thread_share(c, nthr, m.pus);
    std::uint64_t ws = share / 2;
    if (ws <= below) ws = (below + share) / 2;
    const std::size_t n = round_up(std::max<std::uint64_t>(ws, 4096) / sizeof(double), pk::stream_block);
    cache_bandwidth cb;
    cb.level = c.level;
    cb.cache_size_bytes = c.size_bytes;
    cb.working_set_per_thread_bytes = n * sizeof(double);
    cb.size_bytes = cb.working_set_per_thread_bytes * static_cast<std::uint64_t>(nthr);
    cb.read_gbs = measure_cache_read(rk, be_all, n, secs);
    r.caches.push_back(cb);
    below = c.size_bytes;
  }
  r.memory_bytes = host_topology().memory_bytes;
  r.measured_at = iso8601_utc_now();
  return r;
}

double measure_dram_read_now(const backend& be, double seconds) { return measure_dram_read_beside(be, seconds).best_gbs; }

dram_read_beside measure_dram_read_beside(const backend& be, double seconds) {
  if (!(seconds > 0) || !std::isfinite(seconds))
    throw std::invalid_argument("measure_dram_read_beside: seconds " + std::to_string(seconds) + " is not > 0");
  // One array for the process, first touched by the first caller's threads; rebuilt when a backend
  // with another thread count asks (the per-thread ranges must be whole stream blocks).
  static std::mutex m;
  static buffer src;
  static std::size_t n = 0;
  static int built_for = 0;
  std::lock_guard<std::mutex> lock(m);
  if (!src || built_for != be.threads()) {
    src.reset();
    n = dram_read_elements(be.threads());
    src = dram_read_array(be, n);
    built_for = be.threads();
  }
  dram_read_beside r;
  r.best_gbs = measure_dram_read(pk::select_read(effective_features()), be, src.get(), n, seconds, &r.sustained_gbs);
  return r;
}

// -----------------------------------------------------------------------------------------------------
fs::path probe_cache_path(const fs::path& results_dir, const std::string& fingerprint) {
  return results_dir / ("probe-" + fingerprint + ".json");
}

probe_result read_probe_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open probe file " + path.string());
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error("probe file " + path.string() + " is not valid JSON: " + e.what());
  }
  try {
    return probe_result::from_json(j);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error("probe file " + path.string() + ": " + e.what());
  }
}

void write_probe_file(const fs::path& path, const probe_result& r) {
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw std::runtime_error("cannot create results directory " + dir.string() + ": " + ec.message());
  static std::atomic<unsigned> counter{0};
  const fs::path tmp = dir / fmt::format(".{}.tmp-{}-{}", path.filename().string(), static_cast<long>(getpid()),
                                         counter.fetch_add(1));
  const std::string text = r.to_json().dump(2) + "\n";
  auto fail = [&](const std::string& what) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw std::runtime_error("cannot write probe file " + path.string() + ": " + what + ": " + std::strerror(err));
  };
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("cannot write probe file " + path.string() + ": open " + tmp.string() + ": " + std::strerror(errno));
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t w = ::write(fd, text.data() + done, text.size() - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      ::close(fd);
      fail("write");
    }
    done += static_cast<std::size_t>(w);
  }
  if (::fsync(fd) != 0) {
    ::close(fd);
    fail("fsync");
  }
  if (::close(fd) != 0) fail("close");
  if (::rename(tmp.c_str(), path.c_str()) != 0) fail("rename");
  // Make the rename itself durable.
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

probe_result load_or_measure_probe(const fs::path& results_dir, bool refresh, const probe_options& opt,
                                   const std::function<probe_result(const probe_options&)>& measure) {
  const int maxt = max_threads();
  if (opt.threads < 0 || opt.threads > maxt)
    throw std::invalid_argument("probe thread count " + std::to_string(opt.threads) + " is out of range; valid choices: 0 (all) or 1.." +
                                std::to_string(maxt));
  const int nthr = opt.threads == 0 ? maxt : opt.threads;
  const std::string fp = machine_fingerprint();
  const fs::path path = probe_cache_path(results_dir, fp);
  if (!refresh) {
    std::error_code ec;
    if (fs::exists(path, ec)) {
      try {
        probe_result cached = read_probe_file(path);
        if (cached.fingerprint == fp && cached.threads == nthr) return cached;
      } catch (const std::runtime_error&) {
        // A corrupt or foreign file is never trusted: fall through and measure again, overwriting it.
      }
    }
  }
  probe_result r = measure(opt);
  write_probe_file(path, r);
  return r;
}

probe_result load_or_measure_probe(const fs::path& results_dir, bool refresh, const probe_options& opt) {
  return load_or_measure_probe(results_dir, refresh, opt, measure_probe);
}

}  // namespace infermark
