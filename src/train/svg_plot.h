#pragma once
// Small, dependency-free SVG line plots: one or more panels stacked vertically, sharing one x
// range, each with its own y axis, grid, "nice" tick labels (1, 2 or 5 times a power of ten),
// y label, title and legend.
//
// Robustness (a plot is drawn whatever the data):
//  - points whose x or y is NaN or ±Inf are skipped and break the line there;
//  - a run of one finite point, and every point of a series with few points, gets a marker, so
//    a single evaluation still shows;
//  - an empty panel shows "no data" over a [0, 1] axis; a constant series gets a range around
//    its value.
// Text is XML-escaped; the output is a standalone, well-formed SVG 1.1 document.
#include <string>
#include <utility>
#include <vector>

namespace duet::train {

struct PlotSeries {
  PlotSeries() = default;
  PlotSeries(std::string series_name, std::vector<double> xs, std::vector<double> ys,
             std::string series_color = "", double series_opacity = 1.0)
      : name(std::move(series_name)),
        x(std::move(xs)),
        y(std::move(ys)),
        color(std::move(series_color)),
        opacity(series_opacity) {}

  std::string name;       // legend text
  std::vector<double> x;  // same length as y; drawn in this order
  std::vector<double> y;
  std::string color;     // any SVG colour; empty picks plot_color(index in its panel)
  double opacity = 1.0;  // e.g. a faint raw curve under a smoothed one
};

struct PlotPanel {
  std::string title;    // above the panel's top-left corner; may be empty
  std::string y_label;  // along the y axis; may be empty
  std::vector<PlotSeries> series;
};

struct LinePlot {
  std::string title;    // centred at the top; may be empty
  std::string x_label;  // under the bottom panel; may be empty
  std::vector<PlotPanel> panels;
  int width = 900;         // pixels
  int panel_height = 300;  // pixels per panel, tick labels and panel title included
};

// The SVG document.
std::string render_svg_line_plot(const LinePlot& plot);

// Writes render_svg_line_plot(plot) to `path` (through a temporary file and a rename, so a
// reader never sees half a plot), creating its directory. Throws a runtime Error naming the
// path when it cannot.
void write_svg_line_plot(const std::string& path, const LinePlot& plot);

// The default colour of the index-th series of a panel (a 10-colour qualitative palette).
const char* plot_color(size_t index);

// An axis: its range [lo, hi] runs from the first tick to the last.
struct AxisTicks {
  double lo = 0.0;
  double hi = 1.0;
  double step = 0.5;
  std::vector<double> values;  // lo, lo + step, ..., hi
  std::vector<std::string> labels;
};

// About `target_count` ticks at a "nice" step covering [lo, hi]; a degenerate or non-finite
// range is widened first. Labels use as few decimals as the step needs, and "k"/"M"/"G" suffixes
// for large values (25000 -> "25k").
AxisTicks nice_ticks(double lo, double hi, int target_count);

}  // namespace duet::train
