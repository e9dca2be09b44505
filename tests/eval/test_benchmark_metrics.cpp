// CLIP_benchmark's metrics against values worked out by hand, and against a direct
// transcription of CLIP_benchmark's own top-k formulas (zeroshot_retrieval.recall_at_k,
// zeroshot_classification.accuracy, sklearn's balanced_accuracy_score,
// average_precision_per_class) on random scores without ties.
#include <torch/torch.h>

#include <catch2/catch.hpp>

#include <cmath>

#include "eval/benchmark_metrics.h"

namespace {

using duet::eval::classification_scores;
using duet::eval::mean_average_precision;
using duet::eval::retrieval_ranks;
using duet::eval::retrieval_recalls;

double metric(const duet::eval::MetricList& list, const std::string& name) {
  for (const auto& [n, v] : list) {
    if (n == name) {
      return v;
    }
  }
  FAIL("no metric " << name);
  return 0.0;
}

// CLIP_benchmark's recall_at_k(...) > 0, averaged: scores [Q, G], positives [Q, G].
double clip_benchmark_recall(const torch::Tensor& scores, const torch::Tensor& positive,
                             int64_t k) {
  const torch::Tensor top = std::get<1>(scores.topk(k, 1));  // [Q, k]
  const torch::Tensor hit = positive.gather(1, top).any(1);
  return hit.to(torch::kFloat64).mean().item<double>();
}

torch::Tensor unit_rows(const torch::Tensor& x) { return x / x.norm(2, 1, true); }

}  // namespace

TEST_CASE("classification: acc1, acc5 and mean per-class recall by hand") {
  // 3 classes (acc5 is NaN below 5 classes); labels 0, 0, 1, 2; predictions 0, 1, 1, 1.
  const torch::Tensor logits = torch::tensor(
      {{0.9, 0.1, 0.0}, {0.2, 0.5, 0.1}, {0.1, 0.8, 0.2}, {0.0, 0.7, 0.6}}, torch::kFloat64);
  const torch::Tensor labels = torch::tensor({0, 0, 1, 2}, torch::kInt64);
  const auto s = classification_scores(logits, labels);
  CHECK(s.acc1 == Approx(0.5));
  CHECK(std::isnan(s.acc5));
  // Recall: class 0 1/2, class 1 1/1, class 2 0/1 -> mean 0.5.
  CHECK(s.mean_per_class_recall == Approx(0.5));
  CHECK(s.confusion[0][1].item<int64_t>() == 1);
  CHECK(s.confusion[2][1].item<int64_t>() == 1);
  CHECK(s.confusion.sum().item<int64_t>() == 4);
}

TEST_CASE("classification: classes absent from the labels do not count in mean per-class recall") {
  torch::manual_seed(3);
  const torch::Tensor logits = torch::randn({50, 8}, torch::kFloat64);
  const torch::Tensor labels = torch::randint(0, 4, {50}, torch::kInt64);  // classes 4-7 absent
  const auto s = classification_scores(logits, labels);
  const torch::Tensor pred = logits.argmax(1);
  double sum = 0.0;
  for (int c = 0; c < 4; ++c) {
    const torch::Tensor mine = labels == c;
    sum += (pred.masked_select(mine) == c).to(torch::kFloat64).mean().item<double>();
  }
  CHECK(s.mean_per_class_recall == Approx(sum / 4.0));
  // acc1/acc5 as CLIP_benchmark's accuracy(): top-k of the logits.
  const torch::Tensor top5 = std::get<1>(logits.topk(5, 1));
  CHECK(s.acc5 ==
        Approx(top5.eq(labels.unsqueeze(1)).any(1).to(torch::kFloat64).mean().item<double>()));
  CHECK(s.acc1 == Approx((pred == labels).to(torch::kFloat64).mean().item<double>()));
}

TEST_CASE("multilabel: mean average precision by hand") {
  // One class, scores ranked a > b > c > d with positives a and c: AP = (1/1 + 2/3) / 2.
  const torch::Tensor scores = torch::tensor({{0.9}, {0.8}, {0.7}, {0.1}}, torch::kFloat64);
  const torch::Tensor targets = torch::tensor({{1}, {0}, {1}, {0}}, torch::kUInt8);
  CHECK(mean_average_precision(scores, targets) == Approx((1.0 + 2.0 / 3.0) / 2.0));
  // A class without positives counts 0, as in CLIP_benchmark.
  const torch::Tensor two = torch::cat({scores, scores}, 1);
  const torch::Tensor t2 = torch::cat({targets, torch::zeros_like(targets)}, 1);
  CHECK(mean_average_precision(two, t2) == Approx((1.0 + 2.0 / 3.0) / 4.0));
}

