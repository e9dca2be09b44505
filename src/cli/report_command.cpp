// `duet report RUN_DIR`: writes RUN_DIR/report.html, the self-contained page of a run (config,
// training curves, throughput, evaluations, confusions, retrieval examples); training writes
// the same page at its end. It can be redrawn at any time, e.g. while the run is going.
#include <iostream>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "cli/app.h"
#include "train/run_report.h"

namespace duet::cli {

void add_report_command(CLI::App& root, Registry& registry) {
  auto run_dir = std::make_shared<std::string>();
  CLI::App* report = root.add_subcommand(
      "report", "Write RUN_DIR/report.html: one self-contained page to read a run at a glance");
  report->add_option("RUN_DIR", *run_dir, "Run directory (runs/NAME)")->required();
  registry.add(report,
               [run_dir] { std::cout << "wrote " << train::write_run_report(*run_dir) << "\n"; });
}

}  // namespace duet::cli
