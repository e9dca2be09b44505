// CLIP_benchmark's metrics (see benchmark_metrics.h).
#include "eval/benchmark_metrics.h"

#include <cmath>
#include <limits>

#include <torch/torch.h>

#include <fmt/ranges.h>

#include "common/error.h"

namespace duet::eval {

ClassificationScores classification_scores(const torch::Tensor& logits,
                                           const torch::Tensor& labels) {
  DUET_CHECK(logits.dim() == 2 && labels.dim() == 1 && logits.size(0) == labels.size(0) &&
                 logits.size(0) > 0,
             "classification scores need logits [N, C] and labels [N], got {} and {}",
             fmt::format("{}", fmt::join(logits.sizes(), "x")),
             fmt::format("{}", fmt::join(labels.sizes(), "x")));
  const int64_t n = logits.size(0);
  const int64_t classes = logits.size(1);
  // Rank of the true class: 1 + classes scoring strictly higher.
  const torch::Tensor own = logits.gather(1, labels.unsqueeze(1));  // [N, 1]
  const torch::Tensor rank = (logits > own).sum(1) + 1;             // [N]
  ClassificationScores s;
  s.acc1 = (rank <= 1).sum().item<double>() / static_cast<double>(n);
  s.acc5 = classes >= 5 ? (rank <= 5).sum().item<double>() / static_cast<double>(n)
                        : std::numeric_limits<double>::quiet_NaN();
  s.predictions = logits.argmax(1);
  s.confusion =
      torch::zeros({classes * classes}, torch::kInt64)
          .index_add_(0, labels * classes + s.predictions, torch::ones({n}, torch::kInt64))
          .view({classes, classes});
  const torch::Tensor per_class = s.confusion.sum(1);  // samples of each true class
  const torch::Tensor present = per_class > 0;
  const torch::Tensor recall =
      s.confusion.diagonal().to(torch::kFloat64) / per_class.clamp_min(1).to(torch::kFloat64);
  s.mean_per_class_recall = recall.masked_select(present).mean().item<double>();
  return s;
}

double mean_average_precision(const torch::Tensor& scores, const torch::Tensor& targets) {
  DUET_CHECK(scores.dim() == 2 && scores.sizes() == targets.sizes() && scores.size(0) > 0,
             "average precision needs scores and targets of one [N, C] shape, got {} and {}",
             fmt::format("{}", fmt::join(scores.sizes(), "x")),
             fmt::format("{}", fmt::join(targets.sizes(), "x")));
  const int64_t n = scores.size(0);
  const torch::Tensor order =
      std::get<1>(scores.sort(std::optional<bool>(true), /*dim=*/0, /*descending=*/true));
  const torch::Tensor truth = targets.ne(0).gather(0, order).to(torch::kFloat64);  // [N, C]
  const torch::Tensor rank = torch::arange(1, n + 1, torch::kFloat64).unsqueeze(1);
  const torch::Tensor precision = truth.cumsum(0) / rank;
  const torch::Tensor ap = (precision * truth).sum(0) / truth.sum(0).clamp_min(1.0);
  return ap.mean().item<double>();
}

RetrievalRanks retrieval_ranks(const torch::Tensor& images, const torch::Tensor& texts,
                               const torch::Tensor& text_image) {
  const int64_t n = images.size(0);
  const int64_t t = texts.size(0);
  DUET_CHECK(text_image.dim() == 1 && text_image.size(0) == t && n > 0 && t > 0,
             "retrieval needs one image index per text ({} texts, {} indices)", t,
             text_image.numel());
  constexpr int64_t kChunk = 1024;  // text rows per [chunk, N] similarity block
  RetrievalRanks r;
  r.image_ranks = torch::empty({t}, torch::kFloat64);
  // Per image, the best score of its own captions (text retrieval's "right answer").
  auto best_own = torch::full({n}, -std::numeric_limits<float>::infinity(), torch::kFloat32);
  for (int64_t start = 0; start < t; start += kChunk) {
    const int64_t end = std::min(t, start + kChunk);
    const torch::Tensor ids = text_image.slice(0, start, end);                 // [c]
    const torch::Tensor sims = texts.slice(0, start, end).matmul(images.t());  // [c, N]
    const torch::Tensor own = sims.gather(1, ids.unsqueeze(1));                // [c, 1]
    r.image_ranks.slice(0, start, end).copy_((sims > own).sum(1).to(torch::kFloat64) + 1.0);
    best_own.scatter_reduce_(0, ids, own.squeeze(1), "amax");
  }
  DUET_CHECK(std::isfinite(best_own.min().item<float>()),
             "retrieval: an image has no caption (every image needs at least one text)");
  auto above = torch::zeros({n}, torch::kInt64);  // other images' texts above the best own one
  for (int64_t start = 0; start < t; start += kChunk) {
    const int64_t end = std::min(t, start + kChunk);
    const torch::Tensor ids = text_image.slice(0, start, end);
    const torch::Tensor sims = texts.slice(0, start, end).matmul(images.t());  // [c, N], as above
    torch::Tensor higher = sims > best_own.unsqueeze(0);
    // An image's own captions never count against it.
    higher.index_put_({torch::arange(end - start), ids}, false);
    above += higher.sum(0);
  }
  r.text_ranks = above.to(torch::kFloat64) + 1.0;
  return r;
}

RetrievalRanks group_ranks(const torch::Tensor& images, const torch::Tensor& image_group,
                           const torch::Tensor& texts, const torch::Tensor& text_group) {
  const int64_t n = images.size(0);
  const int64_t t = texts.size(0);
  DUET_CHECK(text_group.dim() == 1 && text_group.size(0) == t && image_group.dim() == 1 &&
                 image_group.size(0) == n && n > 0 && t > 0,
             "retrieval needs one group per image and per text ({} images, {} texts)", n, t);
  const int64_t groups =
      std::max(image_group.max().item<int64_t>(), text_group.max().item<int64_t>()) + 1;
  constexpr int64_t kChunk = 1024;  // text rows per [chunk, N] similarity block
  const float lowest = -std::numeric_limits<float>::infinity();
  // The best score of each (image, group of texts) and (text, group of images) pair is the
  // right answer to beat; first pass finds them, the second counts wrong answers above.
  auto best_text = torch::full({n, groups}, lowest, torch::kFloat32);  // per image
  std::vector<torch::Tensor> best_image_parts;                         // per text
  for (int64_t start = 0; start < t; start += kChunk) {
    const int64_t end = std::min(t, start + kChunk);
    const torch::Tensor sims = texts.slice(0, start, end).matmul(images.t());  // [c, N]
    best_image_parts.push_back(
        torch::full({end - start, groups}, lowest, torch::kFloat32)
            .scatter_reduce_(1, image_group.unsqueeze(0).expand({end - start, n}), sims, "amax"));
    best_text.scatter_reduce_(
        1, text_group.slice(0, start, end).unsqueeze(0).expand({n, end - start}), sims.t(), "amax");
  }
  const torch::Tensor best_image = torch::cat(best_image_parts);                  // [T, G]
  const torch::Tensor own_image = best_image.gather(1, text_group.unsqueeze(1));  // [T, 1]
  const torch::Tensor own_text = best_text.gather(1, image_group.unsqueeze(1));   // [N, 1]
  DUET_CHECK(
      std::isfinite(own_image.min().item<float>()) && std::isfinite(own_text.min().item<float>()),
      "retrieval: a text without an image of its group, or an image without a text");
  RetrievalRanks r;
  r.image_ranks = torch::empty({t}, torch::kFloat64);
  auto above = torch::zeros({n}, torch::kInt64);  // per image: other groups' texts above
  for (int64_t start = 0; start < t; start += kChunk) {
    const int64_t end = std::min(t, start + kChunk);
    const torch::Tensor groups_here = text_group.slice(0, start, end);
    const torch::Tensor sims = texts.slice(0, start, end).matmul(images.t());  // [c, N], as above
    const torch::Tensor other = groups_here.unsqueeze(1) != image_group.unsqueeze(0);  // [c, N]
    r.image_ranks.slice(0, start, end)
        .copy_(((sims > own_image.slice(0, start, end)) & other).sum(1).to(torch::kFloat64) + 1.0);
    above += ((sims > own_text.t()) & other).sum(0);
  }
  r.text_ranks = above.to(torch::kFloat64) + 1.0;
  return r;
}

MetricList retrieval_recalls(const RetrievalRanks& ranks, const std::vector<int64_t>& recall_k) {
  MetricList metrics;
  for (const int64_t k : recall_k) {
    const auto kd = static_cast<double>(k);
    metrics.emplace_back(fmt::format("image_retrieval_recall@{}", k),
                         (ranks.image_ranks <= kd).to(torch::kFloat64).mean().item<double>());
    metrics.emplace_back(fmt::format("text_retrieval_recall@{}", k),
                         (ranks.text_ranks <= kd).to(torch::kFloat64).mean().item<double>());
  }
  return metrics;
}

double median_rank(const torch::Tensor& ranks) {
  const torch::Tensor sorted = std::get<0>(ranks.sort());
  return sorted[(sorted.size(0) - 1) / 2].item<double>();
}

}  // namespace duet::eval
