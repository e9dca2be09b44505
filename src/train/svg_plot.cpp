// SVG line plots (see svg_plot.h). Layout, top to bottom: title band, one block per panel
// (panel title, plot area, x tick labels), x label. Left of the plot areas: y label and y tick
// labels (the margin fits the longest label); right of them: the legend column. Text widths are
// estimated from the character count, which is all a dependency-free writer can do.
#include "train/svg_plot.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string_view>

#include <fmt/format.h>

#include "common/error.h"
#include "common/strings.h"

namespace duet::train {
namespace {

constexpr std::array<const char*, 10> kPalette = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728",
                                                  "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                                                  "#bcbd22", "#17becf"};
constexpr size_t kMarkerMaxPoints = 40;  // series with at most this many points get markers
constexpr double kCharWidth = 7.0;       // rough advance of a 12 px sans-serif character
constexpr double kTitleBand = 44.0;
constexpr double kPanelTitleBand = 26.0;
constexpr double kTickBand = 30.0;  // x tick labels under each plot area
constexpr double kXLabelBand = 28.0;
constexpr double kYLabelBand = 26.0;
constexpr double kLegendRowHeight = 20.0;

// The "nice number" (1, 2 or 5 times a power of ten, as in Heckbert's axis labelling) nearest
// to x > 0.
double nice_number(double x) {
  const double power = std::pow(10.0, std::floor(std::log10(x)));
  const double fraction = x / power;  // [1, 10)
  const double nice = fraction < 1.5 ? 1.0 : fraction < 3.0 ? 2.0 : fraction < 7.0 ? 5.0 : 10.0;
  return nice * power;
}

std::string tick_label(double value, double step, double max_abs) {
  if (std::abs(value) < step * 1e-6) {
    value = 0.0;  // no "-0" or "1e-17" from accumulated rounding
  }
  if (step < 1e-4 || max_abs >= 1e12) {
    return fmt::format("{:.3g}", value);
  }
  double scale = 1.0;
  const char* suffix = "";
  if (max_abs >= 1e9 && step >= 1e8) {
    scale = 1e9;
    suffix = "G";
  } else if (max_abs >= 1e6 && step >= 1e5) {
    scale = 1e6;
    suffix = "M";
  } else if (max_abs >= 1e4 && step >= 100) {
    scale = 1e3;
    suffix = "k";
  }
  const int decimals = std::max(0, static_cast<int>(-std::floor(std::log10(step / scale) + 1e-9)));
  std::string label = fmt::format("{:.{}f}", value / scale, decimals);
  return label + (value == 0.0 ? "" : suffix);
}

struct Range {
  double lo = std::numeric_limits<double>::infinity();
  double hi = -std::numeric_limits<double>::infinity();
  void add(double v) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  bool empty() const { return lo > hi; }
};

bool finite_point(const PlotSeries& s, size_t i) {
  return std::isfinite(s.x[i]) && std::isfinite(s.y[i]);
}

size_t finite_count(const PlotSeries& s) {
  size_t n = 0;
  for (size_t i = 0; i < s.x.size(); ++i) {
    n += finite_point(s, i) ? 1 : 0;
  }
  return n;
}

// Maps data coordinates to pixels: [lo, hi] -> [p0, p1].
struct Scale {
  double lo, hi, p0, p1;
  double operator()(double v) const { return p0 + (v - lo) / (hi - lo) * (p1 - p0); }
};

std::string color_of(const PlotSeries& s, size_t index) {
  return s.color.empty() ? std::string(plot_color(index)) : s.color;
}

void draw_series(std::string& svg, const PlotSeries& s, const std::string& color, const Scale& x,
                 const Scale& y) {
  const bool markers = finite_count(s) <= kMarkerMaxPoints;
  const std::string title = fmt::format("<title>{}</title>", markup_escape(s.name));
  svg += fmt::format("<g class=\"series\" opacity=\"{:.3g}\">{}\n", s.opacity, title);
  // One polyline per run of finite points; a run of one point is a marker.
  size_t i = 0;
  while (i < s.x.size()) {
    if (!finite_point(s, i)) {
      ++i;
      continue;
    }
    size_t end = i;
    while (end < s.x.size() && finite_point(s, end)) {
      ++end;
    }
    if (end - i >= 2) {
      std::string points;
      for (size_t k = i; k < end; ++k) {
        points += fmt::format("{}{:.1f},{:.1f}", k == i ? "" : " ", x(s.x[k]), y(s.y[k]));
      }
      svg += fmt::format(
          "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.8\" "
          "stroke-linejoin=\"round\" stroke-linecap=\"round\"/>\n",
          points, color);
    }
    if (markers || end - i == 1) {
      for (size_t k = i; k < end; ++k) {
        svg += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" fill=\"{}\"/>\n", x(s.x[k]),
                           y(s.y[k]), color);
      }
    }
    i = end;
  }
  svg += "</g>\n";
}

}  // namespace

