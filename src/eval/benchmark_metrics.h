#pragma once
// LAION CLIP_benchmark's metrics, with its names and definitions, computed from scores that
// are already gathered (every row of the evaluation set, in any order):
//   classification  acc1, acc5 (NaN with fewer than 5 classes), mean_per_class_recall (the mean
//                   over classes present in the labels of each class's recall: sklearn's
//                   balanced_accuracy_score)
//   multilabel      mean_average_precision (mean over classes of average precision, classes
//                   without positives counting 0, as CLIP_benchmark's average_precision_per_class)
//   retrieval       image_retrieval_recall@k: share of texts whose image is among the k images
//                   scoring highest; text_retrieval_recall@k: share of images with at least one
//                   of their captions among the k texts scoring highest.
// Ranks count strictly higher scores (rank = 1 + number of wrong answers scoring above the best
// right one), so the results do not depend on the order of the rows; they equal CLIP_benchmark's
// top-k based ones except where a wrong answer ties the best right one exactly.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

namespace duet::eval {

// Named metric values in CLIP_benchmark's order.
using MetricList = std::vector<std::pair<std::string, double>>;

struct ClassificationScores {
  double acc1 = 0.0;
  double acc5 = 0.0;  // NaN with fewer than 5 classes
  double mean_per_class_recall = 0.0;
  torch::Tensor predictions;  // [N] int64 top-1 class
  torch::Tensor confusion;    // [C, C] int64, [true, predicted]
};

// logits [N, C] (any scale), labels [N] int64 in [0, C).
ClassificationScores classification_scores(const torch::Tensor& logits,
                                           const torch::Tensor& labels);

// scores [N, C], targets [N, C] (nonzero = positive).
double mean_average_precision(const torch::Tensor& scores, const torch::Tensor& targets);

struct RetrievalRanks {
  torch::Tensor image_ranks;  // [T] float64: per text, rank of its image among all images
  torch::Tensor text_ranks;   // [N] float64: per image, rank of its best caption among all texts
};

// images [N, E], texts [T, E] (unit norm), text_image [T] int64: the image of each text.
// Every image needs at least one text.
RetrievalRanks retrieval_ranks(const torch::Tensor& images, const torch::Tensor& texts,
                               const torch::Tensor& text_image);

// The same with groups: the right answers of a query are the items of its group (int64 ids in
// [0, G)), e.g. the images and captions of one class: retrieval_ranks is the case where every
// image is its own group, computed there without the [N, G] table of best scores this keeps.
// Every group of a text needs an image and every group of an image a text.
RetrievalRanks group_ranks(const torch::Tensor& images, const torch::Tensor& image_group,
                           const torch::Tensor& texts, const torch::Tensor& text_group);

// image_retrieval_recall@k and text_retrieval_recall@k for each k, in that order.
MetricList retrieval_recalls(const RetrievalRanks& ranks, const std::vector<int64_t>& recall_k);

// The median of 1-based ranks (the lower middle value for an even count).
double median_rank(const torch::Tensor& ranks);

}  // namespace duet::eval
