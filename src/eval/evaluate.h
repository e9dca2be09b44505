#pragma once
// Evaluation of a ClipModel: zero-shot classification and image-text retrieval both ways, as
// configured in config.eval. Used during training, at its end, and by `duet eval`.
//
// Zero-shot: every class name is put into every prompt template; the text embeddings of a
// class are averaged and re-normalised; an image's prediction is the class of highest cosine
// similarity. top-1 / top-5 accuracy over the labelled set.
// Retrieval: captions are compared as strings, so a dataset whose captions repeat (Fashion-MNIST
// prompts) counts every image with the same caption as a correct answer: the gallery of texts is
// the set of distinct captions, and an image query's rank is 1 + the number of distinct captions
// scoring strictly higher than its own; a text query's rank is 1 + the number of images with a
// different caption scoring strictly higher than the best image with that caption. Text queries
// are weighted by how many samples carry the caption. R@K = share of queries with rank <= K.
// Benchmarks (eval.benchmarks, `duet eval --dataset`): CLIP_benchmark datasets with its metric
// names and definitions (benchmark_metrics.h), one result per dataset split.
// With an EvalShard of several ranks, each rank embeds its share and every rank returns the
// full result (eval_shard.h); every rank must call evaluate.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <torch/types.h>
#include <nlohmann/json.hpp>

#include "config/config.h"
#include "data/clip_benchmark_dataset.h"
#include "eval/benchmark_metrics.h"
#include "eval/eval_details.h"
#include "eval/eval_shard.h"

namespace duet::models {
class ClipModelImpl;
}
namespace duet::text {
class Tokenizer;
}

namespace duet::eval {

struct ZeroShotResult {
  double top1 = 0.0;
  double top5 = 0.0;
  int64_t samples = 0;
  int64_t classes = 0;
  double mean_per_class_recall = 0.0;
  ClassificationDetails details;
};

struct RankStats {
  double r1 = 0.0;
  double r5 = 0.0;
  double r10 = 0.0;
  double mean_rank = 0.0;
  double median_rank = 0.0;
};

struct RetrievalResult {
  RankStats image_to_text;
  RankStats text_to_image;
  int64_t samples = 0;
  int64_t distinct_captions = 0;
  RetrievalDetails details;
};

// One CLIP_benchmark dataset split.
struct BenchmarkResult {
  std::string name;  // "BASENAME/SPLIT"
  data::BenchmarkTask task = data::BenchmarkTask::kClassification;
  MetricList metrics;  // CLIP_benchmark's names and order
  // duet's extras: class-level retrieval (image_to_text_r1, ...) of a classification set whose
  // samples all carry a .txt caption: the texts are the distinct captions, and a query's right
  // answers are the items of its class. Not part of CLIP_benchmark's result object.
  MetricList extra_metrics;
  int64_t samples = 0;
  std::optional<ClassificationDetails> classification;
  std::optional<RetrievalDetails> retrieval;
};

// Whether a metric (its name after the last '/') is a share shown as a percentage: accuracies,
// recalls, precisions, shares and R@k ("..._r5"); ranks and sample counts are plain numbers.
// `duet eval`'s table and the run report both show metrics this way.
bool is_fraction_metric(const std::string& name);

struct EvalResult {
  std::optional<ZeroShotResult> zero_shot;
  std::optional<RetrievalResult> retrieval;
  std::vector<BenchmarkResult> benchmarks;

  bool empty() const { return !zero_shot && !retrieval && benchmarks.empty(); }
  // Flat keys: zero_shot_top1, zero_shot_top5, zero_shot_mean_per_class_recall, image_to_text_r1,
  // ..., text_to_image_median_rank, and NAME/SPLIT/METRIC for each benchmark (NaN as null).
  nlohmann::json to_json() const;
};

// What a benchmark evaluation needs besides the model.
struct BenchmarkOptions {
  config::DataConfig data;  // normalisation and decoding threads
  int64_t batch_size = 256;
  int64_t image_size = 224;
  int64_t context_length = 77;
  std::vector<int64_t> recall_k = {5};
};

// recall_k during training: R@1, R@5, R@10.
BenchmarkOptions benchmark_options(const config::Config& config);

// Ranks for retrieval from unit-norm embeddings: images [N, E] with caption ids [N] into
// texts [U, E] (distinct captions). Exposed for tests.
RetrievalResult rank_retrieval(const torch::Tensor& images, const torch::Tensor& caption_ids,
                               const torch::Tensor& texts);

// Runs what config.eval names (zero-shot when eval.zero_shot.source is set, retrieval when
// eval.retrieval lists sources, each of eval.benchmarks). The model is put in eval mode and
// restored afterwards.
EvalResult evaluate(models::ClipModelImpl& model, const text::Tokenizer& tokenizer,
                    const config::Config& config, const torch::Device& device,
                    const EvalShard& shard = {});

// One CLIP_benchmark dataset split, as `clip_benchmark eval` would evaluate it.
BenchmarkResult evaluate_benchmark(models::ClipModelImpl& model, const text::Tokenizer& tokenizer,
                                   const data::ClipBenchmarkDataset& dataset,
                                   const BenchmarkOptions& options, const torch::Device& device,
                                   const EvalShard& shard = {});

// CLIP_benchmark's result object ({dataset, model, pretrained, task, metrics, language}), the
// file `clip_benchmark eval --output` writes and `clip_benchmark build` merges.
nlohmann::json clip_benchmark_result(const BenchmarkResult& result, const std::string& dataset,
                                     const std::string& model, const std::string& pretrained,
                                     const std::string& language = "en");

}  // namespace duet::eval
