// Hand-written SVG for the report: XML escaping, axis scaling, the host roofline chart and horizontal bar
// charts with whiskers. The SVG is meant to be inlined into HTML5 (no xmlns attribute, so the page holds
// no URL at all); every piece of text goes through xml_escape().
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace infermark::report {

// Escapes & < > " ' for XML/HTML text and attribute values.
std::string xml_escape(std::string_view s);

// Pixel coordinates are written with one decimal; non-finite values must never reach the markup.
std::string px(double v);

// A log10 axis: data range [lo, hi] (both > 0, lo < hi) onto pixels [px_lo, px_hi] (px_hi < px_lo for a
// y axis, whose pixels grow downwards).
struct log_axis {
  double lo = 1, hi = 10;
  double px_lo = 0, px_hi = 1;

  // Widens [min_v, max_v] to whole decades (at least one). Throws std::invalid_argument unless
  // 0 < min_v <= max_v and both are finite.
  static log_axis covering(double min_v, double max_v, double px_lo, double px_hi);
  double map(double v) const;                // v > 0
  std::vector<double> decades() const;       // powers of ten in [lo, hi]
  std::vector<double> minor_ticks() const;   // 2..9 x each decade, inside (lo, hi)
};

// A linear axis from 0: [0, hi] onto [px_lo, px_hi]; hi is rounded up to a "nice" tick step.
struct linear_axis {
  double lo = 0, hi = 1, step = 0.2;
  double px_lo = 0, px_hi = 1;

  // hi >= max_v, step in {1, 2, 2.5, 5} x 10^k giving about `ticks` intervals. Throws
  // std::invalid_argument unless max_v is finite and > 0.
  static linear_axis from_zero(double max_v, double px_lo, double px_hi, int ticks = 5);
  double map(double v) const;
  std::vector<double> ticks() const;  // 0, step, ..., hi
};

// A relative figure: two decimals ("1.00", "0.47"), two significant digits below 0.1 ("0.0017") so small
// values do not print as 0.00.
std::string relative_text(double v);

// Tick label: 0.01, 0.1, 1, 10, 100, 1000, 1e+04 ... ("{:g}").
std::string tick_label(double v);

// --- roofline ---------------------------------------------------------------------------------------
struct roof_line {
  std::string label;   // legend text, e.g. "fp32 peak 235.7 GFLOP/s"
  std::string tag;     // short on-chart label, e.g. "fp32" or "DRAM"
  double value = 0;    // GFLOP/s for a peak, GB/s for a bandwidth
  std::string color;   // CSS color
  bool dashed = false;
};

struct roof_point {
  int index = 0;            // marker number, matching the kernel table
  double intensity = 0;     // FLOP per byte
  double gflops = 0;        // achieved GFLOP/s
  std::string color;        // CSS color (by dtype)
  std::string title;        // tooltip text
};

struct roof_legend_item {
  std::string label;  // e.g. "fp32 kernels"
  std::string color;
};

struct roofline_spec {
  std::vector<roof_line> peaks;       // horizontal ceilings (GFLOP/s)
  std::vector<roof_line> bandwidths;  // diagonal ceilings (GB/s); the first is drawn as the main roof
  std::vector<roof_point> points;
  std::vector<roof_legend_item> point_legend;
  std::string title;
};

// The log-log roofline chart. Needs at least one peak and one bandwidth (throws std::invalid_argument);
// points with non-positive or non-finite coordinates must be filtered out by the caller (also thrown).
std::string roofline_svg(const roofline_spec& spec);

// --- bar chart ---------------------------------------------------------------------------------------
struct bar_row {
  std::string label;
  std::optional<double> value;          // bar length; nullopt: "n/a" (with `missing` as the reason)
  std::optional<double> lo, hi;         // whisker, both or neither
  bool highlight = false;               // the reference row
  std::string missing = "n/a";          // text shown instead of a bar
};

struct bar_chart_spec {
  std::string title;
  std::string axis_label;
  std::optional<double> reference_line;  // a dashed vertical line (e.g. 1.0 = the reference)
  std::vector<bar_row> rows;
};

// Horizontal bars, one row per entry, value printed after each bar, P10-P90 whiskers where given.
std::string bar_chart_svg(const bar_chart_spec& spec);

}  // namespace infermark::report
