// The metrics.jsonl plot: which metrics land in which panel, the smoothed overlay, and
// `duet plot RUN_DIR [--out FILE]`.
#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "common/test_util.h"
#include "train/metrics_jsonl.h"
#include "train/metrics_plot.h"

namespace {

using duet::test::read_file;
using duet::test::run_duet;
using duet::test::TempDir;
using duet::train::MetricsRecord;

std::vector<std::string> names(const duet::train::PlotPanel& panel) {
  std::vector<std::string> out;
  for (const auto& s : panel.series) {
    out.push_back(s.name);
  }
  return out;
}

// `steps` training steps logging loss and lr; every 25 steps an evaluation.
void write_run(const std::string& path, int steps) {
  duet::train::MetricsJsonl metrics(path);
  for (int step = 1; step <= steps; ++step) {
    const double loss = 0.4 + 2.0 * std::exp(-step / 30.0) + 0.1 * std::sin(step * 1.7);
    metrics.write(step, {{"loss", loss}, {"lr", 1e-3}, {"samples_per_second", 900.0}});
    if (step % 25 == 0) {
      metrics.write(step, {{"zero_shot_top1", 0.2 + 0.006 * step}, {"zero_shot_top5", 0.9}});
    }
  }
}

}  // namespace

TEST_CASE("metrics_plot puts loss and evaluation metrics on their panels") {
  std::vector<MetricsRecord> records;
  for (int step = 1; step <= 60; ++step) {
    records.push_back({step, 0.0, {{"loss", 1.5}, {"lr", 1e-3}}});
    if (step % 20 == 0) {
      records.push_back({step, 0.0, {{"zero_shot_top1", 0.01 * step}, {"val_loss", 1.6}}});
    }
  }
  records.push_back({60, 0.0, {{"image_to_text_recall@1", 0.3}}});
  const auto plot = duet::train::metrics_plot(records, "run");
  CHECK(plot.title == "run");
  CHECK(plot.x_label == "step");
  REQUIRE(plot.panels.size() == 3);
  CHECK(plot.panels[0].title == "Training loss");
  CHECK(names(plot.panels[0]) == std::vector<std::string>{"loss", "loss (smoothed)", "val_loss"});
  CHECK(names(plot.panels[1]) == std::vector<std::string>{"zero_shot_top1"});
  CHECK(names(plot.panels[2]) == std::vector<std::string>{"image_to_text_recall@1"});

  const auto& raw = plot.panels[0].series[0];
  const auto& smoothed = plot.panels[0].series[1];
  CHECK(raw.x.size() == 60);
  CHECK(raw.opacity < 1.0);
  CHECK(smoothed.color == raw.color);
  CHECK(plot.panels[0].series[2].color != raw.color);
  REQUIRE(smoothed.y.size() == 60);
  for (double v : smoothed.y) {
    REQUIRE(v == Approx(1.5));  // the debiased average of a constant is that constant
  }
  CHECK(plot.panels[1].series[0].x == std::vector<double>{20, 40, 60});
  CHECK(plot.panels[1].series[0].y == std::vector<double>{0.2, 0.4, 0.6});
}

TEST_CASE("metrics_plot of an empty run keeps a 'no data' loss panel") {
  const auto plot = duet::train::metrics_plot({}, "");
  REQUIRE(plot.panels.size() == 1);
  CHECK(plot.panels[0].title == "Training loss");
  CHECK_THAT(duet::train::render_svg_line_plot(plot), Catch::Contains("no data"));
}

TEST_CASE("write_metrics_plot draws a metrics.jsonl") {
  TempDir dir;
  write_run(dir / "metrics.jsonl", 100);
  duet::train::write_metrics_plot(dir / "metrics.jsonl", dir / "loss.svg", "my run");
  const std::string svg = read_file(dir / "loss.svg");
  CHECK_THAT(svg, Catch::Contains(">my run</text>") && Catch::Contains(">loss (smoothed)</text>") &&
                      Catch::Contains(">zero_shot_top5</text>"));
  CHECK_THAT(svg, !Catch::Contains(">lr</text>"));
}

TEST_CASE("duet plot RUN_DIR redraws the run's plot") {
  TempDir dir;
  const std::string run = dir / "my-run";
  write_run(run + "/metrics.jsonl", 80);

  auto result = run_duet({"plot", run});
  INFO(result.err);
  CHECK(result.exit_code == 0);
  const std::string svg = read_file(run + "/loss.svg");
  CHECK_THAT(svg, Catch::Contains(">my-run</text>") && Catch::Contains(">zero_shot_top1</text>"));
  CHECK_THAT(result.out, Catch::Contains(run + "/loss.svg"));

  result = run_duet({"plot", run + "/metrics.jsonl", "--out", dir / "elsewhere/plot.svg"});
  CHECK(result.exit_code == 0);
  CHECK(read_file(dir / "elsewhere/plot.svg") == svg);

  result = run_duet({"plot", dir / "no-such-run"});
  CHECK(result.exit_code == 1);
  CHECK_THAT(result.err, Catch::Contains(dir / "no-such-run"));

  result = run_duet({"plot"});
  CHECK(result.exit_code == 2);
}
