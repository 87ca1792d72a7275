// SVG building blocks of the report: escaping, axis scaling on known values, chart geometry, and
// well-formed markup (balanced tags, no raw markup characters in text).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <regex>
#include <string>
#include <vector>

#include "bench/report/svg.hpp"

namespace infermark::report {
namespace {

// Checks that every tag is closed in order and that text and attribute values hold no raw '<' or
// unescaped '&'. Returns "" when well-formed, else what is wrong.
std::string xml_problem(const std::string& s) {
  std::vector<std::string> stack;
  std::size_t i = 0;
  auto check_amp = [&](std::size_t from, std::size_t to) -> std::string {
    static const std::regex entity("^&(amp|lt|gt|quot|#39);");
    for (std::size_t k = from; k < to; ++k)
      if (s[k] == '&' && !std::regex_search(s.substr(k, 7), entity)) return "raw '&' at " + std::to_string(k);
    return "";
  };
  while (i < s.size()) {
    const std::size_t lt = s.find('<', i);
    if (const auto p = check_amp(i, lt == std::string::npos ? s.size() : lt); !p.empty()) return p;
    if (lt == std::string::npos) break;
    const std::size_t gt = s.find('>', lt);
    if (gt == std::string::npos) return "unterminated tag at " + std::to_string(lt);
    const std::string tag = s.substr(lt + 1, gt - lt - 1);
    if (tag.find('<') != std::string::npos) return "'<' inside a tag at " + std::to_string(lt);
    // Attribute values: quotes must pair up.
    if (std::count(tag.begin(), tag.end(), '"') % 2 != 0) return "unbalanced quotes in <" + tag + ">";
    if (const auto p = check_amp(lt, gt); !p.empty()) return p;
    const bool closing = !tag.empty() && tag[0] == '/';
    const bool self_closing = !tag.empty() && tag.back() == '/';
    const std::string name = tag.substr(closing ? 1 : 0, tag.find_first_of(" \t\n/", closing ? 1 : 0) - (closing ? 1 : 0));
    if (closing) {
      if (stack.empty() || stack.back() != name)
        return "</" + name + "> closes " + (stack.empty() ? std::string("nothing") : "<" + stack.back() + ">");
      stack.pop_back();
    } else if (!self_closing) {
      stack.push_back(name);
    }
    i = gt + 1;
  }
  if (!stack.empty()) return "<" + stack.back() + "> is never closed";
  return "";
}

std::string fmt_circle(double x, double y) { return "cx=\"" + px(x) + "\" cy=\"" + px(y) + "\""; }

std::size_t count(const std::string& s, const std::string& needle) {
  std::size_t n = 0;
  for (auto p = s.find(needle); p != std::string::npos; p = s.find(needle, p + 1)) ++n;
  return n;
}

TEST(ReportSvg, ChecksItsOwnChecker) {
  EXPECT_EQ(xml_problem("<svg><g><line/></g></svg>"), "");
  EXPECT_NE(xml_problem("<svg><g></svg>"), "");
  EXPECT_NE(xml_problem("<svg><text>a < b</text></svg>"), "");
  EXPECT_NE(xml_problem("<svg><text>a & b</text></svg>"), "");
  EXPECT_EQ(xml_problem("<svg><text>a &amp; b &lt;</text></svg>"), "");
}

TEST(ReportSvg, EscapesMarkupCharacters) {
  EXPECT_EQ(xml_escape("<a href=\"x\">&'</a>"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
  EXPECT_EQ(xml_escape("gemm:m64n256k512:fp32"), "gemm:m64n256k512:fp32");
  EXPECT_EQ(xml_escape(""), "");
}

TEST(ReportSvg, PixelsRefuseNonFiniteValues) {
  EXPECT_EQ(px(12.345), "12.3");
  EXPECT_THROW(px(std::numeric_limits<double>::quiet_NaN()), std::logic_error);
  EXPECT_THROW(px(std::numeric_limits<double>::infinity()), std::logic_error);
}

TEST(ReportSvg, RelativeFiguresKeepSmallValuesVisible) {
  EXPECT_EQ(relative_text(1.0), "1.00");
  EXPECT_EQ(relative_text(2.278), "2.28");
  EXPECT_EQ(relative_text(0.1), "0.10");
  EXPECT_EQ(relative_text(0.0017204), "0.0017");
  EXPECT_EQ(relative_text(0), "0.00");
}

TEST(ReportSvg, LogAxisCoversWholeDecades) {
  const auto a = log_axis::covering(0.3, 250, 100, 500);
  EXPECT_DOUBLE_EQ(a.lo, 0.1);
  EXPECT_DOUBLE_EQ(a.hi, 1000);
  EXPECT_NEAR(a.map(0.1), 100, 1e-9);
  EXPECT_NEAR(a.map(1), 200, 1e-9);
  EXPECT_NEAR(a.map(10), 300, 1e-9);
  EXPECT_NEAR(a.map(1000), 500, 1e-9);
  EXPECT_NEAR(a.map(std::sqrt(10.0)), 250, 1e-9);
  const auto d = a.decades();
  ASSERT_EQ(d.size(), 5u);
  EXPECT_NEAR(d[0], 0.1, 1e-12);
  EXPECT_NEAR(d[4], 1000, 1e-9);
  EXPECT_EQ(a.minor_ticks().size(), 4u * 8u);

  // Exact powers of ten stay; a single value still gets a decade; a y axis runs downwards.
  const auto e = log_axis::covering(10, 10, 400, 0);
  EXPECT_DOUBLE_EQ(e.lo, 10);
  EXPECT_DOUBLE_EQ(e.hi, 100);
  EXPECT_NEAR(e.map(10), 400, 1e-9);
  EXPECT_NEAR(e.map(100), 0, 1e-9);
  EXPECT_NEAR(e.map(std::sqrt(1000.0)), 200, 1e-9);
  const auto f = log_axis::covering(1, 100, 0, 1);
  EXPECT_DOUBLE_EQ(f.lo, 1);
  EXPECT_DOUBLE_EQ(f.hi, 100);

  EXPECT_THROW(log_axis::covering(0, 10, 0, 1), std::invalid_argument);
  EXPECT_THROW(log_axis::covering(-1, 10, 0, 1), std::invalid_argument);
  EXPECT_THROW(log_axis::covering(10, 1, 0, 1), std::invalid_argument);
  EXPECT_THROW(log_axis::covering(1, std::numeric_limits<double>::infinity(), 0, 1), std::invalid_argument);
}

TEST(ReportSvg, LinearAxisUsesNiceSteps) {
  const auto a = linear_axis::from_zero(1.37, 0, 100);
  EXPECT_DOUBLE_EQ(a.step, 0.5);
  EXPECT_DOUBLE_EQ(a.hi, 1.5);
  EXPECT_NEAR(a.map(0.75), 50, 1e-9);
  const auto t = a.ticks();
  ASSERT_EQ(t.size(), 4u);
  EXPECT_DOUBLE_EQ(t[3], 1.5);
  const auto b = linear_axis::from_zero(5, 0, 10);
  EXPECT_DOUBLE_EQ(b.step, 1);
  EXPECT_DOUBLE_EQ(b.hi, 5);
  const auto c = linear_axis::from_zero(2.6, 150, 490);
  EXPECT_DOUBLE_EQ(c.step, 1);
  EXPECT_DOUBLE_EQ(c.hi, 3);
  const auto d = linear_axis::from_zero(120, 0, 1);
  EXPECT_DOUBLE_EQ(d.step, 25);
  EXPECT_DOUBLE_EQ(d.hi, 125);
  EXPECT_THROW(linear_axis::from_zero(0, 0, 1), std::invalid_argument);
  EXPECT_THROW(linear_axis::from_zero(std::numeric_limits<double>::quiet_NaN(), 0, 1), std::invalid_argument);
}

roofline_spec simple_roofline() {
  roofline_spec s;
  s.title = "Host <roofline> & friends";
  s.peaks.push_back({"fp32 peak 100 GFLOP/s", "fp32 100", 100, "#1f77b4", false});
  s.bandwidths.push_back({"DRAM read 10 GB/s", "DRAM", 10, "#222222", false});
  s.points.push_back({1, 1.0, 5.0, "#1f77b4", "#1 gemm:<m1>&k"});
  s.point_legend.push_back({"fp32 kernels", "#1f77b4"});
  return s;
}

TEST(ReportSvg, RooflinePlacesPointsAndCeilingsOnLogAxes) {
  const std::string svg = roofline_svg(simple_roofline());
  EXPECT_EQ(xml_problem(svg), "") << svg;
  // x: 0.1 .. 100 over pixels 78 .. 730; y: 1 .. 1000 over pixels 500 .. 44 (see roofline_svg's layout).
  const double x1 = 78 + (1.0 / 3) * 652, y5 = 500 - std::log10(5.0) / 3 * 456;
  EXPECT_NE(svg.find(fmt_circle(x1, y5)), std::string::npos) << svg;
  // The DRAM line ends at the ridge point (intensity 10, 100 GFLOP/s).
  EXPECT_NE(svg.find("x2=\"512.7\" y2=\"196.0\""), std::string::npos) << svg;
  // The peak runs from the ridge to the right edge at y(100).
  EXPECT_NE(svg.find("x1=\"512.7\" y1=\"196.0\" x2=\"730.0\" y2=\"196.0\""), std::string::npos) << svg;
  // Text is escaped, no URL (inline SVG in HTML needs no xmlns), no NaN.
  EXPECT_NE(svg.find("Host &lt;roofline&gt; &amp; friends"), std::string::npos);
  EXPECT_NE(svg.find("gemm:&lt;m1&gt;&amp;k"), std::string::npos);
  EXPECT_EQ(svg.find("http"), std::string::npos);
  EXPECT_EQ(svg.find("NaN"), std::string::npos);
  // One marker plus one legend swatch; decade tick labels 0.1 .. 100 and 1 .. 1000.
  EXPECT_EQ(count(svg, "<circle"), 2u);
  for (const char* t : {">0.1<", ">1<", ">10<", ">100<", ">1000<"}) EXPECT_NE(svg.find(t), std::string::npos) << t;
}

TEST(ReportSvg, RooflineRejectsMissingCeilingsAndBadPoints) {
  auto s = simple_roofline();
  s.peaks.clear();
  EXPECT_THROW(roofline_svg(s), std::invalid_argument);
  s = simple_roofline();
  s.bandwidths.clear();
  EXPECT_THROW(roofline_svg(s), std::invalid_argument);
  s = simple_roofline();
  s.points[0].gflops = 0;
  EXPECT_THROW(roofline_svg(s), std::invalid_argument);
  s = simple_roofline();
  s.points[0].intensity = std::numeric_limits<double>::quiet_NaN();
  EXPECT_THROW(roofline_svg(s), std::invalid_argument);
}

TEST(ReportSvg, BarChartScalesBarsAndWhiskers) {
  bar_chart_spec spec;
  spec.title = "Relative <per chip>";
  spec.axis_label = "x";
  spec.reference_line = 1.0;
  spec.rows.push_back({"h100 & co", 1.0, 0.8, 1.2, true, "n/a"});
  spec.rows.push_back({"b200", 2.0, 1.5, 2.6, false, "n/a"});
  spec.rows.push_back({"mystery", std::nullopt, std::nullopt, std::nullopt, false, "not estimable (see below)"});
  const std::string svg = bar_chart_svg(spec);
  EXPECT_EQ(xml_problem(svg), "") << svg;
  // Axis 0 .. 3 (whisker 2.6 rounded up to a step of 1) over pixels 180 .. 500.
  EXPECT_NE(svg.find("width=\"106.7\""), std::string::npos) << svg;  // 1.0
  EXPECT_NE(svg.find("width=\"213.3\""), std::string::npos) << svg;  // 2.0
  EXPECT_NE(svg.find("x1=\"340.0\" y1=\"76.0\" x2=\"457.3\" y2=\"76.0\""), std::string::npos) << svg;  // whisker 1.5 .. 2.6
  EXPECT_NE(svg.find(">2.00<"), std::string::npos);
  EXPECT_NE(svg.find("not estimable (see below)"), std::string::npos);
  EXPECT_NE(svg.find("h100 &amp; co"), std::string::npos);
  EXPECT_EQ(count(svg, "<rect"), 2u);
  EXPECT_EQ(svg.find("NaN"), std::string::npos);
}

}  // namespace
}  // namespace infermark::report
