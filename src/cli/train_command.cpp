// `duet train` and `duet eval`.
#include <filesystem>
#include <iostream>

#include <CLI/CLI.hpp>

#include "cli/app.h"
#include "common/error.h"
#include "common/logging.h"
#include "config/loader.h"
#include "train/trainer.h"

namespace duet::cli {
namespace {

void print_eval_table(const eval::EvalResult& result) {
  if (result.empty()) {
    std::cout << "nothing to evaluate: set eval.zero_shot and/or eval.retrieval\n";
    return;
  }
  std::cout << fmt::format("| {:<28} | {:>9} |\n| {:-<28} | {:->9} |\n", "metric", "value", "", "");
  const nlohmann::json values = result.to_json();
  for (const auto& [name, value] : values.items()) {
    const bool fraction =
        name.find("_r") != std::string::npos || name.find("top") != std::string::npos;
    const std::string shown = value.is_number_float()
                                  ? (fraction && name.find("rank") == std::string::npos
                                         ? fmt::format("{:.2f}%", 100.0 * value.get<double>())
                                         : fmt::format("{:.2f}", value.get<double>()))
                                  : value.dump();
    std::cout << fmt::format("| {:<28} | {:>9} |\n", name, shown);
  }
}

}  // namespace

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
  });

  struct EvalArgs {
    std::string file;
    std::string checkpoint;
    std::vector<std::string> overrides;
    bool json = false;
  };
  auto eval_args = std::make_shared<EvalArgs>();
  CLI::App* eval = root.add_subcommand(
      "eval", "Evaluate a checkpoint: zero-shot classification and retrieval as config.eval says");
  eval->add_option("-c,--config", eval_args->file,
                   "Config file (default: the config stored in the checkpoint)");
  eval->add_option("--checkpoint", eval_args->checkpoint, "Checkpoint directory (step-NNNNNNNN)")
      ->required();
  eval->add_option("--set", eval_args->overrides, "Override a key: KEY=VALUE (repeatable)")
      ->type_name("KEY=VALUE");
  eval->add_flag("--json", eval_args->json, "Print one JSON object instead of a table");
  registry.add(eval, [eval_args] {
    std::optional<config::Config> config;
    if (!eval_args->file.empty()) {
      config = load_config(eval_args->file, eval_args->overrides);
    } else if (!eval_args->overrides.empty()) {
      fail(ErrorKind::kUsage, "--set needs -c CONFIG (the checkpoint's own config is used as is)");
    }
    const eval::EvalResult result = train::evaluate_checkpoint(eval_args->checkpoint, config);
    if (eval_args->json) {
      std::cout << result.to_json().dump() << "\n";
    } else {
      print_eval_table(result);
    }
  });
}

}  // namespace duet::cli
