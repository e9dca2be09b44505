#pragma once
// The picture of a run's metrics.jsonl: training loss over steps, and evaluation results
// (zero-shot accuracy, retrieval recall) on panels below it sharing the step axis. The trainer
// writes it as RUN_DIR/loss.svg at the end of a run; `duet plot RUN_DIR` redraws it any time.
#include <string>
#include <vector>

#include "train/metrics_jsonl.h"
#include "train/svg_plot.h"

namespace duet::train {

// Which metrics share a panel: the names matching any pattern ('*' matches any characters).
struct MetricsPanelSpec {
  std::string title;
  std::string y_label;
  std::vector<std::string> patterns;
};

// "Training loss" (loss, *_loss), "Zero-shot accuracy" (zero_shot_top*, the CLIP_benchmark
// classification metrics */acc1, */acc5, */mean_per_class_recall, */mean_average_precision),
// "Retrieval recall" (*recall*, *r@*, *_r1, *_r5, *_r10).
std::vector<MetricsPanelSpec> default_metrics_panels();

// One panel per spec that matches a metric in `records` (the first panel always, so a run with
// nothing logged yet draws "no data"); each metric a series against step, in order of first
// appearance. A metric belongs to the first panel that matches it. A series of 50 or more
// points is drawn faint with a smoothed copy on top (a centred moving average over about 5% of
// the points, so the trend does not lag behind the data).
LinePlot metrics_plot(const std::vector<MetricsRecord>& records, const std::string& title,
                      const std::vector<MetricsPanelSpec>& panels = default_metrics_panels());

// Reads `metrics_path` (a metrics.jsonl) and writes its plot to `svg_path`.
void write_metrics_plot(const std::string& metrics_path, const std::string& svg_path,
                        const std::string& title);

}  // namespace duet::train
