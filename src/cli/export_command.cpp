// `duet export`, `duet embed` and `duet retrieve`: a model (from a checkpoint, an export, or a
// config's own initialisation) written for other tools, turned into embedding files, or queried
// against one.
#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cli/app.h"
#include "common/error.h"
#include "common/logging.h"
#include "config/loader.h"
#include "data/loader.h"
#include "export/model_io.h"
#include "export/npy.h"
#include "models/clip_model.h"
#include "text/tokenizer.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

namespace fs = std::filesystem;

namespace duet::cli {
namespace {

// Where a command's model comes from: -c/--set and/or --checkpoint.
struct ModelArgs {
  std::string config_file;
  std::vector<std::string> overrides;
  std::string checkpoint;
};

void add_model_args(CLI::App* command, ModelArgs& args) {
  command->add_option("-c,--config", args.config_file,
                      "Config file (default: the config stored in a duet --checkpoint)");
  command->add_option("--set", args.overrides, "Override a config key: KEY=VALUE (repeatable)")
      ->type_name("KEY=VALUE");
  command->add_option("--checkpoint", args.checkpoint,
                      "Weights: a duet checkpoint directory, a transformers or OpenCLIP export "
                      "directory, or a .safetensors file (default: the config's model.init_from, "
                      "else its seeded random initialisation)");
}

struct LoadedModel {
  config::Config config;
  std::shared_ptr<const text::Tokenizer> tokenizer;
  models::ClipModel model{nullptr};
};

LoadedModel load_model(const ModelArgs& args) {
  LoadedModel loaded;
  std::optional<train::CheckpointInfo> checkpoint;
  if (train::is_checkpoint_dir(args.checkpoint)) {
    checkpoint = train::CheckpointStore::validate(args.checkpoint);
  }
  if (!args.config_file.empty()) {
    loaded.config = config::load(args.config_file, args.overrides);
  } else if (checkpoint) {
    loaded.config = train::load_checkpoint_config(*checkpoint, args.overrides);
  } else {
    fail(ErrorKind::kUsage,
         "-c CONFIG is required unless --checkpoint is a duet checkpoint directory (which stores "
         "its config)");
  }
  loaded.tokenizer = text::make_tokenizer(loaded.config.tokenizer);
  torch::manual_seed(static_cast<uint64_t>(loaded.config.train.seed));
  loaded.model = models::ClipModel(loaded.config.model, loaded.tokenizer->info());
  if (!args.checkpoint.empty()) {
    // To the CPU, wherever it was written; a duet checkpoint is validated once (above).
    if (checkpoint) {
      export_::load_weights(*loaded.model, *checkpoint);
    } else {
      export_::load_weights(*loaded.model, args.checkpoint);
    }
  } else {
    export_::prepare_model(*loaded.model, loaded.config.model);
  }
  loaded.model->eval();
  return loaded;
}

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    fail("cannot open '{}'", path);
  }
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') {
      line.pop_back();
    }
    lines.push_back(line);
  }
  return lines;
}

void write_lines(const std::string& path, const std::vector<std::string>& lines) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  for (const auto& line : lines) {
    out << line << '\n';
  }
  if (!out) {
    fail("cannot write '{}'", path);
  }
}

// "dir/emb.npy" -> "dir/emb.ids.txt"
std::string default_ids_path(const std::string& npy) {
  fs::path p(npy);
  if (p.extension() == ".npy") {
    p.replace_extension("");
  }
  return p.string() + ".ids.txt";
}

// Token ids [N, L] for `texts`.
torch::Tensor tokenize_all(const text::Tokenizer& tokenizer, const std::vector<std::string>& texts,
                           int64_t context_length) {
  torch::Tensor tokens =
      torch::empty({static_cast<int64_t>(texts.size()), context_length}, torch::kLong);
  for (size_t i = 0; i < texts.size(); ++i) {
    const std::vector<int64_t> ids = tokenizer.tokenize(texts[i], context_length);
    std::copy(ids.begin(), ids.end(), tokens[static_cast<int64_t>(i)].data_ptr<int64_t>());
  }
  return tokens;
}

torch::Tensor encode_texts(LoadedModel& m, const std::vector<std::string>& texts,
                           int64_t batch_size, const torch::Device& device) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> out;
  const int64_t context = m.config.model.text.context_length;
  for (size_t start = 0; start < texts.size(); start += static_cast<size_t>(batch_size)) {
    const size_t end = std::min(texts.size(), start + static_cast<size_t>(batch_size));
    const std::vector<std::string> chunk(texts.begin() + static_cast<std::ptrdiff_t>(start),
                                         texts.begin() + static_cast<std::ptrdiff_t>(end));
    out.push_back(m.model->encode_text(tokenize_all(*m.tokenizer, chunk, context).to(device))
                      .to(torch::kCPU, torch::kFloat));
  }
  if (out.empty()) {
    return torch::empty({0, m.config.model.embed_dim});
  }
  return torch::cat(out);
}

