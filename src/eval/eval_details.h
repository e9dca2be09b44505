#pragma once
// What an evaluation saw beyond its metrics, for the run report: per classification set the
// confusion matrix (up to kMaxConfusionClasses classes), per-class accuracy and the most
// confused (true, predicted) pairs with example sample keys; per retrieval set a few text
// queries with their top-5 images (correct ones marked) and the median ranks.
//
// save_eval_details writes RUN_DIR/eval/step-NNNNNNNN.json: the metrics, these details and, for
// every sample key they name, a small PNG thumbnail (at most kThumbnailSide pixels a side, read
// back from the sample's tar shard) as a data: URI, so the report needs nothing else. Examples
// and queries are few (kConfusedPairs x kExamplesPerPair, kQueries x 5) whatever the dataset's
// size, so a file stays within a few hundred kB; only the newest kKeptDetailFiles are kept.
// Example keys and queries are chosen by key and caption order, not by the order the rows were
// gathered in, so a sharded evaluation picks the same ones as a single process.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <torch/types.h>
#include <nlohmann/json.hpp>

namespace duet::eval {

struct EvalResult;

constexpr int64_t kMaxConfusionClasses = 100;
constexpr int64_t kConfusedPairs = 8;
constexpr int64_t kExamplesPerPair = 4;
constexpr int64_t kQueries = 5;
constexpr int kThumbnailSide = 64;
constexpr int kKeptDetailFiles = 3;

struct ConfusedPair {
  int64_t true_class = 0;
  int64_t predicted = 0;
  int64_t count = 0;
  std::vector<std::string> keys;  // example samples, by key order
};

struct ClassificationDetails {
  std::vector<std::string> classnames;
  std::vector<int64_t> per_class_count;    // [C] samples of each true class
  std::vector<int64_t> per_class_correct;  // [C]
  std::vector<int64_t> confusion;          // [C * C] row-major [true][predicted]; empty past
                                           // kMaxConfusionClasses classes
  std::vector<ConfusedPair> most_confused;
};

struct RetrievalQuery {
  std::string text;
  std::vector<std::string> keys;  // top-5 images, best first
  std::vector<bool> correct;
  std::vector<double> scores;
};

struct RetrievalDetails {
  double image_to_text_median_rank = 0.0;  // image queries, rank of the right caption
  double text_to_image_median_rank = 0.0;  // text queries, rank of the right image
  std::vector<RetrievalQuery> queries;
};

// From gathered scores: logits [N, C], labels [N], predictions [N], confusion [C, C], sample
// keys [N].
ClassificationDetails classification_details(const std::vector<std::string>& classnames,
                                             const torch::Tensor& confusion,
                                             const torch::Tensor& predictions,
                                             const torch::Tensor& labels,
                                             const std::vector<std::string>& keys);

// Text queries: texts [T] (strings) with embeddings [T, E], images [N, E] with keys [N];
// `is_match(t, n)` says whether image n is a right answer for text t. kQueries texts are picked
// evenly through the sorted distinct texts.
template <class IsMatch>
std::vector<RetrievalQuery> retrieval_queries(const std::vector<std::string>& texts,
                                              const torch::Tensor& text_embeddings,
                                              const torch::Tensor& images,
                                              const std::vector<std::string>& keys,
                                              IsMatch is_match);

// The details of every set in `result`, keyed by set name ("zero_shot", "retrieval", or a
// benchmark's NAME/SPLIT), as saved under "sections".
nlohmann::json details_json(const EvalResult& result);

// A thumbnail data: URI per key ("SHARD.tar:KEY"); keys whose shard cannot be read, or that
// are not tar samples, are left out.
nlohmann::json thumbnails_json(const std::vector<std::string>& keys);

// Writes RUN_DIR/eval/step-NNNNNNNN.json (atomically) and prunes older files. Call on rank 0
// after an evaluation during or at the end of training.
void save_eval_details(const std::string& run_dir, int64_t step, const EvalResult& result);

// Reads the newest RUN_DIR/eval/step-*.json; null when there is none.
nlohmann::json load_latest_eval_details(const std::string& run_dir);

// ---- implementation of the template ----
std::vector<int64_t> query_rows(const std::vector<std::string>& texts);
template <class IsMatch>
std::vector<RetrievalQuery> retrieval_queries(const std::vector<std::string>& texts,
                                              const torch::Tensor& text_embeddings,
                                              const torch::Tensor& images,
                                              const std::vector<std::string>& keys,
                                              IsMatch is_match) {
  std::vector<RetrievalQuery> queries;
  const int64_t k = std::min<int64_t>(5, images.size(0));
  for (const int64_t t : query_rows(texts)) {
    const torch::Tensor scores = images.matmul(text_embeddings[t]);  // [N]
    const auto top = scores.topk(k);
    RetrievalQuery q;
    q.text = texts[static_cast<size_t>(t)];
    for (int64_t j = 0; j < k; ++j) {
      const int64_t n = std::get<1>(top)[j].item<int64_t>();
      q.keys.push_back(keys[static_cast<size_t>(n)]);
      q.correct.push_back(is_match(t, n));
      q.scores.push_back(std::get<0>(top)[j].item<double>());
    }
    queries.push_back(std::move(q));
  }
  return queries;
}

}  // namespace duet::eval