TEST_CASE("retrieval: an image with several captions is found if any of them is in the top k") {
  // Images along the axes; image 0 has captions 0 and 1, image 1 caption 2, image 2 caption 3.
  const torch::Tensor images = torch::eye(3);
  const torch::Tensor texts = unit_rows(torch::tensor({{0.1f, 1.0f, 0.0f},     // of 0, near 1
                                                       {1.0f, 0.0f, 0.2f},     // of 0
                                                       {0.0f, 1.0f, 0.05f},    // of 1
                                                       {0.0f, 0.9f, 1.0f}}));  // of 2, near 2
  const torch::Tensor owner = torch::tensor({0, 0, 1, 2}, torch::kInt64);
  const auto ranks = retrieval_ranks(images, texts, owner);
  // Text -> image ranks: text 0 prefers image 1 (rank 2), the others find theirs first.
  CHECK(ranks.image_ranks[0].item<double>() == 2.0);
  CHECK(ranks.image_ranks[1].item<double>() == 1.0);
  // Image -> text: image 0's best own caption is text 1 (0.98), above the others' texts;
  // image 1's own text 2 (0.9988) beats text 0 (0.995); image 2's text 3 (0.743) beats text 1
  // (0.196): every image ranks its best caption first.
  const auto recalls = retrieval_recalls(ranks, {1, 2});
  CHECK(metric(recalls, "image_retrieval_recall@1") == Approx(0.75));
  CHECK(metric(recalls, "image_retrieval_recall@2") == Approx(1.0));
  CHECK(metric(recalls, "text_retrieval_recall@1") == Approx(1.0));
}

TEST_CASE("retrieval recalls equal CLIP_benchmark's top-k formula on random embeddings") {
  torch::manual_seed(7);
  const int64_t n = 37;
  const torch::Tensor images = unit_rows(torch::randn({n, 16}));
  // 1 to 3 captions per image, noisy copies of it.
  std::vector<int64_t> owner_list;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t c = 0; c <= i % 3; ++c) {
      owner_list.push_back(i);
    }
  }
  const torch::Tensor owner = torch::tensor(owner_list, torch::kInt64);
  const torch::Tensor texts =
      unit_rows(images.index_select(0, owner) + 1.2 * torch::randn({owner.size(0), 16}));
  const torch::Tensor scores = texts.matmul(images.t());  // [T, N]
  const torch::Tensor positive =
      torch::zeros({owner.size(0), n}, torch::kBool).scatter_(1, owner.unsqueeze(1), true);
  const auto ranks = retrieval_ranks(images, texts, owner);
  for (const int64_t k : {1, 5, 10}) {
    const auto recalls = retrieval_recalls(ranks, {k});
    INFO("k = " << k);
    CHECK(metric(recalls, "image_retrieval_recall@" + std::to_string(k)) ==
          Approx(clip_benchmark_recall(scores, positive, k)));
    CHECK(metric(recalls, "text_retrieval_recall@" + std::to_string(k)) ==
          Approx(clip_benchmark_recall(scores.t(), positive.t(), k)));
  }
  CHECK(duet::eval::median_rank(torch::tensor({3.0, 1.0, 2.0, 8.0}, torch::kFloat64)) == 2.0);
}

TEST_CASE("group ranks: a query's right answers are every item of its group") {
  torch::manual_seed(9);
  const int64_t n = 23;
  const int64_t t = 11;
  const torch::Tensor images = unit_rows(torch::randn({n, 8}));
  const torch::Tensor texts = unit_rows(torch::randn({t, 8}));
  const torch::Tensor image_group = torch::arange(n, torch::kInt64) % 4;
  const torch::Tensor text_group = torch::arange(t, torch::kInt64) % 4;
  const auto ranks = duet::eval::group_ranks(images, image_group, texts, text_group);
  const torch::Tensor s = texts.matmul(images.t());  // [T, N]
  for (int64_t q = 0; q < t; ++q) {  // text query: images of other groups above its best image
    const torch::Tensor mine = image_group == text_group[q];
    const double best = s[q].masked_select(mine).max().item<double>();
    const int64_t above = ((s[q] > best) & ~mine).sum().item<int64_t>();
    CHECK(ranks.image_ranks[q].item<double>() == static_cast<double>(above + 1));
  }
  for (int64_t i = 0; i < n; ++i) {  // image query: texts of other groups above its best text
    const torch::Tensor mine = text_group == image_group[i];
    const torch::Tensor col = s.select(1, i);
    const double best = col.masked_select(mine).max().item<double>();
    const int64_t above = ((col > best) & ~mine).sum().item<int64_t>();
    CHECK(ranks.text_ranks[i].item<double>() == static_cast<double>(above + 1));
  }
}
