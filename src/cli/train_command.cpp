// `duet train` (`duet eval` is in eval_command.cpp).
#include <filesystem>
#include <iostream>

#include <CLI/CLI.hpp>

#include "cli/app.h"
#include "common/error.h"
#include "common/logging.h"
#include "config/loader.h"
#include "train/trainer.h"

namespace duet::cli {

void add_train_command(CLI::App& root, Registry& registry) {
  struct TrainArgs {
    std::string file;
    std::vector<std::string> overrides;
    int64_t stop_after = 0;
    bool check_syncs = false;
  };
  auto args = std::make_shared<TrainArgs>();
  CLI::App* train = root.add_subcommand(
      "train", "Train a model as the config says (writes TRAIN.OUTPUT_DIR/RUN_NAME/)");
  train->add_option("-c,--config", args->file, "Config file")->required();
  train->add_option("--set", args->overrides, "Override a key: KEY=VALUE (repeatable)")
      ->type_name("KEY=VALUE");
  train
      ->add_option("--stop-after", args->stop_after,
                   "Stop after N optimiser steps of this invocation, with a checkpoint, as if "
                   "interrupted (resume with checkpoint.resume=latest)")
      ->check(CLI::NonNegativeNumber);
  train->add_flag("--check-syncs", args->check_syncs,
                  "Fail when a step makes the host wait for the GPU outside logging, evaluation "
                  "and checkpoint steps (CUDA's sync debug mode; CUDA builds)");
  registry.add(train, [args] {
    const config::Config config = load_config(args->file, args->overrides);
    train::TrainOptions options;
    options.default_run_name = std::filesystem::path(args->file).stem().string();
    options.stop_after = args->stop_after;
    options.check_host_syncs = args->check_syncs;
    const train::TrainResult result = train::train(config, options);
    if (result.rank != 0) {  // rank 0 reports for the job
      return;
    }
    if (result.already_complete) {
      std::cout << fmt::format("run: {}\nsteps: {} (already complete)\ncheckpoint: {}\n",
                               result.run_dir, result.steps, result.last_checkpoint);
      return;
    }
    std::cout << fmt::format("run: {}\nsteps: {}\nlast loss: {:.4f}\ncheckpoint: {}\n",
                             result.run_dir, result.steps, result.last_loss,
                             result.last_checkpoint);
    if (!result.final_eval.empty()) {
      print_eval_table(result.final_eval);
    }
    std::cout << "report: " << result.report << "\n";
  });
}

}  // namespace duet::cli
