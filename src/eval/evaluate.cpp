#include "eval/evaluate.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <numeric>

#include <torch/torch.h>

#include "common/error.h"
#include "common/logging.h"
#include "data/loader.h"
#include "data/zero_shot_prompts.h"
#include "models/clip_model.h"
#include "text/tokenizer.h"

namespace duet::eval {
namespace {

// Restores the model's training mode on scope exit.
class EvalMode {
 public:
  explicit EvalMode(models::ClipModelImpl& model)
      : model_(model), was_training_(model.is_training()) {
    model_.train(false);
  }
  ~EvalMode() { model_.train(was_training_); }
  EvalMode(const EvalMode&) = delete;
  EvalMode& operator=(const EvalMode&) = delete;

 private:
  models::ClipModelImpl& model_;
  bool was_training_;
};

torch::Tensor tokenize_all(const text::Tokenizer& tokenizer, const std::vector<std::string>& texts,
                           int64_t context_length) {
  auto tokens = torch::empty({static_cast<int64_t>(texts.size()), context_length}, torch::kInt64);
  auto* out = tokens.data_ptr<int64_t>();
  for (size_t i = 0; i < texts.size(); ++i) {
    const auto ids = tokenizer.tokenize(texts[i], context_length);
    std::copy(ids.begin(), ids.end(), out + static_cast<int64_t>(i) * context_length);
  }
  return tokens;
}

// Unit-norm text embeddings [T, E] of `texts`, encoded in batches.
torch::Tensor encode_texts(models::ClipModelImpl& model, const text::Tokenizer& tokenizer,
                           const std::vector<std::string>& texts, int64_t context_length,
                           int64_t batch_size, const torch::Device& device) {
  const torch::Tensor tokens = tokenize_all(tokenizer, texts, context_length);
  std::vector<torch::Tensor> parts;
  for (int64_t start = 0; start < tokens.size(0); start += batch_size) {
    const int64_t end = std::min(tokens.size(0), start + batch_size);
    parts.push_back(
        model.encode_text(tokens.slice(0, start, end).to(device)).to(torch::kFloat32).cpu());
  }
  return torch::cat(parts);
}

RankStats rank_stats(const torch::Tensor& ranks, const torch::Tensor& weights) {
  // ranks, weights: [Q] float64, ranks 1-based.
  const double total = weights.sum().item<double>();
  auto recall = [&](double k) { return (weights * (ranks <= k)).sum().item<double>() / total; };
  RankStats stats;
  stats.r1 = recall(1);
  stats.r5 = recall(5);
  stats.r10 = recall(10);
  stats.mean_rank = (weights * ranks).sum().item<double>() / total;
  // Weighted median: the smallest rank whose cumulative weight reaches half.
  const auto order = ranks.argsort();
  const auto cumulative = weights.index_select(0, order).cumsum(0);
  const int64_t at = (cumulative < total / 2.0).sum().item<int64_t>();
  stats.median_rank = ranks.index_select(0, order)[std::min(at, ranks.size(0) - 1)].item<double>();
  return stats;
}

// Unit-norm embeddings [T, E] of `texts`, each rank encoding its contiguous share, gathered in
// text order.
torch::Tensor encode_texts_sharded(models::ClipModelImpl& model, const text::Tokenizer& tokenizer,
                                   const std::vector<std::string>& texts, int64_t context_length,
                                   int64_t batch_size, const torch::Device& device,
                                   const EvalShard& shard) {
  const auto [begin, end] = shard_range(shard, static_cast<int64_t>(texts.size()));
  const std::vector<std::string> mine(texts.begin() + begin, texts.begin() + end);
  const torch::Tensor local =
      mine.empty() ? torch::empty({0, model.config().embed_dim})
                   : encode_texts(model, tokenizer, mine, context_length, batch_size, device);
  return gather_rows(shard, local);
}

// [C, E] class embeddings from prompts[c] (every template filled with class c's name), each
// rank encoding a contiguous share of the classes.
torch::Tensor class_embeddings_sharded(models::ClipModelImpl& model,
                                       const text::Tokenizer& tokenizer,
                                       const std::vector<std::vector<std::string>>& prompts,
                                       int64_t context_length, int64_t batch_size,
                                       const torch::Device& device, const EvalShard& shard) {
  const auto [begin, end] = shard_range(shard, static_cast<int64_t>(prompts.size()));
  std::vector<torch::Tensor> classes;
  for (int64_t c = begin; c < end; ++c) {
    const torch::Tensor per_template = encode_texts(
        model, tokenizer, prompts[static_cast<size_t>(c)], context_length, batch_size, device);
    classes.push_back(torch::nn::functional::normalize(
        per_template.mean(0), torch::nn::functional::NormalizeFuncOptions().dim(0)));
  }
  const torch::Tensor local =
      classes.empty() ? torch::empty({0, model.config().embed_dim}) : torch::stack(classes);
  return gather_rows(shard, local);
}

// Gathered image embeddings of a loader's samples, with their labels, keys and captions.
struct ImageRows {
  torch::Tensor embeddings;  // [N, E] float32, unit norm
  torch::Tensor labels;      // [N] int64, -1 without a class index
  std::vector<std::string> keys;
  std::vector<std::string> captions;  // only when asked for
};

ImageRows embed_images(models::ClipModelImpl& model, const config::DataConfig& data,
                       data::LoaderOptions options, const torch::Device& device,
                       const EvalShard& shard, bool keep_captions, const std::string& what) {
  options.mode = data::LoaderMode::kEval;
  options.rank = shard.rank;
  options.world_size = shard.world_size;
  data::Loader loader(data, std::move(options));
  std::vector<torch::Tensor> parts;
  std::vector<torch::Tensor> labels;
  ImageRows local;
  while (auto batch = loader.next()) {
    parts.push_back(model.encode_image(batch->images.to(device)).to(torch::kFloat32).cpu());
    labels.push_back(batch->labels);
    local.keys.insert(local.keys.end(), batch->keys.begin(), batch->keys.end());
    if (keep_captions) {
      local.captions.insert(local.captions.end(), batch->captions.begin(), batch->captions.end());
    }
  }
  ImageRows rows;
  rows.embeddings = gather_rows(
      shard, parts.empty() ? torch::empty({0, model.config().embed_dim}) : torch::cat(parts));
  rows.labels =
      gather_rows(shard, labels.empty() ? torch::empty({0}, torch::kInt64) : torch::cat(labels));
  rows.keys = gather_strings(shard, local.keys);
  if (keep_captions) {
    rows.captions = gather_strings(shard, local.captions);
  }
  DUET_CHECK(rows.embeddings.size(0) > 0, "{} has no usable sample", what);
  return rows;
}

data::LoaderOptions image_loader_options(const std::vector<std::string>& sources,
                                         int64_t batch_size, int64_t image_size,
                                         int64_t context_length, bool captions, bool labels) {
  data::LoaderOptions options;
  options.sources = sources;
  options.batch_size = batch_size;
  options.image_size = image_size;
  options.context_length = context_length;
  options.require_captions = captions;
  options.require_labels = labels;
  return options;
}

void check_labels(const torch::Tensor& labels, int64_t classes, const std::string& source,
                  const std::string& classnames) {
  if ((labels >= classes).any().item<bool>() || (labels < 0).any().item<bool>()) {
    fail("labels of '{}' fall outside the {} classes of '{}'", source, classes, classnames);
  }
}

ZeroShotResult zero_shot(models::ClipModelImpl& model, const text::Tokenizer& tokenizer,
                         const config::Config& config, const torch::Device& device,
                         const EvalShard& shard) {
  const auto& zs = config.eval.zero_shot;
  const data::ZeroShotPrompts prompts = data::read_zero_shot_prompts(zs.classnames, zs.templates);
  const torch::Tensor classes = class_embeddings_sharded(
      model, tokenizer, prompts.prompts(), config.model.text.context_length, config.eval.batch_size,
      device, shard);  // [C, E]
  const int64_t num_classes = classes.size(0);
  const ImageRows rows = embed_images(
      model, config.data,
      image_loader_options({zs.source}, config.eval.batch_size, config.model.vision.image_size,
                           config.model.text.context_length, false, true),
      device, shard, false, fmt::format("eval.zero_shot.source '{}'", zs.source));
  try {
    check_labels(rows.labels, num_classes, zs.source, zs.classnames);
  } catch (const Error& e) {
    fail("eval.zero_shot: {}", e.what());
  }
  const ClassificationScores scores =
      classification_scores(rows.embeddings.matmul(classes.t()), rows.labels);
  ZeroShotResult result;
  result.classes = num_classes;
  result.samples = rows.labels.size(0);
  result.top1 = scores.acc1;
  result.top5 = num_classes >= 5 ? scores.acc5 : 1.0;  // top-5 of fewer classes: all of them
  result.mean_per_class_recall = scores.mean_per_class_recall;
  result.details = classification_details(prompts.classnames, scores.confusion, scores.predictions,
                                          rows.labels, rows.keys);
  return result;
}

// Caption-level retrieval (see evaluate.h) over gathered, captioned image rows.
RetrievalResult caption_retrieval(models::ClipModelImpl& model, const text::Tokenizer& tokenizer,
                                  const ImageRows& rows, int64_t context_length, int64_t batch_size,
                                  const torch::Device& device, const EvalShard& shard) {
  std::vector<int64_t> caption_ids;
  std::map<std::string, int64_t> caption_index;
  std::vector<std::string> distinct;
  for (const auto& caption : rows.captions) {
    auto [it, inserted] = caption_index.emplace(caption, static_cast<int64_t>(distinct.size()));
    if (inserted) {
      distinct.push_back(caption);
    }
    caption_ids.push_back(it->second);
  }
  const torch::Tensor texts =
      encode_texts_sharded(model, tokenizer, distinct, context_length, batch_size, device, shard);
  RetrievalResult result =
      rank_retrieval(rows.embeddings, torch::tensor(caption_ids, torch::kInt64), texts);
  result.details.image_to_text_median_rank = result.image_to_text.median_rank;
  result.details.text_to_image_median_rank = result.text_to_image.median_rank;
  result.details.queries = retrieval_queries(
      distinct, texts, rows.embeddings, rows.keys,
      [&](int64_t t, int64_t n) { return caption_ids[static_cast<size_t>(n)] == t; });
  return result;
}

// Class-level retrieval over captioned, labelled rows: the texts are the distinct captions,
// each in the class of the first image carrying it, and a query's right answers are the items
// of its class ("a bag on the left and a trouser on the right." finds every bag-trouser image,
// whichever phrasing it was captioned with). Text queries weigh as many as their images.
RetrievalResult class_retrieval(models::ClipModelImpl& model, const text::Tokenizer& tokenizer,
                                const ImageRows& rows, int64_t context_length, int64_t batch_size,
                                const torch::Device& device, const EvalShard& shard) {
  std::vector<int64_t> caption_ids;
  std::vector<int64_t> text_class;
  std::map<std::string, int64_t> caption_index;
  std::vector<std::string> distinct;
  const torch::Tensor labels = rows.labels.contiguous();
  const auto* label = labels.data_ptr<int64_t>();
  for (size_t n = 0; n < rows.captions.size(); ++n) {
    auto [it, inserted] =
        caption_index.emplace(rows.captions[n], static_cast<int64_t>(distinct.size()));
    if (inserted) {
      distinct.push_back(rows.captions[n]);
      text_class.push_back(label[n]);
    }
    caption_ids.push_back(it->second);
  }
  const torch::Tensor texts =
      encode_texts_sharded(model, tokenizer, distinct, context_length, batch_size, device, shard);
  const torch::Tensor classes = torch::tensor(text_class, torch::kInt64);
  const RetrievalRanks ranks = group_ranks(rows.embeddings, labels, texts, classes);
  const auto u = static_cast<int64_t>(distinct.size());
  RetrievalResult result;
  result.samples = rows.embeddings.size(0);
  result.distinct_captions = u;
  result.image_to_text =
      rank_stats(ranks.text_ranks, torch::ones({result.samples}, torch::kFloat64));
  result.text_to_image = rank_stats(
      ranks.image_ranks,
      torch::bincount(torch::tensor(caption_ids, torch::kInt64), {}, u).to(torch::kFloat64));
  result.details.image_to_text_median_rank = result.image_to_text.median_rank;
  result.details.text_to_image_median_rank = result.text_to_image.median_rank;
  result.details.queries = retrieval_queries(
      distinct, texts, rows.embeddings, rows.keys,
      [&](int64_t t, int64_t n) { return label[n] == text_class[static_cast<size_t>(t)]; });
  return result;
}

// image_to_text_r1, ..., text_to_image_median_rank: the flat keys of a RetrievalResult.
MetricList retrieval_metrics(const RetrievalResult& r) {
  MetricList metrics;
  for (const auto& [prefix, stats] :
       {std::pair<std::string, const RankStats*>{"image_to_text", &r.image_to_text},
        std::pair<std::string, const RankStats*>{"text_to_image", &r.text_to_image}}) {
    metrics.emplace_back(prefix + "_r1", stats->r1);
    metrics.emplace_back(prefix + "_r5", stats->r5);
    metrics.emplace_back(prefix + "_r10", stats->r10);
    metrics.emplace_back(prefix + "_mean_rank", stats->mean_rank);
    metrics.emplace_back(prefix + "_median_rank", stats->median_rank);
  }
  return metrics;
}

RetrievalResult retrieval(models::ClipModelImpl& model, const text::Tokenizer& tokenizer,
                          const config::Config& config, const torch::Device& device,
                          const EvalShard& shard) {
  const ImageRows rows =
      embed_images(model, config.data,
                   image_loader_options(config.eval.retrieval, config.eval.batch_size,
                                        config.model.vision.image_size,
                                        config.model.text.context_length, true, false),
                   device, shard, true, "eval.retrieval");
  return caption_retrieval(model, tokenizer, rows, config.model.text.context_length,
                           config.eval.batch_size, device, shard);
}

BenchmarkResult classify_benchmark(models::ClipModelImpl& model, const text::Tokenizer& tokenizer,
                                   const data::ClipBenchmarkDataset& dataset,
                                   const BenchmarkOptions& options, const torch::Device& device,
                                   const EvalShard& shard) {
  const bool multilabel = dataset.task == data::BenchmarkTask::kMultilabel;
  const torch::Tensor classes =
      class_embeddings_sharded(model, tokenizer, data::benchmark_prompts(dataset),
                               options.context_length, options.batch_size, device, shard);
  const int64_t num_classes = classes.size(0);
  const ImageRows rows =
      embed_images(model, options.data,
                   image_loader_options(dataset.shards, options.batch_size, options.image_size,
                                        options.context_length, false, !multilabel),
                   device, shard, true, fmt::format("CLIP_benchmark dataset '{}'", dataset.name));
  const torch::Tensor logits = rows.embeddings.matmul(classes.t());  // [N, C]
  BenchmarkResult result;
  result.name = dataset.name;
  result.task = dataset.task;
  result.samples = logits.size(0);
  if (multilabel) {
    const auto targets = data::read_multilabel_targets(dataset.shards, num_classes);
    torch::Tensor t = torch::zeros({logits.size(0), num_classes}, torch::kUInt8);
    for (size_t i = 0; i < rows.keys.size(); ++i) {
      const auto it = targets.find(rows.keys[i]);
      DUET_CHECK(it != targets.end(), "'{}': multilabel sample without a .npy member",
                 rows.keys[i]);
      std::copy(it->second.begin(), it->second.end(),
                t[static_cast<int64_t>(i)].data_ptr<uint8_t>());
    }
    result.metrics = {{"mean_average_precision", mean_average_precision(logits, t)}};
    return result;
  }
  check_labels(rows.labels, num_classes, dataset.dir + "/" + dataset.split,
               dataset.dir + "/classnames.txt");
  const ClassificationScores scores = classification_scores(logits, rows.labels);
  result.metrics = {{"acc1", scores.acc1},
                    {"acc5", scores.acc5},
                    {"mean_per_class_recall", scores.mean_per_class_recall}};
  result.classification = classification_details(dataset.classnames, scores.confusion,
                                                 scores.predictions, rows.labels, rows.keys);
  // A duet extra beyond CLIP_benchmark: when every sample is captioned (.txt), class-level
  // retrieval between the images and their captions (image_to_text_r1, ...).
  const bool captioned = std::all_of(rows.captions.begin(), rows.captions.end(),
                                     [](const std::string& c) { return !c.empty(); });
  if (captioned) {
    const RetrievalResult r = class_retrieval(model, tokenizer, rows, options.context_length,
                                              options.batch_size, device, shard);
    result.extra_metrics = retrieval_metrics(r);
    result.retrieval = r.details;
  }
  return result;
}

BenchmarkResult retrieve_benchmark(models::ClipModelImpl& model, const text::Tokenizer& tokenizer,
                                   const data::ClipBenchmarkDataset& dataset,
                                   const BenchmarkOptions& options, const torch::Device& device,
                                   const EvalShard& shard) {
  const ImageRows rows =
      embed_images(model, options.data,
                   image_loader_options(dataset.shards, options.batch_size, options.image_size,
                                        options.context_length, true, false),
                   device, shard, true, fmt::format("CLIP_benchmark dataset '{}'", dataset.name));
  // Every caption line is a text of its image; equal strings are encoded once.
  std::vector<std::string> texts;
  std::vector<int64_t> text_image;
  std::vector<int64_t> text_distinct;
  std::map<std::string, int64_t> distinct_index;
  std::vector<std::string> distinct;
  for (size_t n = 0; n < rows.captions.size(); ++n) {
    for (auto& line : data::split_caption_lines(rows.captions[n])) {
      auto [it, inserted] = distinct_index.emplace(line, static_cast<int64_t>(distinct.size()));
      if (inserted) {
        distinct.push_back(line);
      }
      text_distinct.push_back(it->second);
      text_image.push_back(static_cast<int64_t>(n));
      texts.push_back(std::move(line));
    }
  }
  const torch::Tensor distinct_embeddings = encode_texts_sharded(
      model, tokenizer, distinct, options.context_length, options.batch_size, device, shard);
  const torch::Tensor text_embeddings =
      distinct_embeddings.index_select(0, torch::tensor(text_distinct, torch::kInt64));
  const torch::Tensor image_of = torch::tensor(text_image, torch::kInt64);
  const RetrievalRanks ranks = retrieval_ranks(rows.embeddings, text_embeddings, image_of);
  BenchmarkResult result;
  result.name = dataset.name;
  result.task = dataset.task;
  result.samples = rows.embeddings.size(0);
  result.metrics = retrieval_recalls(ranks, options.recall_k);
  RetrievalDetails details;
  details.image_to_text_median_rank = median_rank(ranks.text_ranks);
  details.text_to_image_median_rank = median_rank(ranks.image_ranks);
  details.queries = retrieval_queries(
      texts, text_embeddings, rows.embeddings, rows.keys,
      [&](int64_t t, int64_t n) { return text_image[static_cast<size_t>(t)] == n; });
  result.retrieval = std::move(details);
  return result;
}

}  // namespace

bool is_fraction_metric(const std::string& name) {
  const size_t slash = name.rfind('/');
  const std::string metric = name.substr(slash == std::string::npos ? 0 : slash + 1);
  if (metric.find("rank") != std::string::npos || metric.find("samples") != std::string::npos) {
    return false;
  }
  for (const char* word : {"top", "acc", "recall", "precision", "share"}) {
    if (metric.find(word) != std::string::npos) {
      return true;
    }
  }
  const size_t r = metric.rfind("_r");
  return r != std::string::npos && r + 2 < metric.size() &&
         std::all_of(metric.begin() + static_cast<ptrdiff_t>(r) + 2, metric.end(),
                     [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; });
}

RetrievalResult rank_retrieval(const torch::Tensor& images, const torch::Tensor& caption_ids,
                               const torch::Tensor& texts) {
  const int64_t n = images.size(0);
  const int64_t u = texts.size(0);
  constexpr int64_t kChunk = 1024;  // image rows per [chunk, U] similarity block

  // Image -> text: distinct captions scoring above the image's own caption.
  auto image_ranks = torch::empty({n}, torch::kFloat64);
  // Text -> image: best score of each caption's own images, then images of other captions above.
  auto best_own = torch::full({u}, -std::numeric_limits<float>::infinity(), torch::kFloat32);
  for (int64_t start = 0; start < n; start += kChunk) {
    const int64_t end = std::min(n, start + kChunk);
    const torch::Tensor ids = caption_ids.slice(0, start, end);                // [c]
    const torch::Tensor sims = images.slice(0, start, end).matmul(texts.t());  // [c, U]
    const torch::Tensor own = sims.gather(1, ids.unsqueeze(1));                // [c, 1]
    image_ranks.slice(0, start, end).copy_((sims > own).sum(1).to(torch::kFloat64) + 1.0);
    best_own.scatter_reduce_(0, ids, own.squeeze(1), "amax");
  }
  auto text_ranks = torch::ones({u}, torch::kFloat64);
  for (int64_t start = 0; start < n; start += kChunk) {
    const int64_t end = std::min(n, start + kChunk);
    const torch::Tensor ids = caption_ids.slice(0, start, end);
    const torch::Tensor sims = images.slice(0, start, end).matmul(texts.t());  // [c, U]
    auto above = sims > best_own.unsqueeze(0);
    // An image never outranks the best image of its own caption.
    above.scatter_(1, ids.unsqueeze(1), false);
    text_ranks += above.sum(0).to(torch::kFloat64);
  }
  const torch::Tensor text_weights = torch::bincount(caption_ids, {}, u).to(torch::kFloat64);

  RetrievalResult result;
  result.samples = n;
  result.distinct_captions = u;
  result.image_to_text = rank_stats(image_ranks, torch::ones({n}, torch::kFloat64));
  result.text_to_image = rank_stats(text_ranks, text_weights);
  return result;
}

BenchmarkOptions benchmark_options(const config::Config& config) {
  BenchmarkOptions options;
  options.data = config.data;
  options.batch_size = config.eval.batch_size;
  options.image_size = config.model.vision.image_size;
  options.context_length = config.model.text.context_length;
  options.recall_k = {1, 5, 10};
  return options;
}

BenchmarkResult evaluate_benchmark(models::ClipModelImpl& model, const text::Tokenizer& tokenizer,
                                   const data::ClipBenchmarkDataset& dataset,
                                   const BenchmarkOptions& options, const torch::Device& device,
                                   const EvalShard& shard) {
  torch::NoGradGuard no_grad;
  EvalMode eval_mode(model);
  if (dataset.task == data::BenchmarkTask::kRetrieval) {
    return retrieve_benchmark(model, tokenizer, dataset, options, device, shard);
  }
  return classify_benchmark(model, tokenizer, dataset, options, device, shard);
}

EvalResult evaluate(models::ClipModelImpl& model, const text::Tokenizer& tokenizer,
                    const config::Config& config, const torch::Device& device,
                    const EvalShard& shard) {
  torch::NoGradGuard no_grad;
  EvalMode eval_mode(model);
  EvalResult result;
  if (!config.eval.zero_shot.source.empty()) {
    result.zero_shot = zero_shot(model, tokenizer, config, device, shard);
  }
  if (!config.eval.retrieval.empty()) {
    result.retrieval = retrieval(model, tokenizer, config, device, shard);
  }
  const BenchmarkOptions options = benchmark_options(config);
  for (const auto& spec : config.eval.benchmarks) {
    const data::ClipBenchmarkDataset dataset = data::read_clip_benchmark_spec(spec);
    result.benchmarks.push_back(
        evaluate_benchmark(model, tokenizer, dataset, options, device, shard));
  }
  return result;
}

namespace {

// JSON numbers, with NaN (acc5 of fewer than 5 classes) as null.
nlohmann::json number(double value) {
  return std::isfinite(value) ? nlohmann::json(value) : nlohmann::json(nullptr);
}

}  // namespace

nlohmann::json EvalResult::to_json() const {
  nlohmann::json j = nlohmann::json::object();
  if (zero_shot) {
    j["zero_shot_top1"] = zero_shot->top1;
    j["zero_shot_top5"] = zero_shot->top5;
    j["zero_shot_mean_per_class_recall"] = zero_shot->mean_per_class_recall;
    j["zero_shot_samples"] = zero_shot->samples;
  }
  if (retrieval) {
    for (const auto& [name, value] : retrieval_metrics(*retrieval)) {
      j[name] = value;
    }
    j["retrieval_samples"] = retrieval->samples;
  }
  for (const auto& b : benchmarks) {
    for (const auto& [name, value] : b.metrics) {
      j[b.name + "/" + name] = number(value);
    }
    for (const auto& [name, value] : b.extra_metrics) {
      j[b.name + "/" + name] = number(value);
    }
    j[b.name + "/samples"] = b.samples;
  }
  return j;
}

nlohmann::json clip_benchmark_result(const BenchmarkResult& result, const std::string& dataset,
                                     const std::string& model, const std::string& pretrained,
                                     const std::string& language) {
  nlohmann::json metrics = nlohmann::json::object();
  for (const auto& [name, value] : result.metrics) {
    metrics[name] = number(value);
  }
  return {{"dataset", dataset},       {"model", model},
          {"pretrained", pretrained}, {"task", data::benchmark_task_name(result.task)},
          {"metrics", metrics},       {"language", language}};
}

}  // namespace duet::eval
