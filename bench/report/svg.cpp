#include "bench/report/svg.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace infermark::report {

std::string xml_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (const char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string px(double v) {
  // A NaN or infinity here is a bug upstream; writing it would silently break the picture.
  if (!std::isfinite(v)) throw std::logic_error("svg: non-finite pixel coordinate");
  return fmt::format("{:.1f}", v);
}

log_axis log_axis::covering(double min_v, double max_v, double px_lo, double px_hi) {
  if (!(std::isfinite(min_v) && std::isfinite(max_v) && min_v > 0 && min_v <= max_v))
    throw std::invalid_argument(fmt::format("log axis range [{}, {}] is not valid; it needs 0 < min <= max", min_v, max_v));
  log_axis a;
  a.lo = std::pow(10.0, std::floor(std::log10(min_v) + 1e-9));
  a.hi = std::pow(10.0, std::ceil(std::log10(max_v) - 1e-9));
  if (a.hi <= a.lo) a.hi = a.lo * 10;
  a.px_lo = px_lo;
  a.px_hi = px_hi;
  return a;
}

double log_axis::map(double v) const {
  const double t = (std::log10(v) - std::log10(lo)) / (std::log10(hi) - std::log10(lo));
  return px_lo + t * (px_hi - px_lo);
}

std::vector<double> log_axis::decades() const {
  std::vector<double> out;
  const int first = static_cast<int>(std::lround(std::log10(lo)));
  const int last = static_cast<int>(std::lround(std::log10(hi)));
  for (int e = first; e <= last; ++e) out.push_back(std::pow(10.0, e));
  return out;
}

std::vector<double> log_axis::minor_ticks() const {
  std::vector<double> out;
  const auto d = decades();
  for (std::size_t i = 0; i + 1 < d.size(); ++i)
    for (int k = 2; k <= 9; ++k) out.push_back(d[i] * k);
  return out;
}

linear_axis linear_axis::from_zero(double max_v, double px_lo, double px_hi, int ticks) {
  if (!(std::isfinite(max_v) && max_v > 0))
    throw std::invalid_argument(fmt::format("linear axis maximum {} is not valid; it needs a finite value > 0", max_v));
  if (ticks < 1) ticks = 1;
  const double raw = max_v / ticks;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = 10 * mag;
  for (const double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (m * mag >= raw * (1 - 1e-12)) {
      step = m * mag;
      break;
    }
  linear_axis a;
  a.step = step;
  a.hi = std::ceil(max_v / step - 1e-9) * step;
  a.px_lo = px_lo;
  a.px_hi = px_hi;
  return a;
}

double linear_axis::map(double v) const { return px_lo + (v - lo) / (hi - lo) * (px_hi - px_lo); }

std::vector<double> linear_axis::ticks() const {
  std::vector<double> out;
  const int n = static_cast<int>(std::lround((hi - lo) / step));
  for (int i = 0; i <= n; ++i) out.push_back(lo + i * step);
  return out;
}

std::string relative_text(double v) {
  if (v != 0 && std::fabs(v) < 0.1) return fmt::format("{:.2g}", v);
  return fmt::format("{:.2f}", v);
}

std::string tick_label(double v) { return fmt::format("{:g}", v); }

namespace {

// Spreads label baselines (sorted by their wanted position) so neighbours keep at least `gap` pixels
// apart, staying inside [lo, hi] where possible. Returns the positions in the input order.
std::vector<double> spread(const std::vector<double>& want, double gap, double lo, double hi) {
  std::vector<std::size_t> order(want.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return want[a] < want[b]; });
  std::vector<double> pos(want.size());
  double prev = lo - gap;
  for (const auto i : order) {
    pos[i] = std::max(want[i], prev + gap);
    prev = pos[i];
  }
  // Pushed past the bottom: shift the tail back up.
  double next = hi + gap;
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    pos[*it] = std::min(pos[*it], next - gap);
    next = pos[*it];
  }
  return pos;
}

std::string dash_attr(bool dashed) { return dashed ? " stroke-dasharray=\"6 4\"" : ""; }

}  // namespace