void add_export(CLI::App& root, Registry& registry) {
  struct Args {
    ModelArgs model;
    std::string format;
    std::string dtype;
    std::string out;
  };
  auto args = std::make_shared<Args>();
  CLI::App* command = root.add_subcommand(
      "export",
      "Write a model for other tools: a transformers CLIPModel/SiglipModel directory (hf), an "
      "OpenCLIP directory (open_clip) or one .safetensors file with duet's names (safetensors)");
  add_model_args(command, args->model);
  command
      ->add_option("--format", args->format,
                   "hf, open_clip or safetensors (default: export.format)")
      ->check(CLI::IsMember({"hf", "open_clip", "safetensors"}));
  command
      ->add_option("--dtype", args->dtype, "float32, float16 or bfloat16 (default: export.dtype)")
      ->check(CLI::IsMember({"float32", "float16", "bfloat16"}));
  command
      ->add_option("-o,--out", args->out,
                   "Output directory (hf, open_clip) or .safetensors file (safetensors)")
      ->required();
  registry.add(command, [args] {
    LoadedModel m = load_model(args->model);
    const std::string format =
        args->format.empty() ? config::name(m.config.export_.format) : args->format;
    const std::string dtype =
        args->dtype.empty() ? config::name(m.config.export_.dtype) : args->dtype;
    std::vector<std::string> notes;
    const std::vector<std::string> written =
        export_::export_model(*m.model, m.config, *m.tokenizer,
                              export_::parse_format(format, "--format"), dtype, args->out, notes);
    for (const auto& note : notes) {
      log::get("export")->warn("{}", note);
    }
    for (const auto& path : written) {
      std::cout << path << "\n";
    }
  });
}

void add_embed(CLI::App& root, Registry& registry) {
  struct Args {
    ModelArgs model;
    std::vector<std::string> images;
    std::string texts;
    std::string out;
    std::string ids;
    std::string dtype = "float32";
    int64_t batch_size = 0;
  };
  auto args = std::make_shared<Args>();
  CLI::App* command = root.add_subcommand(
      "embed",
      "Write L2-normalised embeddings of images or texts as an [N, E] .npy file with one id per "
      "line beside it (for FAISS and vector databases)");
  add_model_args(command, args->model);
  auto* images = command->add_option(
      "--images", args->images,
      "Image sources: CSV/TSV files or WebDataset shards (brace patterns allowed); ids are "
      "'file.csv:LINE' or 'shard.tar:KEY'");
  auto* texts = command->add_option("--texts", args->texts,
                                    "Text file, one text per line; ids are 0-based line numbers");
  images->excludes(texts);
  command->add_option("-o,--out", args->out, "The .npy file to write")->required();
  command->add_option("--ids", args->ids, "Ids file (default: OUT with .ids.txt for .npy)");
  command->add_option("--dtype", args->dtype, "float32 or float16")
      ->check(CLI::IsMember({"float32", "float16"}))
      ->capture_default_str();
  command->add_option("--batch-size", args->batch_size, "Batch size (default: eval.batch_size)")
      ->check(CLI::PositiveNumber);
  registry.add(command, [args] {
    if (args->images.empty() == args->texts.empty()) {
      fail(ErrorKind::kUsage, "give exactly one of --images SOURCE... and --texts FILE");
    }
    LoadedModel m = load_model(args->model);
    const torch::Device device = train::inference_device(m.config.train.device);
    m.model->to(device);
    const int64_t batch = args->batch_size > 0 ? args->batch_size : m.config.eval.batch_size;
    torch::Tensor embeddings;  // [N, E] float32, CPU
    std::vector<std::string> ids;
    if (!args->texts.empty()) {
      const std::vector<std::string> lines = read_lines(args->texts);
      embeddings = encode_texts(m, lines, batch, device);
      for (size_t i = 0; i < lines.size(); ++i) {
        ids.push_back(std::to_string(i));
      }
    } else {
      data::LoaderOptions options;
      options.sources = args->images;
      options.mode = data::LoaderMode::kEval;
      options.batch_size = batch;
      options.image_size = m.config.model.vision.image_size;
      options.require_captions = false;
      data::Loader loader(m.config.data, options);
      std::vector<torch::Tensor> parts;
      torch::NoGradGuard no_grad;
      while (auto b = loader.next()) {
        parts.push_back(m.model->encode_image(b->images.to(device)).to(torch::kCPU, torch::kFloat));
        ids.insert(ids.end(), b->keys.begin(), b->keys.end());
      }
      embeddings = parts.empty() ? torch::empty({0, m.config.model.embed_dim}) : torch::cat(parts);
    }
    const bool half = args->dtype == "float16";
    torch::Tensor out = embeddings.to(half ? torch::kHalf : torch::kFloat).contiguous();
    const fs::path parent = fs::path(args->out).parent_path();
    if (!parent.empty()) {
      fs::create_directories(parent);
    }
    export_::write_npy(args->out, half ? "<f2" : "<f4", out.sizes().vec(), out.data_ptr());
    const std::string ids_path = args->ids.empty() ? default_ids_path(args->out) : args->ids;
    write_lines(ids_path, ids);
    std::cout << fmt::format("{} embeddings of dimension {} -> {} (ids: {})\n", out.size(0),
                             out.size(1), args->out, ids_path);
  });
}

