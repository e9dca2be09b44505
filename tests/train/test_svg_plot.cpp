// SVG line plots: nice ticks, polyline points that map data linearly into the plot area, lines
// broken at NaN/Inf, markers for lone points, "no data" for empty panels, escaped text, and
// errors that name the series or the path.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <limits>
#include <regex>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/test_util.h"
#include "train/svg_plot.h"

namespace {

using duet::train::LinePlot;
using duet::train::nice_ticks;
using duet::train::PlotPanel;
using duet::train::PlotSeries;
using duet::train::render_svg_line_plot;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

struct Point {
  double x = 0.0;
  double y = 0.0;
};

// The points of every <polyline>, in document order.
std::vector<std::vector<Point>> polylines(const std::string& svg) {
  std::vector<std::vector<Point>> lines;
  const std::regex polyline(R"re(<polyline points="([^"]*)")re");
  const std::regex pair(R"re((-?[0-9.]+),(-?[0-9.]+))re");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), polyline);
       it != std::sregex_iterator(); ++it) {
    const std::string points = (*it)[1];
    std::vector<Point> line;
    for (auto p = std::sregex_iterator(points.begin(), points.end(), pair);
         p != std::sregex_iterator(); ++p) {
      line.push_back({std::stod((*p)[1]), std::stod((*p)[2])});
    }
    lines.push_back(line);
  }
  return lines;
}

std::vector<Point> circles(const std::string& svg) {
  std::vector<Point> points;
  const std::regex circle(R"re(<circle cx="(-?[0-9.]+)" cy="(-?[0-9.]+)")re");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), circle); it != std::sregex_iterator();
       ++it) {
    points.push_back({std::stod((*it)[1]), std::stod((*it)[2])});
  }
  return points;
}

LinePlot one_series(const std::vector<double>& x, const std::vector<double>& y) {
  LinePlot plot;
  plot.title = "t";
  plot.x_label = "step";
  plot.panels = {PlotPanel{"panel", "value", {PlotSeries("s", x, y)}}};
  return plot;
}

// No "nan" or "inf" where a number goes (attribute values, coordinate lists, tick labels).
void check_no_non_finite_text(const std::string& svg) {
  const std::regex non_finite(R"re([",( >-](nan|inf))re", std::regex::icase);
  CHECK_FALSE(std::regex_search(svg, non_finite));
}

}  // namespace

TEST_CASE("nice_ticks picks 1-2-5 steps that cover the range") {
  auto t = nice_ticks(0.0, 1000.0, 6);
  CHECK(t.step == 200.0);
  CHECK(t.lo == 0.0);
  CHECK(t.hi == 1000.0);
  CHECK(t.labels == std::vector<std::string>{"0", "200", "400", "600", "800", "1000"});

  t = nice_ticks(0.31, 2.47, 5);
  CHECK(t.step == 0.5);
  CHECK(t.lo == 0.0);
  CHECK(t.hi == 2.5);
  CHECK(t.labels == std::vector<std::string>{"0.0", "0.5", "1.0", "1.5", "2.0", "2.5"});

  t = nice_ticks(0.0, 25000.0, 6);
  CHECK(t.step == 5000.0);
  CHECK(t.labels == std::vector<std::string>{"0", "5k", "10k", "15k", "20k", "25k"});

  t = nice_ticks(-0.3, 0.3, 5);  // no "-0.0"
  CHECK(t.labels == std::vector<std::string>{"-0.3", "-0.2", "-0.1", "0.0", "0.1", "0.2", "0.3"});

  t = nice_ticks(0.0, 5e-4, 5);  // learning rates
  CHECK(t.step == Approx(1e-4));
  CHECK(t.labels.back() == "0.0005");

  t = nice_ticks(1e-6, 5e-6, 5);  // tiny steps switch to exponents
  CHECK(t.labels.front() == "1e-06");

  for (const auto& [lo, hi] : std::vector<std::pair<double, double>>{{7.0, 7.0},
                                                                     {0.0, 0.0},
                                                                     {-3.0, -3.0},
                                                                     {1e9, 1e9},
                                                                     {5.0, 1.0},
                                                                     {kNaN, 1.0},
                                                                     {0.0, kInf}}) {
    INFO(lo << " .. " << hi);
    t = nice_ticks(lo, hi, 5);
    CHECK(t.lo < t.hi);
    CHECK(t.step > 0.0);
    CHECK(t.values.size() >= 2);
    CHECK(t.values.size() == t.labels.size());
    CHECK(t.values.front() == t.lo);
    CHECK(t.values.back() == t.hi);
    if (std::isfinite(lo) && std::isfinite(hi)) {
      CHECK(t.lo <= std::min(lo, hi));
      CHECK(t.hi >= std::max(lo, hi));
    }
  }
}