const char* plot_color(size_t index) { return kPalette[index % kPalette.size()]; }

AxisTicks nice_ticks(double lo, double hi, int target_count) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) {
    lo = 0.0;
    hi = 1.0;
  }
  if (hi < lo) {
    std::swap(lo, hi);
  }
  const double max_abs = std::max(std::abs(lo), std::abs(hi));
  if (hi - lo <= max_abs * 1e-9 || hi - lo < std::numeric_limits<double>::min() * 1e3) {
    const double pad = max_abs > 0.0 ? max_abs * 0.1 : 1.0;  // constant data: ±10% (or ±1)
    lo -= pad;
    hi += pad;
  }
  AxisTicks ticks;
  const double span = hi - lo;
  target_count = std::max(target_count, 2);
  if (!std::isfinite(span)) {
    // Near the limits of double: even ticks, no rounding.
    ticks.step = hi / (target_count - 1) - lo / (target_count - 1);
    ticks.lo = lo;
    ticks.hi = hi;
  } else {
    ticks.step = nice_number(span / (target_count - 1));
    ticks.lo = std::floor(lo / ticks.step) * ticks.step;
    ticks.hi = std::ceil(hi / ticks.step) * ticks.step;
  }
  const double count = std::round((ticks.hi - ticks.lo) / ticks.step);
  const int n = std::isfinite(count) ? static_cast<int>(std::clamp(count, 1.0, 50.0)) : 1;
  const double label_max = std::max(std::abs(ticks.lo), std::abs(ticks.hi));
  for (int i = 0; i <= n; ++i) {
    const double v = i == n ? ticks.hi : ticks.lo + i * ticks.step;
    ticks.values.push_back(v);
    ticks.labels.push_back(tick_label(v, ticks.step, label_max));
  }
  return ticks;
}