std::string roofline_svg(const roofline_spec& spec) {
  if (spec.peaks.empty() || spec.bandwidths.empty())
    throw std::invalid_argument("roofline chart needs at least one peak and one bandwidth ceiling");
  for (const auto& l : spec.peaks)
    if (!(std::isfinite(l.value) && l.value > 0)) throw std::invalid_argument(fmt::format("peak '{}' is not a positive number", l.label));
  for (const auto& l : spec.bandwidths)
    if (!(std::isfinite(l.value) && l.value > 0))
      throw std::invalid_argument(fmt::format("bandwidth '{}' is not a positive number", l.label));
  for (const auto& p : spec.points)
    if (!(std::isfinite(p.intensity) && p.intensity > 0 && std::isfinite(p.gflops) && p.gflops > 0))
      throw std::invalid_argument(fmt::format("roofline point {} has no positive intensity and FLOP/s", p.index));

  // Layout: plot on the left, legend on the right.
  const double W = 1000, H = 560, L = 78, T = 44, R = 730, B = 500, LX = 752;
  double max_peak = 0, min_peak = 1e300, max_bw = 0, min_bw = 1e300;
  for (const auto& l : spec.peaks) max_peak = std::max(max_peak, l.value), min_peak = std::min(min_peak, l.value);
  for (const auto& l : spec.bandwidths) max_bw = std::max(max_bw, l.value), min_bw = std::min(min_bw, l.value);
  // x: every ridge point and every kernel, with some room; y: from below the slowest kernel to above
  // the highest peak.
  double x_min = min_peak / max_bw / 4, x_max = max_peak / min_bw * 4;
  double y_min = min_peak / 100, y_max = max_peak * 1.5;
  for (const auto& p : spec.points) {
    x_min = std::min(x_min, p.intensity / 2);
    x_max = std::max(x_max, p.intensity * 2);
    y_min = std::min(y_min, p.gflops / 2);
    y_max = std::max(y_max, p.gflops * 1.5);
  }
  const auto xa = log_axis::covering(x_min, x_max, L, R);
  const auto ya = log_axis::covering(y_min, y_max, B, T);

  std::string s;
  s += fmt::format("<svg class=\"chart roofline\" viewBox=\"0 0 {} {}\" width=\"{}\" height=\"{}\" role=\"img\" "
                   "aria-label=\"{}\" font-family=\"system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif\">\n",
                   W, H, W, H, xml_escape(spec.title));
  s += fmt::format("<title>{}</title>\n", xml_escape(spec.title));
  s += fmt::format("<defs><clipPath id=\"roof-clip\"><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"/></clipPath></defs>\n",
                   px(L), px(T), px(R - L), px(B - T));
  s += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"#ffffff\" stroke=\"#999999\"/>\n", px(L), px(T),
                   px(R - L), px(B - T));
  s += fmt::format("<text x=\"{}\" y=\"24\" font-size=\"16\" font-weight=\"600\" fill=\"#222\">{}</text>\n", px(L),
                   xml_escape(spec.title));

  // Grid and ticks.
  s += "<g stroke=\"#eeeeee\" stroke-width=\"1\">\n";
  for (const double v : xa.minor_ticks()) s += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\"/>\n", px(xa.map(v)), px(T), px(B));
  for (const double v : ya.minor_ticks()) s += fmt::format("<line x1=\"{1}\" y1=\"{0}\" x2=\"{2}\" y2=\"{0}\"/>\n", px(ya.map(v)), px(L), px(R));
  s += "</g>\n<g stroke=\"#cccccc\" stroke-width=\"1\">\n";
  for (const double v : xa.decades()) s += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\"/>\n", px(xa.map(v)), px(T), px(B));
  for (const double v : ya.decades()) s += fmt::format("<line x1=\"{1}\" y1=\"{0}\" x2=\"{2}\" y2=\"{0}\"/>\n", px(ya.map(v)), px(L), px(R));
  s += "</g>\n<g font-size=\"12\" fill=\"#333\">\n";
  for (const double v : xa.decades())
    s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", px(xa.map(v)), px(B + 17), xml_escape(tick_label(v)));
  for (const double v : ya.decades())
    s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n", px(L - 6), px(ya.map(v) + 4), xml_escape(tick_label(v)));
  s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"13\">arithmetic intensity (FLOP per byte)</text>\n",
                   px((L + R) / 2), px(B + 38));
  s += fmt::format("<text transform=\"translate({},{}) rotate(-90)\" text-anchor=\"middle\" font-size=\"13\">achieved GFLOP/s (int8: GOP/s)</text>\n",
                   px(20), px((T + B) / 2));
  s += "</g>\n";

  // Ceilings, clipped to the plot.
  s += "<g clip-path=\"url(#roof-clip)\" fill=\"none\">\n";
  for (std::size_t i = 0; i < spec.bandwidths.size(); ++i) {
    const auto& l = spec.bandwidths[i];
    // y = bandwidth x intensity, from where it enters the plot up to the highest peak.
    double x0 = xa.lo, x1 = std::min(xa.hi, max_peak / l.value);
    if (l.value * x0 < ya.lo) x0 = ya.lo / l.value;
    if (x1 <= x0) continue;
    s += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"{}\"{}><title>{}</title></line>\n",
                     px(xa.map(x0)), px(ya.map(l.value * x0)), px(xa.map(x1)), px(ya.map(l.value * x1)), xml_escape(l.color),
                     i == 0 ? 2.5 : 1.5, dash_attr(l.dashed), xml_escape(l.label));
  }
  for (const auto& l : spec.peaks) {
    const double x0 = std::max(xa.lo, l.value / max_bw);
    if (x0 >= xa.hi) continue;
    s += fmt::format("<line x1=\"{0}\" y1=\"{2}\" x2=\"{1}\" y2=\"{2}\" stroke=\"{3}\" stroke-width=\"2\"{4}><title>{5}</title></line>\n",
                     px(xa.map(x0)), px(xa.map(xa.hi)), px(ya.map(l.value)), xml_escape(l.color), dash_attr(l.dashed),
                     xml_escape(l.label));
  }
  s += "</g>\n";

  // Short labels at the right end of the peaks (spread so they do not overlap) and at the lower end of
  // each bandwidth line, along it.
  {
    std::vector<double> want;
    for (const auto& l : spec.peaks) want.push_back(ya.map(l.value) - 4);
    const auto pos = spread(want, 13, T + 12, B - 4);
    s += "<g font-size=\"11\" font-weight=\"600\">\n";
    for (std::size_t i = 0; i < spec.peaks.size(); ++i)
      s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"{}\">{}</text>\n", px(R - 4), px(pos[i]),
                       xml_escape(spec.peaks[i].color), xml_escape(spec.peaks[i].tag));
    // Bandwidth tags: above the upper end of each diagonal (where it meets the highest peak), in the empty
    // space over the peaks; spread sideways when two ends are closer than the text is wide.
    std::vector<double> xs, ys, widths;
    for (const auto& l : spec.bandwidths) {
      const double x1 = std::min(xa.hi, max_peak / l.value);
      xs.push_back(xa.map(x1) - 2);
      ys.push_back(ya.map(l.value * x1) - 5);
      widths.push_back(7.0 * static_cast<double>(l.tag.size()) + 6);
    }
    double widest = 0;
    for (const double w : widths) widest = std::max(widest, w);
    const auto xpos = spread(xs, widest, L + widest, R - 2);
    for (std::size_t i = 0; i < spec.bandwidths.size(); ++i) {
      if (ys[i] < T + 10) continue;  // the end is above the plot: the legend names it
      s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\" fill=\"{}\">{}</text>\n", px(xpos[i]), px(ys[i]),
                       xml_escape(spec.bandwidths[i].color), xml_escape(spec.bandwidths[i].tag));
    }
    s += "</g>\n";
  }

  // Kernels: numbered markers with tooltips.
  s += "<g font-size=\"11\" fill=\"#111\">\n";
  for (const auto& p : spec.points) {
    const double x = xa.map(p.intensity), y = ya.map(p.gflops);
    s += fmt::format("<g><title>{}</title><circle cx=\"{}\" cy=\"{}\" r=\"5.5\" fill=\"{}\" stroke=\"#ffffff\" stroke-width=\"1.5\"/>"
                     "<text x=\"{}\" y=\"{}\" font-weight=\"600\">{}</text></g>\n",
                     xml_escape(p.title), px(x), px(y), xml_escape(p.color), px(x + 7), px(y - 6), p.index);
  }
  s += "</g>\n";

  // Legend.
  double ly = T + 6;
  s += "<g font-size=\"12\" fill=\"#222\">\n";
  s += fmt::format("<text x=\"{}\" y=\"{}\" font-weight=\"600\">ceilings</text>\n", px(LX), px(ly + 8));
  ly += 24;
  auto legend_line = [&](const roof_line& l, double width) {
    s += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\" stroke=\"{3}\" stroke-width=\"{4}\"{5}/>\n", px(LX), px(ly - 4),
                     px(LX + 26), xml_escape(l.color), width, dash_attr(l.dashed));
    s += fmt::format("<text x=\"{}\" y=\"{}\">{}</text>\n", px(LX + 32), px(ly), xml_escape(l.label));
    ly += 18;
  };
  for (const auto& l : spec.peaks) legend_line(l, 2);
  for (std::size_t i = 0; i < spec.bandwidths.size(); ++i) legend_line(spec.bandwidths[i], i == 0 ? 2.5 : 1.5);
  if (!spec.point_legend.empty()) {
    ly += 10;
    s += fmt::format("<text x=\"{}\" y=\"{}\" font-weight=\"600\">kernels (numbers: table rows)</text>\n", px(LX), px(ly));
    ly += 20;
    for (const auto& it : spec.point_legend) {
      s += fmt::format("<circle cx=\"{}\" cy=\"{}\" r=\"5.5\" fill=\"{}\"/>\n", px(LX + 13), px(ly - 4), xml_escape(it.color));
      s += fmt::format("<text x=\"{}\" y=\"{}\">{}</text>\n", px(LX + 32), px(ly), xml_escape(it.label));
      ly += 18;
    }
  }
  s += "</g>\n</svg>\n";
  return s;
}

