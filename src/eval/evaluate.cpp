#include "eval/evaluate.h"

#include <algorithm>
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

ZeroShotResult zero_shot(models::ClipModelImpl& model, const text::Tokenizer& tokenizer,
                         const config::Config& config, const torch::Device& device) {
  const auto& zs = config.eval.zero_shot;
  const data::ZeroShotPrompts prompts = data::read_zero_shot_prompts(zs.classnames, zs.templates);
  const torch::Tensor classes =
      class_embeddings(model, tokenizer, prompts, config.model.text.context_length,
                       config.eval.batch_size, device);  // [C, E]
  const int64_t num_classes = classes.size(0);

  data::LoaderOptions options;
  options.sources = {zs.source};
  options.mode = data::LoaderMode::kEval;
  options.batch_size = config.eval.batch_size;
  options.image_size = config.model.vision.image_size;
  options.context_length = config.model.text.context_length;
  options.require_captions = false;
  options.require_labels = true;
  data::Loader loader(config.data, options);

  ZeroShotResult result;
  result.classes = num_classes;
  int64_t correct1 = 0;
  int64_t correct5 = 0;
  const int64_t k = std::min<int64_t>(5, num_classes);
  while (auto batch = loader.next()) {
    const torch::Tensor labels = batch->labels;  // [B]
    if ((labels >= num_classes).any().item<bool>() || (labels < 0).any().item<bool>()) {
      fail("eval.zero_shot: labels of '{}' fall outside the {} classes of '{}'", zs.source,
           num_classes, zs.classnames);
    }
    const torch::Tensor images =
        model.encode_image(batch->images.to(device)).to(torch::kFloat32).cpu();
    const torch::Tensor top = std::get<1>(images.matmul(classes.t()).topk(k, 1));  // [B, k]
    const torch::Tensor hits = top.eq(labels.unsqueeze(1));
    correct1 += hits.select(1, 0).sum().item<int64_t>();
    correct5 += hits.any(1).sum().item<int64_t>();
    result.samples += labels.size(0);
  }
  DUET_CHECK(result.samples > 0, "eval.zero_shot.source '{}' has no labelled sample", zs.source);
  result.top1 = static_cast<double>(correct1) / static_cast<double>(result.samples);
  result.top5 = static_cast<double>(correct5) / static_cast<double>(result.samples);
  return result;
}

RetrievalResult retrieval(models::ClipModelImpl& model, const text::Tokenizer& tokenizer,
                          const config::Config& config, const torch::Device& device) {
  data::LoaderOptions options;
  options.sources = config.eval.retrieval;
  options.mode = data::LoaderMode::kEval;
  options.batch_size = config.eval.batch_size;
  options.image_size = config.model.vision.image_size;
  options.context_length = config.model.text.context_length;
  data::Loader loader(config.data, options);

  std::vector<torch::Tensor> image_parts;
  std::vector<int64_t> caption_ids;
  std::map<std::string, int64_t> caption_index;
  std::vector<std::string> distinct;
  while (auto batch = loader.next()) {
    image_parts.push_back(model.encode_image(batch->images.to(device)).to(torch::kFloat32).cpu());
    for (const auto& caption : batch->captions) {
      auto [it, inserted] = caption_index.emplace(caption, static_cast<int64_t>(distinct.size()));
      if (inserted) {
        distinct.push_back(caption);
      }
      caption_ids.push_back(it->second);
    }
  }
  DUET_CHECK(!image_parts.empty(), "eval.retrieval: the sources yield no sample");
  const torch::Tensor texts = encode_texts(
      model, tokenizer, distinct, config.model.text.context_length, config.eval.batch_size, device);
  return rank_retrieval(torch::cat(image_parts), torch::tensor(caption_ids, torch::kInt64), texts);
}

}  // namespace

torch::Tensor class_embeddings(models::ClipModelImpl& model, const text::Tokenizer& tokenizer,
                               const data::ZeroShotPrompts& prompts, int64_t context_length,
                               int64_t batch_size, const torch::Device& device) {
  torch::NoGradGuard no_grad;
  EvalMode eval_mode(model);
  std::vector<torch::Tensor> classes;
  for (const auto& class_prompts : prompts.prompts()) {
    const torch::Tensor per_template =
        encode_texts(model, tokenizer, class_prompts, context_length, batch_size, device);
    classes.push_back(torch::nn::functional::normalize(
        per_template.mean(0), torch::nn::functional::NormalizeFuncOptions().dim(0)));
  }
  return torch::stack(classes);
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

EvalResult evaluate(models::ClipModelImpl& model, const text::Tokenizer& tokenizer,
                    const config::Config& config, const torch::Device& device) {
  torch::NoGradGuard no_grad;
  EvalMode eval_mode(model);
  EvalResult result;
  if (!config.eval.zero_shot.source.empty()) {
    result.zero_shot = zero_shot(model, tokenizer, config, device);
  }
  if (!config.eval.retrieval.empty()) {
    result.retrieval = retrieval(model, tokenizer, config, device);
  }
  return result;
}

nlohmann::json EvalResult::to_json() const {
  nlohmann::json j = nlohmann::json::object();
  if (zero_shot) {
    j["zero_shot_top1"] = zero_shot->top1;
    j["zero_shot_top5"] = zero_shot->top5;
    j["zero_shot_samples"] = zero_shot->samples;
  }
  if (retrieval) {
    for (const auto& [prefix, stats] :
         {std::pair<std::string, const RankStats*>{"image_to_text", &retrieval->image_to_text},
          std::pair<std::string, const RankStats*>{"text_to_image", &retrieval->text_to_image}}) {
      j[prefix + "_r1"] = stats->r1;
      j[prefix + "_r5"] = stats->r5;
      j[prefix + "_r10"] = stats->r10;
      j[prefix + "_mean_rank"] = stats->mean_rank;
      j[prefix + "_median_rank"] = stats->median_rank;
    }
    j["retrieval_samples"] = retrieval->samples;
  }
  return j;
}

}  // namespace duet::eval