void add_retrieve(CLI::App& root, Registry& registry) {
  struct Args {
    ModelArgs model;
    std::string embeddings;
    std::string ids;
    std::vector<std::string> queries;
    int64_t top_k = 5;
    bool json = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* command = root.add_subcommand(
      "retrieve",
      "Top-K entries of an image embedding file (duet embed --images) for text queries");
  add_model_args(command, args->model);
  command->add_option("--embeddings", args->embeddings, "The .npy file `duet embed` wrote")
      ->required();
  command->add_option("--ids", args->ids, "Ids file (default: EMBEDDINGS with .ids.txt)");
  command->add_option("-q,--query", args->queries, "Query text (repeatable)")->required();
  command->add_option("-k,--top-k", args->top_k, "Results per query")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  command->add_flag("--json", args->json, "Print one JSON object per query");
  registry.add(command, [args] {
    const export_::NpyArray array = export_::read_npy(args->embeddings);
    const std::string ids_path = args->ids.empty() ? default_ids_path(args->embeddings) : args->ids;
    const std::vector<std::string> ids = read_lines(ids_path);
    if (array.shape.size() != 2) {
      fail("'{}' must hold an [N, E] array, got {} dimensions", args->embeddings,
           array.shape.size());
    }
    const int64_t n = array.shape[0];
    if (static_cast<int64_t>(ids.size()) != n) {
      fail("'{}' has {} ids for {} embeddings in '{}'", ids_path, ids.size(), n, args->embeddings);
    }
    LoadedModel m = load_model(args->model);
    if (array.shape[1] != m.config.model.embed_dim) {
      fail("'{}' holds {}-d embeddings but the model's model.embed_dim is {}", args->embeddings,
           array.shape[1], m.config.model.embed_dim);
    }
    torch::Tensor bank = torch::from_blob(const_cast<char*>(array.data.data()), {n, array.shape[1]},
                                          array.descr == "<f2" ? torch::kHalf : torch::kFloat)
                             .to(torch::kFloat);  // [N, E], a copy
    const torch::Tensor queries = encode_texts(m, args->queries, 256, torch::kCPU);  // [Q, E]
    const torch::Tensor scores = torch::matmul(queries, bank.t());                   // [Q, N]
    const int64_t k = std::min(args->top_k, n);
    const auto [values, index] = scores.topk(k, 1);
    for (size_t q = 0; q < args->queries.size(); ++q) {
      nlohmann::json results = nlohmann::json::array();
      if (!args->json) {
        std::cout << "query: " << args->queries[q] << "\n";
      }
      for (int64_t r = 0; r < k; ++r) {
        const int64_t i = index[static_cast<int64_t>(q)][r].item<int64_t>();
        const double score = values[static_cast<int64_t>(q)][r].item<double>();
        if (args->json) {
          results.push_back({{"rank", r + 1},
                             {"score", score},
                             {"index", i},
                             {"id", ids[static_cast<size_t>(i)]}});
        } else {
          std::cout << fmt::format("  {:>3}. {:.4f}  {}\n", r + 1, score,
                                   ids[static_cast<size_t>(i)]);
        }
      }
      if (args->json) {
        std::cout << nlohmann::json{{"query", args->queries[q]}, {"results", results}}.dump()
                  << "\n";
      }
    }
  });
}

}  // namespace

void add_export_command(CLI::App& root, Registry& registry) {
  add_export(root, registry);
  add_embed(root, registry);
  add_retrieve(root, registry);
}

}  // namespace duet::cli
