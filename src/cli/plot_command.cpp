// `duet plot RUN_DIR [--out FILE]`: draws a run's metrics.jsonl as an SVG (training loss, and
// evaluation results on panels below) — the loss.svg the trainer writes at the end of a run,
// redrawn at any time, e.g. while the run is still going.
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "cli/app.h"
#include "common/error.h"
#include "train/metrics_plot.h"

namespace duet::cli {

void add_plot_command(CLI::App& root, Registry& registry) {
  struct PlotOptions {
    std::string run;
    std::string out;
  };
  auto options = std::make_shared<PlotOptions>();
  CLI::App* plot = root.add_subcommand(
      "plot", "Draw a run's metrics.jsonl (loss, zero-shot accuracy) as an SVG plot");
  plot->add_option("RUN_DIR", options->run, "Run directory, or a metrics.jsonl file")->required();
  plot->add_option("-o,--out", options->out, "SVG file to write (default: RUN_DIR/loss.svg)")
      ->type_name("FILE");
  registry.add(plot, [options] {
    namespace fs = std::filesystem;
    const fs::path run = options->run;
    DUET_CHECK(fs::exists(run), "no run directory or metrics file '{}'", options->run);
    const bool is_dir = fs::is_directory(run);
    const fs::path metrics = is_dir ? run / "metrics.jsonl" : run;
    fs::path run_dir = fs::absolute(is_dir ? run : run.parent_path()).lexically_normal();
    if (run_dir.filename().empty()) {
      run_dir = run_dir.parent_path();  // "runs/a/" names "a"
    }
    const std::string out = options->out.empty() ? (run_dir / "loss.svg").string() : options->out;
    train::write_metrics_plot(metrics.string(), out, run_dir.filename().string());
    std::cout << "wrote " << out << "\n";
  });
}

}  // namespace duet::cli
