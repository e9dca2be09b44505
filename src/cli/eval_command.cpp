// `duet eval`: evaluates a checkpoint either as its config's eval section says, or, with
// --dataset, on one CLIP_benchmark dataset split with CLIP_benchmark's metric names, optionally
// writing CLIP_benchmark's result object (--output) so `clip_benchmark build` merges it with
// other tools' rows.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>

#include <torch/torch.h>
#include <CLI/CLI.hpp>

#include "cli/app.h"
#include "common/error.h"
#include "common/logging.h"
#include "config/loader.h"
#include "data/clip_benchmark_dataset.h"
#include "eval/evaluate.h"
#include "export/model_io.h"
#include "models/clip_model.h"
#include "text/tokenizer.h"
#include "train/checkpoint_store.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

namespace duet::cli {
namespace {

namespace fs = std::filesystem;

void print_metric_rows(const nlohmann::json& values) {
  size_t width = 28;
  for (const auto& [name, value] : values.items()) {
    width = std::max(width, name.size());
  }
  std::cout << fmt::format("| {:<{}} | {:>9} |\n| {:-<{}} | {:->9} |\n", "metric", width, "value",
                           "", width, "");
  for (const auto& [name, value] : values.items()) {
    std::string shown = value.dump();
    if (value.is_number_float()) {
      shown = eval::is_fraction_metric(name) ? fmt::format("{:.2f}%", 100.0 * value.get<double>())
                                : fmt::format("{:.2f}", value.get<double>());
    } else if (value.is_null()) {
      shown = "n/a";
    }
    std::cout << fmt::format("| {:<{}} | {:>9} |\n", name, width, shown);
  }
}

struct EvalArgs {
  std::string file;
  std::string checkpoint;
  std::vector<std::string> overrides;
  bool json = false;
  // --dataset mode
  std::string dataset;
  std::string split = "test";
  std::vector<int64_t> recall_k = {5};
  std::string output;
  std::string model_name;
  std::string pretrained;
  std::string dataset_name;
  int64_t batch_size = 0;
};

// The config: -c (with --set), else the one stored in a duet checkpoint (validated; the result
// goes to `validated` when given, so the weights load without reading the checkpoint twice).
config::Config eval_config(const EvalArgs& args, std::optional<train::CheckpointInfo>* validated) {
  if (!args.file.empty()) {
    return load_config(args.file, args.overrides);
  }
  if (!args.overrides.empty()) {
    fail(ErrorKind::kUsage, "--set needs -c CONFIG (the checkpoint's own config is used as is)");
  }
  if (!train::is_checkpoint_dir(args.checkpoint)) {
    fail(ErrorKind::kUsage,
         "-c CONFIG is required unless --checkpoint is a duet checkpoint directory (which "
         "stores its config)");
  }
  const train::CheckpointInfo info = train::CheckpointStore::validate(args.checkpoint);
  const config::Config config = train::load_checkpoint_config(info);
  if (validated != nullptr) {
    *validated = info;
  }
  log::apply_config_level(config.logging.level);
  return config;
}

void run_benchmark(const EvalArgs& args) {
  const data::ClipBenchmarkDataset dataset =
      data::read_clip_benchmark_dataset(args.dataset, args.split);
  std::optional<train::CheckpointInfo> checkpoint;
  const config::Config config = eval_config(args, &checkpoint);
  const auto tokenizer = text::make_tokenizer(config.tokenizer);
  models::ClipModel model(config.model, tokenizer->info());
  if (checkpoint) {
    export_::load_weights(*model, *checkpoint);
  } else {
    export_::load_weights(*model, args.checkpoint);
  }
  const torch::Device device = train::inference_device(config.train.device);
  model->to(device);

  eval::BenchmarkOptions options = eval::benchmark_options(config);
  options.recall_k = args.recall_k;
  if (args.batch_size > 0) {
    options.batch_size = args.batch_size;
  }
  const eval::BenchmarkResult result =
      eval::evaluate_benchmark(*model, *tokenizer, dataset, options, device);
  const std::string dataset_name = args.dataset_name.empty()
                                       ? "wds/" + dataset.name.substr(0, dataset.name.rfind('/'))
                                       : args.dataset_name;
  const std::string model_name = args.model_name.empty()
                                     ? (config.model.name.empty() ? "duet" : config.model.name)
                                     : args.model_name;
  const std::string pretrained = args.pretrained.empty() ? args.checkpoint : args.pretrained;
  const nlohmann::json object =
      eval::clip_benchmark_result(result, dataset_name, model_name, pretrained);
  if (!args.output.empty()) {
    const fs::path parent = fs::path(args.output).parent_path();
    if (!parent.empty()) {
      fs::create_directories(parent);
    }
    std::ofstream out(args.output, std::ios::binary | std::ios::trunc);
    out << object.dump() << "\n";
    DUET_CHECK(out.good(), "cannot write '{}'", args.output);
  }
  if (args.json) {
    std::cout << object.dump() << "\n";
    return;
  }
  std::cout << fmt::format("{} ({}, {} samples, split {})\n", dataset_name,
                           object["task"].get<std::string>(), result.samples, args.split);
  print_metric_rows(object["metrics"]);
  if (!result.extra_metrics.empty()) {
    std::cout << "duet's class-level retrieval on the same images (not in the result file):\n";
    nlohmann::json extras = nlohmann::json::object();
    for (const auto& [name, value] : result.extra_metrics) {
      extras[name] = value;
    }
    print_metric_rows(extras);
  }
  if (!args.output.empty()) {
    std::cout << "wrote " << args.output << "\n";
  }
}

}  // namespace

void print_eval_table(const eval::EvalResult& result) {
  if (result.empty()) {
    std::cout << "nothing to evaluate: set eval.zero_shot, eval.retrieval and/or eval.benchmarks\n";
    return;
  }
  print_metric_rows(result.to_json());
}

void add_eval_command(CLI::App& root, Registry& registry) {
  auto args = std::make_shared<EvalArgs>();
  CLI::App* eval = root.add_subcommand(
      "eval",
      "Evaluate a checkpoint: as config.eval says, or on a CLIP_benchmark dataset (--dataset)");
  eval->add_option("-c,--config", args->file,
                   "Config file (default: the config stored in the checkpoint)");
  eval->add_option("--checkpoint", args->checkpoint,
                   "Checkpoint directory (step-NNNNNNNN); with -c also a transformers or OpenCLIP "
                   "export or a .safetensors file")
      ->required();
  eval->add_option("--set", args->overrides, "Override a key: KEY=VALUE (repeatable)")
      ->type_name("KEY=VALUE");
  eval->add_flag("--json", args->json, "Print one JSON object instead of a table");
  eval->add_option("--dataset", args->dataset,
                   "A CLIP_benchmark WebDataset directory (SPLIT/nshards.txt, SPLIT/0.tar, ..., "
                   "classnames.txt, zeroshot_classification_templates.txt, dataset_type.txt)")
      ->type_name("DIR");
  eval->add_option("--split", args->split, "Split of --dataset")->capture_default_str();
  eval->add_option("--recall-k", args->recall_k, "k of the retrieval recall@k (repeatable)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  eval->add_option("--output", args->output,
                   "Write CLIP_benchmark's result JSON here (with --dataset)")
      ->type_name("FILE");
  eval->add_option("--model", args->model_name,
                   "The result's \"model\" (default: model.name of the config)");
  eval->add_option("--pretrained", args->pretrained,
                   "The result's \"pretrained\" (default: the --checkpoint path)");
  eval->add_option("--dataset-name", args->dataset_name,
                   "The result's \"dataset\" (default: wds/ and the directory's name)");
  eval->add_option("--batch-size", args->batch_size, "Batch size (default: eval.batch_size)")
      ->check(CLI::PositiveNumber);
  registry.add(eval, [args] {
    if (!args->dataset.empty()) {
      run_benchmark(*args);
      return;
    }
    if (!args->output.empty()) {
      fail(ErrorKind::kUsage, "--output writes a CLIP_benchmark result and needs --dataset DIR");
    }
    std::optional<config::Config> config;  // null: the checkpoint's own, evaluate_checkpoint's
    if (!args->file.empty() || !args->overrides.empty()) {
      config = eval_config(*args, nullptr);  // -c, or the error for --set without it
    }
    const eval::EvalResult result = train::evaluate_checkpoint(args->checkpoint, config);
    if (args->json) {
      std::cout << result.to_json().dump() << "\n";
    } else {
      print_eval_table(result);
    }
  });
}

}  // namespace duet::cli
