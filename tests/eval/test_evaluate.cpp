// Retrieval ranks with repeated captions, checked against ranks worked out by hand, and the
// JSON keys `duet eval --json` promises.
#include <torch/torch.h>

#include <catch2/catch.hpp>

#include <cmath>

#include "eval/evaluate.h"

namespace {

torch::Tensor rows(std::vector<std::vector<float>> values) {
  std::vector<torch::Tensor> r;
  for (auto& v : values) {
    r.push_back(torch::tensor(v));
  }
  return torch::nn::functional::normalize(torch::stack(r),
                                          torch::nn::functional::NormalizeFuncOptions().dim(1));
}

}  // namespace

TEST_CASE("retrieval ranks count distinct captions and treat repeated captions as one answer") {
  // Three distinct captions along the axes; four images, two of them share caption 0.
  const torch::Tensor texts = rows({{1, 0, 0}, {0, 1, 0}, {0, 0, 1}});
  const torch::Tensor images = rows({
      {1.0f, 0.1f, 0.0f},  // caption 0: own text scores highest -> rank 1
      {0.2f, 1.0f, 0.0f},  // caption 0: text 1 scores higher -> rank 2
      {0.0f, 1.0f, 0.0f},  // caption 1 -> rank 1
      {0.9f, 0.0f, 0.1f},  // caption 2: text 0 higher -> rank 2
  });
  const torch::Tensor captions = torch::tensor({0, 0, 1, 2}, torch::kInt64);
  const auto result = duet::eval::rank_retrieval(images, captions, texts);
  CHECK(result.samples == 4);
  CHECK(result.distinct_captions == 3);
  // Image -> text ranks 1, 2, 1, 2.
  CHECK(result.image_to_text.r1 == Approx(0.5));
  CHECK(result.image_to_text.r5 == Approx(1.0));
  CHECK(result.image_to_text.mean_rank == Approx(1.5));
  // Text -> image: caption 0 (weight 2): best own image 0 scores 0.995; no other image above
  // -> rank 1. Caption 1 (weight 1): image 2 scores 1.0, image 1 (caption 0) 0.98 -> rank 1.
  // Caption 2 (weight 1): own image 3 scores 0.11; images 0, 1, 2 score 0 -> rank 1.
  CHECK(result.text_to_image.r1 == Approx(1.0));
  CHECK(result.text_to_image.median_rank == Approx(1.0));
}

TEST_CASE("a text query ranks below images of other captions that score higher") {
  const torch::Tensor texts = rows({{1, 0}, {0, 1}});
  const torch::Tensor images = rows({{0.2f, 1.0f}, {1.0f, 0.0f}, {0.9f, 1.0f}});
  const torch::Tensor captions = torch::tensor({0, 1, 1}, torch::kInt64);
  const auto result = duet::eval::rank_retrieval(images, captions, texts);
  // Caption 0's only image scores 0.196 on text 0, below images 1 (1.0) and 2 (0.67): rank 3.
  // Caption 1: best own image 2 scores 0.74 on text 1; image 0 (caption 0) scores 0.98: rank 2.
  CHECK(result.text_to_image.r1 == Approx(0.0));
  CHECK(result.text_to_image.mean_rank == Approx((3.0 + 2.0 * 2.0) / 3.0));
}

TEST_CASE("eval JSON carries the documented keys") {
  duet::eval::EvalResult result;
  result.zero_shot.emplace();
  result.zero_shot->top1 = 0.9;
  result.zero_shot->top5 = 0.99;
  result.retrieval = duet::eval::RetrievalResult{};
  duet::eval::BenchmarkResult benchmark;
  benchmark.name = "fm/test";
  benchmark.metrics = {{"acc1", 0.5}, {"acc5", std::nan("")}};
  result.benchmarks.push_back(benchmark);
  const auto json = result.to_json();
  for (const char* key : {"zero_shot_top1", "zero_shot_top5", "image_to_text_r1", "fm/test/acc1",
                          "image_to_text_r5", "text_to_image_r1", "text_to_image_r5"}) {
    CHECK(json.contains(key));
  }
  CHECK(json.at("fm/test/acc5").is_null());  // NaN (fewer than 5 classes) as null
}

TEST_CASE("shares are shown as percentages, ranks and counts as numbers") {
  using duet::eval::is_fraction_metric;
  for (const char* share : {"zero_shot_top1", "fm/test/acc5", "mean_per_class_recall",
                            "image_retrieval_recall@5", "mean_average_precision",
                            "retrieval/image_to_text_r10", "mirror_share"}) {
    INFO(share);
    CHECK(is_fraction_metric(share));
  }
  for (const char* number : {"zero_shot_samples", "retrieval/text_to_image_median_rank",
                             "retrieval/image_to_text_mean_rank", "loss", "r1", "x_rate",
                             "distinct_captions"}) {
    INFO(number);
    CHECK_FALSE(is_fraction_metric(number));
  }
}
