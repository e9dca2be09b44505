// Evaluation details for the run report (see eval_details.h): picking examples and queries,
// JSON, thumbnails read back from the tar shards, and the RUN_DIR/eval/ files.
#include "eval/eval_details.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include <torch/torch.h>

#include "common/error.h"
#include "common/logging.h"
#include "common/strings.h"
#include "data/image_decode.h"
#include "data/image_encode.h"
#include "data/webdataset_source.h"
#include "eval/evaluate.h"

namespace duet::eval {
namespace {

namespace fs = std::filesystem;

std::vector<int64_t> to_vector(const torch::Tensor& t) {
  const torch::Tensor c = t.to(torch::kInt64).contiguous();
  return {c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel()};
}

nlohmann::json classification_json(const ClassificationDetails& d) {
  nlohmann::json pairs = nlohmann::json::array();
  for (const auto& p : d.most_confused) {
    pairs.push_back(
        {{"true", p.true_class}, {"predicted", p.predicted}, {"count", p.count}, {"keys", p.keys}});
  }
  return {{"classnames", d.classnames},
          {"per_class_count", d.per_class_count},
          {"per_class_correct", d.per_class_correct},
          {"confusion", d.confusion},
          {"most_confused", pairs}};
}

nlohmann::json retrieval_json(const RetrievalDetails& d) {
  nlohmann::json queries = nlohmann::json::array();
  for (const auto& q : d.queries) {
    queries.push_back(
        {{"text", q.text}, {"keys", q.keys}, {"correct", q.correct}, {"scores", q.scores}});
  }
  return {{"image_to_text_median_rank", d.image_to_text_median_rank},
          {"text_to_image_median_rank", d.text_to_image_median_rank},
          {"queries", queries}};
}

void collect_keys(const nlohmann::json& sections, std::set<std::string>& keys) {
  for (const auto& [name, section] : sections.items()) {
    if (section.contains("classification")) {
      for (const auto& p : section["classification"]["most_confused"]) {
        for (const auto& k : p["keys"]) {
          keys.insert(k.get<std::string>());
        }
      }
    }
    if (section.contains("retrieval")) {
      for (const auto& q : section["retrieval"]["queries"]) {
        for (const auto& k : q["keys"]) {
          keys.insert(k.get<std::string>());
        }
      }
    }
  }
}

// Area-average downscale of RGB pixels so that the longer side is at most `side`.
data::Image shrink(const data::Image& image, int side) {
  const int longer = std::max(image.width, image.height);
  if (longer <= side) {
    return image;
  }
  data::Image out;
  out.width = std::max(1, image.width * side / longer);
  out.height = std::max(1, image.height * side / longer);
  out.pixels.resize(static_cast<size_t>(out.width) * out.height * 3);
  for (int y = 0; y < out.height; ++y) {
    const int y0 = y * image.height / out.height;
    const int y1 = std::max(y0 + 1, (y + 1) * image.height / out.height);
    for (int x = 0; x < out.width; ++x) {
      const int x0 = x * image.width / out.width;
      const int x1 = std::max(x0 + 1, (x + 1) * image.width / out.width);
      for (int c = 0; c < 3; ++c) {
        int64_t sum = 0;
        for (int yy = y0; yy < y1; ++yy) {
          for (int xx = x0; xx < x1; ++xx) {
            sum += image.pixels[(static_cast<size_t>(yy) * image.width + xx) * 3 + c];
          }
        }
        const int64_t count = static_cast<int64_t>(y1 - y0) * (x1 - x0);
        out.pixels[(static_cast<size_t>(y) * out.width + x) * 3 + c] =
            static_cast<uint8_t>((sum + count / 2) / count);
      }
    }
  }
  return out;
}

std::string step_file_name(int64_t step) { return fmt::format("step-{:08d}.json", step); }

std::vector<fs::path> detail_files(const fs::path& dir) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("step-", 0) == 0 && entry.path().extension() == ".json") {
      files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

std::vector<int64_t> query_rows(const std::vector<std::string>& texts) {
  // The first row of each distinct text, in sorted text order; kQueries of them evenly spaced.
  std::map<std::string, int64_t> first;
  for (size_t i = 0; i < texts.size(); ++i) {
    first.emplace(texts[i], static_cast<int64_t>(i));
  }
  std::vector<int64_t> distinct;
  for (const auto& [text, row] : first) {
    distinct.push_back(row);
  }
  std::vector<int64_t> rows;
  const auto n = static_cast<int64_t>(distinct.size());
  for (int64_t q = 0; q < std::min(kQueries, n); ++q) {
    rows.push_back(distinct[static_cast<size_t>(q * n / std::min(kQueries, n))]);
  }
  return rows;
}

ClassificationDetails classification_details(const std::vector<std::string>& classnames,
                                             const torch::Tensor& confusion,
                                             const torch::Tensor& predictions,
                                             const torch::Tensor& labels,
                                             const std::vector<std::string>& keys) {
  ClassificationDetails d;
  d.classnames = classnames;
  const int64_t classes = confusion.size(0);
  d.per_class_count = to_vector(confusion.sum(1));
  d.per_class_correct = to_vector(confusion.diagonal());
  if (classes <= kMaxConfusionClasses) {
    d.confusion = to_vector(confusion.reshape({-1}));
  }
  // Off-diagonal cells by count (ties: lower true class, then lower predicted class first).
  const torch::Tensor off = confusion.clone().fill_diagonal_(0).reshape({-1});
  const int64_t nonzero = (off > 0).sum().item<int64_t>();
  const int64_t take = std::min(kConfusedPairs, nonzero);
  if (take == 0) {
    return d;
  }
  const torch::Tensor order =
      std::get<1>(off.neg().sort(std::optional<bool>(true), /*dim=*/0, /*descending=*/false));
  const torch::Tensor label_values = labels.to(torch::kInt64).contiguous();
  const auto* label = label_values.data_ptr<int64_t>();
  const torch::Tensor predicted = predictions.to(torch::kInt64).contiguous();
  const auto* pred = predicted.data_ptr<int64_t>();
  for (int64_t i = 0; i < take; ++i) {
    const int64_t cell = order[i].item<int64_t>();
    ConfusedPair p;
    p.true_class = cell / classes;
    p.predicted = cell % classes;
    p.count = off[cell].item<int64_t>();
    std::vector<std::string> matches;
    for (size_t n = 0; n < keys.size(); ++n) {
      if (label[n] == p.true_class && pred[n] == p.predicted) {
        matches.push_back(keys[n]);
      }
    }
    std::sort(matches.begin(), matches.end());
    matches.resize(std::min<size_t>(matches.size(), kExamplesPerPair));
    p.keys = std::move(matches);
    d.most_confused.push_back(std::move(p));
  }
  return d;
}

nlohmann::json details_json(const EvalResult& result) {
  nlohmann::json sections = nlohmann::json::object();
  if (result.zero_shot) {
    sections["zero_shot"]["classification"] = classification_json(result.zero_shot->details);
  }
  if (result.retrieval) {
    sections["retrieval"]["retrieval"] = retrieval_json(result.retrieval->details);
  }
  for (const auto& b : result.benchmarks) {
    nlohmann::json& s = sections[b.name];
    s["task"] = data::benchmark_task_name(b.task);
    if (b.classification) {
      s["classification"] = classification_json(*b.classification);
    }
    if (b.retrieval) {
      s["retrieval"] = retrieval_json(*b.retrieval);
    }
  }
  return sections;
}

nlohmann::json thumbnails_json(const std::vector<std::string>& keys) {
  // Group the wanted keys by shard ("SHARD.tar:KEY"), then read each shard once.
  std::map<std::string, std::set<std::string>> by_shard;
  for (const auto& key : keys) {
    const size_t colon = key.rfind(':');
    if (colon != std::string::npos) {
      by_shard[key.substr(0, colon)].insert(key);
    }
  }
  nlohmann::json thumbnails = nlohmann::json::object();
  for (const auto& [shard, wanted] : by_shard) {
    std::error_code ec;
    if (!fs::is_regular_file(shard, ec) || shard.find(".tar") == std::string::npos) {
      continue;  // a CSV row or a shard that is gone: the report shows the key alone
    }
    data::TarShardReader reader(shard, 0);
    data::RawSample sample;
    size_t found = 0;
    while (found < wanted.size() && reader.next(sample)) {
      if (wanted.count(sample.where) == 0 || sample.image.empty()) {
        continue;
      }
      ++found;
      try {
        const auto* bytes = reinterpret_cast<const uint8_t*>(sample.image.data());
        const data::Image small =
            shrink(data::decode_image(bytes, sample.image.size()), kThumbnailSide);
        thumbnails[sample.where] =
            "data:image/png;base64," +
            base64_encode(data::encode_png(small.pixels.data(), small.width, small.height, 3));
      } catch (const data::ImageDecodeError&) {
        // An undecodable image was skipped by the evaluation too; nothing to show.
      }
    }
  }
  return thumbnails;
}

void save_eval_details(const std::string& run_dir, int64_t step, const EvalResult& result) {
  const fs::path dir = fs::path(run_dir) / "eval";
  fs::create_directories(dir);
  nlohmann::json j;
  j["step"] = step;
  j["metrics"] = result.to_json();
  j["sections"] = details_json(result);
  std::set<std::string> keys;
  collect_keys(j["sections"], keys);
  j["thumbnails"] = thumbnails_json({keys.begin(), keys.end()});
  const fs::path path = dir / step_file_name(step);
  const fs::path tmp = dir / (step_file_name(step) + ".tmp");
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    DUET_CHECK(out.good(), "cannot write '{}'", tmp.string());
  }
  fs::rename(tmp, path);
  const std::vector<fs::path> files = detail_files(dir);
  for (size_t i = 0; i + kKeptDetailFiles < files.size(); ++i) {
    fs::remove(files[i]);
  }
  log::get("eval")->debug("wrote evaluation details '{}'", path.string());
}

nlohmann::json load_latest_eval_details(const std::string& run_dir) {
  const std::vector<fs::path> files = detail_files(fs::path(run_dir) / "eval");
  if (files.empty()) {
    return nullptr;
  }
  std::ifstream in(files.back(), std::ios::binary);
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    fail("cannot read evaluation details '{}': {}", files.back().string(), e.what());
  }
}

}  // namespace duet::eval