namespace {

// Where everything goes: computed once from the data, then drawn panel by panel.
struct PlotLayout {
  double width = 0.0;
  double height = 0.0;
  double panel_height = 0.0;
  double panel_title_band = 0.0;
  double plot_height = 0.0;  // of each panel's plot area
  double left = 0.0;         // plot areas span [left, right]
  double right = 0.0;
  double top = 0.0;                // of the first panel
  std::vector<AxisTicks> y_ticks;  // per panel
  AxisTicks x_ticks;               // shared
};

// The y axes first (their labels decide the left margin), then the shared x axis.
PlotLayout layout_plot(const LinePlot& plot, const std::vector<PlotPanel>& panels) {
  PlotLayout l;
  l.width = std::max(plot.width, 320);
  l.panel_height = std::max(plot.panel_height, 160);
  const bool panel_titles = std::any_of(panels.begin(), panels.end(),
                                        [](const PlotPanel& p) { return !p.title.empty(); });
  l.panel_title_band = panel_titles ? kPanelTitleBand : 10.0;
  l.plot_height = l.panel_height - l.panel_title_band - kTickBand;
  size_t longest_label = 1;
  Range x_range;
  for (const PlotPanel& p : panels) {
    Range y_range;
    for (const PlotSeries& s : p.series) {
      for (size_t i = 0; i < s.x.size(); ++i) {
        if (finite_point(s, i)) {
          x_range.add(s.x[i]);
          y_range.add(s.y[i]);
        }
      }
    }
    const int target = std::clamp(static_cast<int>(l.plot_height / 45.0), 3, 8);
    l.y_ticks.push_back(y_range.empty() ? nice_ticks(0.0, 1.0, target)
                                        : nice_ticks(y_range.lo, y_range.hi, target));
    for (const std::string& label : l.y_ticks.back().labels) {
      longest_label = std::max(longest_label, label.size());
    }
  }
  size_t longest_name = 0;
  for (const PlotPanel& p : panels) {
    for (const PlotSeries& s : p.series) {
      longest_name = std::max(longest_name, s.name.size());
    }
  }
  const double legend_width = std::clamp(34.0 + kCharWidth * longest_name, 80.0, 280.0);
  l.left = kYLabelBand + 10.0 + kCharWidth * longest_label + 8.0;
  l.right = l.width - legend_width - 28.0;
  l.top = plot.title.empty() ? 12.0 : kTitleBand;
  l.height = l.top + l.panel_height * panels.size() + (plot.x_label.empty() ? 8.0 : kXLabelBand);
  const int x_target = std::clamp(static_cast<int>((l.right - l.left) / 110.0), 3, 10);
  l.x_ticks = x_range.empty() ? nice_ticks(0.0, 1.0, x_target)
                              : nice_ticks(x_range.lo, x_range.hi, x_target);
  return l;
}

// Grid, frame, ticks with their labels, and the y label of one panel's plot area.
void draw_axes(std::string& svg, const PlotLayout& l, const AxisTicks& yt, const Scale& x,
               const Scale& y, double area_top, const std::string& y_label) {
  const double area_bottom = area_top + l.plot_height;
  for (size_t i = 0; i < yt.values.size(); ++i) {
    const double py = y(yt.values[i]);
    svg += fmt::format(
        "<line x1=\"{0:.1f}\" y1=\"{2:.1f}\" x2=\"{1:.1f}\" y2=\"{2:.1f}\" stroke=\"#e5e5e5\"/>\n"
        "<line x1=\"{3:.1f}\" y1=\"{2:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" stroke=\"#888\"/>\n"
        "<text x=\"{4:.1f}\" y=\"{5:.1f}\" text-anchor=\"end\" fill=\"#444\">{6}</text>\n",
        l.left, l.right, py, l.left - 4.0, l.left - 7.0, py + 4.0, markup_escape(yt.labels[i]));
  }
  for (size_t i = 0; i < l.x_ticks.values.size(); ++i) {
    const double px = x(l.x_ticks.values[i]);
    svg += fmt::format(
        "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" stroke=\"#e5e5e5\"/>\n"
        "<line x1=\"{0:.1f}\" y1=\"{2:.1f}\" x2=\"{0:.1f}\" y2=\"{3:.1f}\" stroke=\"#888\"/>\n"
        "<text x=\"{0:.1f}\" y=\"{4:.1f}\" text-anchor=\"middle\" fill=\"#444\">{5}</text>\n",
        px, area_top, area_bottom, area_bottom + 4.0, area_bottom + 18.0,
        markup_escape(l.x_ticks.labels[i]));
  }
  svg += fmt::format(
      "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"none\" "
      "stroke=\"#888\"/>\n",
      l.left, area_top, l.right - l.left, l.plot_height);
  if (!y_label.empty()) {
    const double cx = kYLabelBand / 2.0 + 4.0;
    const double cy = (area_top + area_bottom) / 2.0;
    svg += fmt::format(
        "<text x=\"{0:.1f}\" y=\"{1:.1f}\" transform=\"rotate(-90 {0:.1f} {1:.1f})\" "
        "text-anchor=\"middle\" dominant-baseline=\"middle\" font-size=\"13\" "
        "fill=\"#333\">{2}</text>\n",
        cx, cy, markup_escape(y_label));
  }
}

// The legend column right of a panel's plot area: one row per named series.
void draw_legend(std::string& svg, const PlotPanel& panel, double x0, double area_top) {
  double row = area_top + 10.0;
  for (size_t si = 0; si < panel.series.size(); ++si) {
    const PlotSeries& s = panel.series[si];
    if (s.name.empty()) {
      continue;
    }
    const std::string color = color_of(s, si);
    const double lx = x0 + 16.0;
    svg += fmt::format(
        "<g class=\"legend\" opacity=\"{:.3g}\"><line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" "
        "y2=\"{:.1f}\" stroke=\"{}\" stroke-width=\"2.5\"/>",
        s.opacity, lx, row, lx + 22.0, row, color);
    if (finite_count(s) <= kMarkerMaxPoints) {
      svg += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" fill=\"{}\"/>", lx + 11.0,
                         row, color);
    }
    svg += fmt::format("</g>\n<text x=\"{:.1f}\" y=\"{:.1f}\" fill=\"#333\">{}</text>\n", lx + 30.0,
                       row + 4.0, markup_escape(s.name));
    row += kLegendRowHeight;
  }
}