TEST_CASE("svg plot maps each point linearly into the plot area") {
  std::vector<double> x;
  std::vector<double> y;
  for (int i = 0; i <= 10; ++i) {
    x.push_back(100.0 * i);
    y.push_back(3.0 - 0.02 * i * i);
  }
  const std::string svg = render_svg_line_plot(one_series(x, y));
  CHECK_THAT(svg, Catch::StartsWith("<?xml") &&
                      Catch::Contains("<svg xmlns=\"http://www.w3.org/2000/svg\""));
  CHECK_THAT(svg, Catch::EndsWith("</svg>\n"));
  const auto lines = polylines(svg);
  REQUIRE(lines.size() == 1);
  const auto& p = lines[0];
  REQUIRE(p.size() == x.size());
  for (size_t i = 0; i < p.size(); ++i) {
    INFO("point " << i);
    // Pixel offsets are proportional to data offsets (0.1 px rounding), y pointing down.
    CHECK((p[i].x - p[0].x) / (p.back().x - p[0].x) ==
          Approx((x[i] - x[0]) / (x.back() - x[0])).margin(1e-3));
    CHECK((p[i].y - p[0].y) / (p.back().y - p[0].y) ==
          Approx((y[i] - y[0]) / (y.back() - y[0])).margin(1e-3));
  }
  CHECK(p.back().y > p[0].y);                  // a falling curve goes down the page
  CHECK(circles(svg).size() == x.size() + 1);  // few points: markers, and one in the legend
  CHECK_THAT(svg, Catch::Contains(">step</text>") && Catch::Contains(">value</text>") &&
                      Catch::Contains(">panel</text>") && Catch::Contains(">s</text>"));
  check_no_non_finite_text(svg);
}

TEST_CASE("svg plot skips NaN and Inf, breaking the line, and marks lone points") {
  std::vector<double> x;
  std::vector<double> y;
  for (int i = 0; i < 60; ++i) {
    x.push_back(i);
    y.push_back(i == 20 || i == 42 ? kNaN : i == 40 ? kInf : 0.5 * i);
  }
  x[50] = -kInf;  // a bad x is skipped too
  const std::string svg = render_svg_line_plot(one_series(x, y));
  const auto lines = polylines(svg);
  REQUIRE(lines.size() == 4);
  CHECK(lines[0].size() == 20);  // 0..19
  CHECK(lines[1].size() == 19);  // 21..39
  CHECK(lines[2].size() == 7);   // 43..49
  CHECK(lines[3].size() == 9);   // 51..59
  // Point 41 stands alone between Inf and NaN: a marker (the series has too many points for
  // markers elsewhere, and its legend has none).
  const auto marks = circles(svg);
  REQUIRE(marks.size() == 1);
  CHECK(marks[0].x > lines[1].back().x);
  CHECK(marks[0].x < lines[2].front().x);
  check_no_non_finite_text(svg);
}