std::string bar_chart_svg(const bar_chart_spec& spec) {
  const double W = 560, L = 180, R = W - 60, T = 40, row_h = 24;
  const double B = T + row_h * static_cast<double>(std::max<std::size_t>(spec.rows.size(), 1));
  const double H = B + 44;
  double max_v = spec.reference_line.value_or(0);
  for (const auto& r : spec.rows) {
    if (r.value && std::isfinite(*r.value)) max_v = std::max(max_v, *r.value);
    if (r.hi && std::isfinite(*r.hi)) max_v = std::max(max_v, *r.hi);
  }
  if (!(max_v > 0)) max_v = 1;
  const auto xa = linear_axis::from_zero(max_v, L, R);

  std::string s;
  s += fmt::format("<svg class=\"chart bars\" viewBox=\"0 0 {} {}\" width=\"{}\" height=\"{}\" role=\"img\" aria-label=\"{}\" "
                   "font-family=\"system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif\">\n",
                   W, px(H), W, px(H), xml_escape(spec.title));
  s += fmt::format("<title>{}</title>\n", xml_escape(spec.title));
  s += fmt::format("<text x=\"8\" y=\"22\" font-size=\"14\" font-weight=\"600\" fill=\"#222\">{}</text>\n", xml_escape(spec.title));
  s += "<g stroke=\"#e5e5e5\">\n";
  for (const double v : xa.ticks()) s += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\"/>\n", px(xa.map(v)), px(T), px(B));
  s += "</g>\n<g font-size=\"11\" fill=\"#333\" text-anchor=\"middle\">\n";
  for (const double v : xa.ticks()) s += fmt::format("<text x=\"{}\" y=\"{}\">{}</text>\n", px(xa.map(v)), px(B + 15), xml_escape(fmt::format("{:g}", v)));
  s += fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"12\">{}</text>\n", px((L + R) / 2), px(B + 34), xml_escape(spec.axis_label));
  s += "</g>\n";

  for (std::size_t i = 0; i < spec.rows.size(); ++i) {
    const auto& r = spec.rows[i];
    const double y = T + row_h * static_cast<double>(i), mid = y + row_h / 2;
    s += fmt::format("<g><title>{}</title>\n", xml_escape(r.label));
    s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\" font-size=\"12\" fill=\"#222\"{}>{}</text>\n", px(L - 8), px(mid + 4),
                     r.highlight ? " font-weight=\"700\"" : "", xml_escape(r.label));
    if (r.value && std::isfinite(*r.value) && *r.value >= 0) {
      const double x1 = xa.map(*r.value);
      s += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\"/>\n", px(L), px(y + 4), px(std::max(0.0, x1 - L)),
                       px(row_h - 8), r.highlight ? "#4c4c4c" : "#4e79a7");
      double text_x = x1;
      if (r.lo && r.hi && std::isfinite(*r.lo) && std::isfinite(*r.hi)) {
        const double wl = xa.map(std::max(0.0, *r.lo)), wh = xa.map(*r.hi);
        s += fmt::format("<g stroke=\"#111\" stroke-width=\"1.3\"><line x1=\"{0}\" y1=\"{2}\" x2=\"{1}\" y2=\"{2}\"/>"
                         "<line x1=\"{0}\" y1=\"{3}\" x2=\"{0}\" y2=\"{4}\"/><line x1=\"{1}\" y1=\"{3}\" x2=\"{1}\" y2=\"{4}\"/></g>\n",
                         px(wl), px(wh), px(mid), px(mid - 5), px(mid + 5));
        text_x = std::max(text_x, wh);
      }
      s += fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"11\" fill=\"#222\">{}</text>\n", px(text_x + 5), px(mid + 4),
                       xml_escape(relative_text(*r.value)));
    } else {
      s += fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"11\" font-style=\"italic\" fill=\"#777\">{}</text>\n", px(L + 4), px(mid + 4),
                       xml_escape(r.missing));
    }
    s += "</g>\n";
  }
  if (spec.reference_line && std::isfinite(*spec.reference_line) && *spec.reference_line <= xa.hi) {
    const double x = xa.map(*spec.reference_line);
    s += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"#c0392b\" stroke-width=\"1.2\" stroke-dasharray=\"4 3\"/>\n",
                     px(x), px(T - 6), px(B));
  }
  s += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"#555\"/>\n", px(L), px(T), px(B));
  s += "</svg>\n";
  return s;
}

}  // namespace infermark::report