// Panel `pi`: its title, axes, the data clipped to the plot area ("no data" when there is
// none), and its legend.
void draw_panel(std::string& svg, const PlotLayout& l, const PlotPanel& panel, size_t pi) {
  const AxisTicks& yt = l.y_ticks[pi];
  const double area_top = l.top + l.panel_height * pi + l.panel_title_band;
  const double area_bottom = area_top + l.plot_height;
  const Scale x{l.x_ticks.lo, l.x_ticks.hi, l.left, l.right};
  const Scale y{yt.lo, yt.hi, area_bottom, area_top};
  svg += fmt::format(
      "<g class=\"panel\">\n<clipPath id=\"panel{}\"><rect x=\"{:.1f}\" "
      "y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\"/></clipPath>\n",
      pi, l.left - 4.0, area_top - 4.0, l.right - l.left + 8.0, l.plot_height + 8.0);
  if (!panel.title.empty()) {
    svg += fmt::format(
        "<text x=\"{:.1f}\" y=\"{:.1f}\" font-size=\"13\" font-weight=\"bold\" "
        "fill=\"#333\">{}</text>\n",
        l.left, area_top - 9.0, markup_escape(panel.title));
  }
  draw_axes(svg, l, yt, x, y, area_top, panel.y_label);
  bool any_point = false;
  svg += fmt::format("<g clip-path=\"url(#panel{})\">\n", pi);
  for (size_t si = 0; si < panel.series.size(); ++si) {
    const PlotSeries& s = panel.series[si];
    any_point = any_point || finite_count(s) > 0;
    draw_series(svg, s, color_of(s, si), x, y);
  }
  svg += "</g>\n";
  if (!any_point) {
    svg += fmt::format(
        "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" font-size=\"14\" "
        "fill=\"#999\">no data</text>\n",
        (l.left + l.right) / 2.0, (area_top + area_bottom) / 2.0 + 5.0);
  }
  draw_legend(svg, panel, l.right, area_top);
  svg += "</g>\n";
}

}  // namespace

std::string render_svg_line_plot(const LinePlot& plot) {
  std::vector<PlotPanel> panels = plot.panels;
  if (panels.empty()) {
    panels.emplace_back();  // an empty frame that says "no data"
  }
  for (const PlotPanel& p : panels) {
    for (const PlotSeries& s : p.series) {
      DUET_CHECK(s.x.size() == s.y.size(), "plot series '{}': {} x values but {} y values", s.name,
                 s.x.size(), s.y.size());
    }
  }
  const PlotLayout l = layout_plot(plot, panels);
  std::string svg = fmt::format(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"{0:.0f}\" "
      "height=\"{1:.0f}\" viewBox=\"0 0 {0:.0f} {1:.0f}\" "
      "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" font-size=\"12\">\n"
      "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
      l.width, l.height);
  if (!plot.title.empty()) {
    svg += fmt::format(
        "<text x=\"{:.1f}\" y=\"28\" text-anchor=\"middle\" font-size=\"17\" "
        "font-weight=\"bold\" fill=\"#222\">{}</text>\n",
        (l.left + l.right) / 2.0, markup_escape(plot.title));
  }
  for (size_t pi = 0; pi < panels.size(); ++pi) {
    draw_panel(svg, l, panels[pi], pi);
  }
  if (!plot.x_label.empty()) {
    svg += fmt::format(
        "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" font-size=\"13\" "
        "fill=\"#333\">{}</text>\n",
        (l.left + l.right) / 2.0, l.top + l.panel_height * panels.size() + 10.0,
        markup_escape(plot.x_label));
  }
  svg += "</svg>\n";
  return svg;
}

void write_svg_line_plot(const std::string& path, const LinePlot& plot) {
  const std::string svg = render_svg_line_plot(plot);
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  std::error_code ec;
  if (!parent.empty()) {
    std::filesystem::create_directories(parent, ec);
    DUET_CHECK(!ec, "cannot create directory '{}' for plot '{}': {}", parent.string(), path,
               ec.message());
  }
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    DUET_CHECK(out, "cannot write plot '{}': {}", tmp, std::strerror(errno));
    out << svg;
    out.close();
    DUET_CHECK(out, "cannot write plot '{}': {}", tmp, std::strerror(errno));
  }
  std::filesystem::rename(tmp, path, ec);
  DUET_CHECK(!ec, "cannot move plot '{}' to '{}': {}", tmp, path, ec.message());
}

}  // namespace duet::train