TEST_CASE("svg plot draws empty, single-point and constant series") {
  SECTION("empty") {
    for (const auto& plot : {one_series({}, {}), one_series({1, 2}, {kNaN, kInf}), LinePlot{}}) {
      const std::string svg = render_svg_line_plot(plot);
      CHECK(polylines(svg).empty());
      CHECK_THAT(svg, Catch::Contains(">no data</text>"));
      check_no_non_finite_text(svg);
    }
  }
  SECTION("a single point") {
    const std::string svg = render_svg_line_plot(one_series({500}, {0.25}));
    CHECK(polylines(svg).empty());
    CHECK(circles(svg).size() == 2);  // the point and the legend
    CHECK_THAT(svg, !Catch::Contains("no data"));
    check_no_non_finite_text(svg);
  }
  SECTION("a constant") {
    const std::string svg = render_svg_line_plot(one_series({0, 1, 2}, {7, 7, 7}));
    const auto lines = polylines(svg);
    REQUIRE(lines.size() == 1);
    REQUIRE(lines[0].size() == 3);
    CHECK(lines[0][0].y == lines[0][2].y);
    CHECK_THAT(svg, Catch::Contains(">7.0</text>"));  // a tick at the value, inside the range
    check_no_non_finite_text(svg);
  }
}

TEST_CASE("svg plot panels share the x axis and each has a legend") {
  LinePlot plot;
  plot.panels = {
      PlotPanel{"Training loss",
                "loss",
                {PlotSeries("loss", {0, 50, 100}, {2, 1, 0.5}),
                 PlotSeries("val_loss", {0, 100}, {2.1, 0.7})}},
      PlotPanel{"Zero-shot", "top-1", {PlotSeries("zero_shot_top1", {50, 100}, {0.4, 0.8})}}};
  const std::string svg = render_svg_line_plot(plot);
  const auto lines = polylines(svg);
  REQUIRE(lines.size() == 3);
  CHECK(lines[0][1].x == lines[2][0].x);  // step 50 in both panels
  CHECK(lines[0][2].x == lines[2][1].x);  // step 100
  CHECK(lines[2][0].y > lines[0][2].y);   // the second panel is below the first
  CHECK_THAT(svg, Catch::Contains(">loss</text>") && Catch::Contains(">val_loss</text>") &&
                      Catch::Contains(">zero_shot_top1</text>"));
  CHECK_THAT(svg, Catch::Contains(duet::train::plot_color(0)) &&
                      Catch::Contains(duet::train::plot_color(1)));
}

TEST_CASE("svg plot escapes text and reports bad input") {
  LinePlot plot = one_series({1, 2}, {1, 2});
  plot.title = "loss < 1 & \"accuracy\" > 0.5";
  plot.panels[0].series[0].name = "a<b>";
  const std::string svg = render_svg_line_plot(plot);
  CHECK_THAT(svg, Catch::Contains("loss &lt; 1 &amp; &quot;accuracy&quot; &gt; 0.5"));
  CHECK_THAT(svg, Catch::Contains("a&lt;b&gt;"));
  CHECK_THAT(svg, !Catch::Contains("a<b>"));

  CHECK_THROWS_WITH(render_svg_line_plot(one_series({1, 2, 3}, {1, 2})),
                    Catch::Contains("'s'") && Catch::Contains("3 x values but 2 y values"));

  duet::test::TempDir dir;
  duet::test::write_file(dir / "file", "x");
  CHECK_THROWS_AS(duet::train::write_svg_line_plot(dir / "file/loss.svg", plot), duet::Error);
  CHECK_THROWS_WITH(duet::train::write_svg_line_plot(dir / "file/loss.svg", plot),
                    Catch::Contains(dir / "file"));
  duet::train::write_svg_line_plot(dir / "plots/loss.svg", plot);
  CHECK(duet::test::read_file(dir / "plots/loss.svg") == svg);
  CHECK_FALSE(std::filesystem::exists(dir / "plots/loss.svg.tmp"));
}
