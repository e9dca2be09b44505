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
#include <cstdint>
#include <optional>

#include <torch/types.h>
#include <nlohmann/json.hpp>

#include "config/config.h"

namespace duet::models {
class ClipModelImpl;
}
namespace duet::text {
class Tokenizer;
}
namespace duet::data {
struct ZeroShotPrompts;
}

namespace duet::eval {

struct ZeroShotResult {
  double top1 = 0.0;
  double top5 = 0.0;
  int64_t samples = 0;
  int64_t classes = 0;
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
};

struct EvalResult {
  std::optional<ZeroShotResult> zero_shot;
  std::optional<RetrievalResult> retrieval;

  bool empty() const { return !zero_shot && !retrieval; }
  // Flat keys: zero_shot_top1, zero_shot_top5, image_to_text_r1, ..., text_to_image_median_rank.
  nlohmann::json to_json() const;
};

// [C, E] unit-norm class embeddings: templates filled with each class name, encoded, averaged.
torch::Tensor class_embeddings(models::ClipModelImpl& model, const text::Tokenizer& tokenizer,
                               const data::ZeroShotPrompts& prompts, int64_t context_length,
                               int64_t batch_size, const torch::Device& device);

// Ranks for retrieval from unit-norm embeddings: images [N, E] with caption ids [N] into
// texts [U, E] (distinct captions). Exposed for tests.
RetrievalResult rank_retrieval(const torch::Tensor& images, const torch::Tensor& caption_ids,
                               const torch::Tensor& texts);

// Runs what config.eval names (zero-shot when eval.zero_shot.source is set, retrieval when
// eval.retrieval lists sources). The model is put in eval mode and restored afterwards.
EvalResult evaluate(models::ClipModelImpl& model, const text::Tokenizer& tokenizer,
                    const config::Config& config, const torch::Device& device);

}  // namespace duet::eval
