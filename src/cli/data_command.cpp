// `duet data fashion-mnist`, `duet data inspect` and `duet data bench`: build the default
// dataset, check a source through the loader's own code path, and measure the pipeline.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/app.h"
#include "config/config.h"
#include "data/fashion_mnist.h"
#include "data/loader.h"

namespace duet::cli {
namespace {

// Source-reading options shared by inspect and bench.
struct SourceOptions {
  std::vector<std::string> sources;
  config::DataConfig data;
  int64_t image_size = 224;
  int64_t batch_size = 64;
};

void add_source_options(CLI::App* command, SourceOptions& o) {
  command
      ->add_option("sources", o.sources,
                   "CSV/TSV files, tar shards, brace patterns (shards/{00000..00127}.tar) or "
                   "directories of shards")
      ->required();
  command->add_option("--csv-separator", o.data.csv_separator, "CSV column separator (\\t: tab)")
      ->capture_default_str();
  command->add_option("--csv-img-key", o.data.csv_img_key, "CSV column with image paths")
      ->capture_default_str();
  command->add_option("--csv-caption-key", o.data.csv_caption_key, "CSV column with captions")
      ->capture_default_str();
  command->add_option("--workers", o.data.workers, "Decoding threads (0: the main thread)")
      ->capture_default_str();
  command->add_option("--batch-size", o.batch_size, "Samples per batch")->capture_default_str();
}

std::string reasons_text(const std::map<std::string, int64_t>& by_reason) {
  std::string s;
  for (const auto& [reason, n] : by_reason) {
    s += fmt::format("{}{}: {}", s.empty() ? "" : ", ", reason, n);
  }
  return s;
}

// Captions, keys and paths come from the data as bytes and need not be UTF-8, which
// nlohmann::json::dump would throw on: invalid sequences become U+FFFD instead.
std::string dump_json(const nlohmann::json& j, int indent = -1) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

void run_inspect(const SourceOptions& o, int examples, bool labels, bool json) {
  data::LoaderOptions lo;
  lo.sources = o.sources;
  lo.mode = data::LoaderMode::kEval;
  lo.batch_size = o.batch_size;
  lo.image_size = o.image_size;
  lo.require_captions = !labels;
  lo.require_labels = labels;
  data::Loader loader(o.data, lo);
  nlohmann::json shown = nlohmann::json::array();
  std::map<int64_t, int64_t> classes;
  while (auto batch = loader.next()) {
    for (int64_t i = 0; i < batch->size(); ++i) {
      const int64_t label = batch->labels[i].item<int64_t>();
      if (label >= 0) {
        ++classes[label];
      }
      if (static_cast<int>(shown.size()) < examples) {
        shown.push_back({{"key", batch->keys[static_cast<size_t>(i)]},
                         {"caption", batch->captions[static_cast<size_t>(i)]},
                         {"label", label}});
      }
    }
  }
  const data::LoaderStats s = loader.stats();
  if (json) {
    nlohmann::json j;
    j["sources"] = o.sources;
    j["samples"] = s.samples;
    j["skipped"] = s.skipped;
    j["skipped_by_reason"] = s.skipped_by_reason;
    j["labelled"] = 0;
    for (const auto& [c, n] : classes) {
      j["labelled"] = j["labelled"].get<int64_t>() + n;
      j["classes"][std::to_string(c)] = n;
    }
    j["examples"] = shown;
    j["seconds"] = s.seconds;
    j["samples_per_second"] = s.samples_per_second;
    std::cout << dump_json(j, 2) << "\n";
    return;
  }
  std::cout << fmt::format("samples: {} valid\n", s.samples);
  std::cout << fmt::format("skipped: {}{}\n", s.skipped,
                           s.skipped > 0 ? " (" + reasons_text(s.skipped_by_reason) + ")" : "");
  if (!classes.empty()) {
    std::cout << fmt::format("classes: {} distinct class indices\n", classes.size());
  }
  std::cout << fmt::format("read in {:.1f} s ({:.0f} samples/s)\n", s.seconds,
                           s.samples_per_second);
  if (!shown.empty()) {
    std::cout << "examples:\n";
    for (const auto& e : shown) {
      std::cout << fmt::format("  {}  {}\n", e["key"].get<std::string>(), dump_json(e["caption"]));
    }
  }
}

void run_bench(const SourceOptions& o, int64_t max_samples, bool eval, bool no_dct, bool json) {
  data::LoaderOptions lo;
  lo.sources = o.sources;
  lo.mode = eval ? data::LoaderMode::kEval : data::LoaderMode::kTrain;
  lo.batch_size = o.batch_size;
  lo.image_size = o.image_size;
  lo.jpeg_dct_scaling = !no_dct;
  data::Loader loader(o.data, lo);
  // Time from the first batch to the last, so start-up (and the first fill of the prefetch
  // queue) is not counted; epochs repeat until max_samples.
  int64_t samples = 0;
  int64_t first = -1;
  auto start = std::chrono::steady_clock::now();
  while (samples < max_samples) {
    auto batch = loader.next();
    if (!batch) {
      continue;  // next epoch
    }
    if (first < 0) {
      first = batch->size();
      start = std::chrono::steady_clock::now();
    }
    samples += batch->size();
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double rate = seconds > 0 ? (samples - first) / seconds : 0.0;
  const data::LoaderStats s = loader.stats();
  if (json) {
    nlohmann::json j;
    j["images_per_second"] = rate;
    j["samples"] = samples;
    j["workers"] = o.data.workers;
    j["image_size"] = o.image_size;
    j["mode"] = eval ? "eval" : "train";
    j["dct_scaling"] = !no_dct && !eval;
    j["skipped"] = s.skipped;
    std::cout << j.dump() << "\n";
    return;
  }
  std::cout << fmt::format("{} images/s ({} {} px, {} workers, {} samples, {} skipped)\n",
                           static_cast<int64_t>(rate), eval ? "eval" : "train", o.image_size,
                           o.data.workers, samples, s.skipped);
}

}  // namespace

void add_data_command(CLI::App& root, Registry& registry) {
  CLI::App* data = root.add_subcommand("data", "Build, inspect and benchmark datasets");
  data->require_subcommand(1);

  auto fm = std::make_shared<data::FashionMnistOptions>();
  CLI::App* fashion = data->add_subcommand(
      "fashion-mnist",
      "Write Fashion-MNIST (Debian's dataset-fashion-mnist) as WebDataset shards plus zero-shot "
      "class names and templates");
  fashion->add_option("--out", fm->out_dir, "Output directory")->required();
  fashion
      ->add_option("--layout", fm->layout,
                   "single: one garment per image; pairs: two garments side by side with "
                   "positional captions and held-out pairs")
      ->check(CLI::IsMember({"single", "pairs"}))
      ->capture_default_str();
  fashion->add_option("--idx-dir", fm->idx_dir, "Directory of the IDX files")
      ->capture_default_str();
  fashion->add_option("--shard-size", fm->shard_size, "Samples per shard")->capture_default_str();
  fashion->add_option("--seed", fm->seed, "Seed for captions and pairs")->capture_default_str();
  fashion->add_option("--threads", fm->threads, "Writer threads (0: all cores)")
      ->capture_default_str();
  registry.add(fashion, [fm] {
    const data::FashionMnistSummary s = data::write_fashion_mnist(*fm);
    for (const auto& [name, split] : s.splits) {
      std::cout << fmt::format("{}: {} samples in {} shards: {}\n", name, split.samples,
                               split.shards, split.pattern);
    }
    std::cout << fmt::format("classnames: {}\ntemplates: {}\n", s.classnames, s.templates);
  });

  struct InspectOptions {
    SourceOptions source;
    int examples = 5;
    bool labels = false;
    bool json = false;
  };
  auto io = std::make_shared<InspectOptions>();
  io->source.image_size = 64;
  CLI::App* inspect = data->add_subcommand(
      "inspect", "Read sources through the loader: valid samples, skips by reason, examples");
  add_source_options(inspect, io->source);
  inspect
      ->add_option("--image-size", io->source.image_size,
                   "Size images are decoded and resized to (validation needs the decode, "
                   "not a large resize)")
      ->capture_default_str();
  inspect->add_option("--examples", io->examples, "Example captions to show")
      ->capture_default_str();
  inspect->add_flag("--labels", io->labels,
                    "Check a labelled (zero-shot) set: samples need a class index, not a caption");
  inspect->add_flag("--json", io->json, "Print a JSON object (samples, skipped, ...)");
  registry.add(inspect, [io] { run_inspect(io->source, io->examples, io->labels, io->json); });

  struct BenchOptions {
    SourceOptions source;
    int64_t samples = 2000;
    bool eval = false;
    bool no_dct = false;
    bool json = false;
  };
  auto bo = std::make_shared<BenchOptions>();
  CLI::App* bench = data->add_subcommand(
      "bench", "Measure decode + transform throughput (images/s) of the loader");
  add_source_options(bench, bo->source);
  bench->add_option("--image-size", bo->source.image_size, "Output size")->capture_default_str();
  bench->add_option("--samples", bo->samples, "Samples to read (epochs repeat)")
      ->capture_default_str();
  bench->add_option("--rrc-scale", bo->source.data.rrc_scale, "Random resized crop scale range")
      ->expected(2);
  bench->add_flag("--eval", bo->eval, "Resize + centre crop instead of random resized crop");
  bench->add_flag("--no-dct-scaling", bo->no_dct, "Always decode JPEGs at full size");
  bench->add_flag("--json", bo->json, "Print one JSON line");
  registry.add(bench, [bo] { run_bench(bo->source, bo->samples, bo->eval, bo->no_dct, bo->json); });
}

}  // namespace duet::cli
