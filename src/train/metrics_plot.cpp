// The metrics.jsonl plot (see metrics_plot.h).
#include "train/metrics_plot.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string_view>

namespace duet::train {
namespace {

constexpr size_t kSmoothMinPoints = 50;

// '*' matches any run of characters (none included); everything else matches itself.
bool glob_match(std::string_view pattern, std::string_view text) {
  size_t p = 0;
  size_t t = 0;
  size_t star = std::string_view::npos;
  size_t star_text = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      star_text = t;
    } else if (p < pattern.size() && pattern[p] == text[t]) {
      ++p;
      ++t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++star_text;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') {
    ++p;
  }
  return p == pattern.size();
}

// The index of the first panel whose patterns match `name`, or panels.size().
size_t panel_of(const std::vector<MetricsPanelSpec>& panels, const std::string& name) {
  for (size_t i = 0; i < panels.size(); ++i) {
    for (const std::string& pattern : panels[i].patterns) {
      if (glob_match(pattern, name)) {
        return i;
      }
    }
  }
  return panels.size();
}

// Centred moving average over the finite values, half a window of about n/40 points each side
// (shrunk symmetrically near the ends, so the curve neither lags like an EMA nor bends at the
// edges); a non-finite value stays NaN at its position.
std::vector<double> smooth(const std::vector<double>& values) {
  std::vector<double> finite;
  std::vector<size_t> position;
  for (size_t i = 0; i < values.size(); ++i) {
    if (std::isfinite(values[i])) {
      finite.push_back(values[i]);
      position.push_back(i);
    }
  }
  const size_t n = finite.size();
  const size_t half = std::max<size_t>(1, n / 40);
  std::vector<double> prefix(n + 1, 0.0);  // prefix[i] = sum of finite[0, i)
  for (size_t i = 0; i < n; ++i) {
    prefix[i + 1] = prefix[i] + finite[i];
  }
  std::vector<double> out(values.size(), std::numeric_limits<double>::quiet_NaN());
  for (size_t i = 0; i < n; ++i) {
    const size_t h = std::min({half, i, n - 1 - i});
    out[position[i]] = (prefix[i + h + 1] - prefix[i - h]) / static_cast<double>(2 * h + 1);
  }
  return out;
}

}  // namespace

std::vector<MetricsPanelSpec> default_metrics_panels() {
  return {{"Training loss", "loss", {"loss", "*_loss"}},
          {"Zero-shot accuracy",
           "accuracy",
           {"zero_shot_top*", "zero_shot_mean_per_class_recall", "*/acc1", "*/acc5",
            "*/mean_per_class_recall", "*/mean_average_precision"}},
          {"Retrieval recall", "recall", {"*recall*", "*r@*", "*R@*", "*_r1", "*_r5", "*_r10"}}};
}

LinePlot metrics_plot(const std::vector<MetricsRecord>& records, const std::string& title,
                      const std::vector<MetricsPanelSpec>& panels) {
  // Per panel, the metric names in order of first appearance, and their points.
  std::vector<std::vector<PlotSeries>> raw(panels.size());
  for (const MetricsRecord& record : records) {
    for (const Scalar& scalar : record.scalars) {
      const size_t p = panel_of(panels, scalar.name);
      if (p == panels.size()) {
        continue;
      }
      auto it = std::find_if(raw[p].begin(), raw[p].end(),
                             [&](const PlotSeries& s) { return s.name == scalar.name; });
      if (it == raw[p].end()) {
        raw[p].emplace_back(scalar.name, std::vector<double>{}, std::vector<double>{});
        it = raw[p].end() - 1;
      }
      it->x.push_back(static_cast<double>(record.step));
      it->y.push_back(scalar.value);
    }
  }

  LinePlot plot;
  plot.title = title;
  plot.x_label = "step";
  for (size_t p = 0; p < panels.size(); ++p) {
    if (raw[p].empty() && p != 0) {
      continue;
    }
    PlotPanel panel{panels[p].title, panels[p].y_label, {}};
    for (size_t i = 0; i < raw[p].size(); ++i) {
      PlotSeries& series = raw[p][i];
      series.color = plot_color(i);
      if (series.y.size() < kSmoothMinPoints) {
        panel.series.push_back(std::move(series));
        continue;
      }
      PlotSeries smoothed{series.name + " (smoothed)", series.x, smooth(series.y), series.color,
                          1.0};
      series.opacity = 0.3;
      panel.series.push_back(std::move(series));
      panel.series.push_back(std::move(smoothed));
    }
    plot.panels.push_back(std::move(panel));
  }
  return plot;
}

void write_metrics_plot(const std::string& metrics_path, const std::string& svg_path,
                        const std::string& title) {
  write_svg_line_plot(svg_path, metrics_plot(read_metrics_jsonl(metrics_path), title));
}

}  // namespace duet::train
