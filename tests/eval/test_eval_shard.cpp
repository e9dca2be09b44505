// Evaluation split across ranks gives the one-process result: three threads act as ranks, each
// with its own model copy and loader part, exchanging rows through an in-process all_gather
// (rank order, as the trainer's communicator); every rank's EvalResult must equal the
// one-process one exactly: metrics, confusion matrices, examples and retrieval queries. The
// evaluation covers eval.zero_shot, eval.retrieval and CLIP_benchmark classification and
// retrieval sets, with uneven shares (13 samples over 3 ranks, shards of 5).
// Batches of one image make each embedding independent of how the rows are batched, so the
// comparison can be exact.
#include <torch/torch.h>

#include <catch2/catch.hpp>

#include <condition_variable>
#include <fstream>
#include <mutex>
#include <thread>

#include "common/test_util.h"
#include "config/loader.h"
#include "data/fashion_mnist.h"
#include "data/image_encode.h"
#include "data/tar_writer.h"
#include "data/zero_shot_prompts.h"
#include "eval/evaluate.h"
#include "models/clip_model.h"
#include "text/sentencepiece_tokenizer.h"
#include "text/tokenizer.h"

namespace {

using duet::test::TempDir;

constexpr int64_t kSamples = 13;
constexpr int64_t kShardSize = 5;

// all_gather among threads: each rank's tensor, concatenated in rank order.
class ThreadGather {
 public:
  explicit ThreadGather(int world) : world_(world), slots_(static_cast<size_t>(world)) {}

  torch::Tensor gather(int rank, const torch::Tensor& local) {
    std::unique_lock<std::mutex> lock(mutex_);
    const int64_t generation = generation_;
    slots_[static_cast<size_t>(rank)] = local.clone();
    if (++arrived_ == world_) {
      result_ = torch::cat(slots_);
      arrived_ = 0;
      ++generation_;
      changed_.notify_all();
    } else {
      changed_.wait(lock, [&] { return generation_ != generation; });
    }
    return result_.clone();
  }

 private:
  int world_;
  std::vector<torch::Tensor> slots_;
  std::mutex mutex_;
  std::condition_variable changed_;
  int arrived_ = 0;
  int64_t generation_ = 0;
  torch::Tensor result_;
};

void write_lines(const std::string& path, const std::vector<std::string>& lines) {
  std::ofstream out(path);
  for (const auto& line : lines) {
    out << line << '\n';
  }
}

// A CLIP_benchmark dataset DIR with split test in shards of kShardSize: random 16x16 PNGs,
// KEY.cls = (7 i) mod 10 and KEY.txt = its class's captions (one, or two lines for retrieval).
void write_benchmark(const std::string& dir, bool retrieval) {
  const auto& classes = duet::data::fashion_mnist_classes();
  torch::manual_seed(retrieval ? 12 : 11);
  const torch::Tensor pixels = torch::randint(0, 256, {kSamples, 16, 16, 3}, torch::kUInt8);
  const int64_t shards = (kSamples + kShardSize - 1) / kShardSize;
  std::filesystem::create_directories(dir + "/test");
  for (int64_t s = 0; s < shards; ++s) {
    duet::data::TarWriter writer(dir + "/test/" + std::to_string(s) + ".tar");
    for (int64_t i = s * kShardSize; i < std::min(kSamples, (s + 1) * kShardSize); ++i) {
      const std::string key = fmt::format("{:06d}", i);
      const torch::Tensor image = pixels[i].contiguous();
      const int64_t label = (i * 7) % 10;
      const std::string name = classes[static_cast<size_t>(label)];
      writer.add(key + ".png", duet::data::encode_png(image.data_ptr<uint8_t>(), 16, 16, 3));
      writer.add(key + ".cls", std::to_string(label));
      writer.add(key + ".txt",
                 retrieval ? fmt::format("a photo of a {}.\na {} number {}.\n", name, name, i)
                           : fmt::format("a photo of a {}.", name));
    }
    writer.close();
  }
  write_lines(dir + "/test/nshards.txt", {std::to_string(shards)});
  write_lines(dir + "/dataset_type.txt", {retrieval ? "retrieval" : "classification"});
  write_lines(dir + "/classnames.txt", classes);
  write_lines(dir + "/zeroshot_classification_templates.txt",
              {"a photo of a {c}.", "a blurry photo of the {c}."});
}

struct Setup {
  TempDir dir;
  duet::config::Config config;

  Setup() {
    const std::string cls = dir / "cls";
    const std::string ret = dir / "ret";
    write_benchmark(cls, false);
    write_benchmark(ret, true);
    std::vector<std::string> captions;
    for (const auto& c : duet::data::fashion_mnist_classes()) {
      captions.push_back("a photo of a " + c + ".");
      captions.push_back("a blurry photo of the " + c + ".");
      captions.push_back("a " + c + " number 12.");
    }
    const std::string spm = duet::text::train_sentencepiece(captions, 40, dir / "spm");
    write_lines(dir / "templates.txt", {"a photo of a {}.", "a blurry photo of the {}."});
    const std::string yaml = fmt::format(R"(
model:
  embed_dim: 24
  vision: {{image_size: 16, patch_size: 4, width: 32, layers: 1, heads: 2}}
  text: {{context_length: 16, vocab_size: 40, width: 32, layers: 1, heads: 2}}
tokenizer: {{type: sentencepiece, path: "{0}"}}
data: {{workers: 1}}
eval:
  batch_size: 1
  zero_shot: {{source: "{1}/test", classnames: "{1}/classnames.txt", templates: "{2}"}}
  retrieval: ["{1}/test"]
  benchmarks: ["{1}", "{3}:test"]
train: {{device: cpu}}
)",
                                         spm, cls, dir / "templates.txt", ret);
    config = duet::config::load_string(yaml, "eval_shard_test.yaml");
  }
};

nlohmann::json everything(const duet::eval::EvalResult& r) {
  return {{"metrics", r.to_json()}, {"details", duet::eval::details_json(r)}};
}

}  // namespace

TEST_CASE("evaluation sharded over 3 ranks equals the one-process evaluation") {
  Setup setup;
  const auto tokenizer = duet::text::make_tokenizer(setup.config.tokenizer);
  torch::manual_seed(5);
  duet::models::ClipModel reference(setup.config.model, tokenizer->info());
  const auto single = duet::eval::evaluate(*reference, *tokenizer, setup.config, torch::kCPU);
  REQUIRE(single.zero_shot);
  REQUIRE(single.retrieval);
  REQUIRE(single.benchmarks.size() == 2);
  CHECK(single.zero_shot->samples == kSamples);
  CHECK(single.benchmarks[0].samples == kSamples);
  CHECK(single.benchmarks[1].metrics.size() == 6);  // image/text recall@1, @5, @10
  const nlohmann::json expected = everything(single);

  constexpr int kWorld = 3;
  ThreadGather exchange(kWorld);
  std::vector<nlohmann::json> got(kWorld);
  std::vector<std::string> errors(kWorld);
  std::vector<std::thread> ranks;
  for (int rank = 0; rank < kWorld; ++rank) {
    ranks.emplace_back([&, rank] {
      try {
        duet::models::ClipModel model(setup.config.model, tokenizer->info());
        {
          torch::NoGradGuard no_grad;
          const auto from = reference->parameters();
          const auto to = model->parameters();
          for (size_t i = 0; i < from.size(); ++i) {
            to[i].copy_(from[i]);
          }
        }
        duet::eval::EvalShard shard;
        shard.rank = rank;
        shard.world_size = kWorld;
        shard.all_gather = [&, rank](const torch::Tensor& t) { return exchange.gather(rank, t); };
        got[static_cast<size_t>(rank)] =
            everything(duet::eval::evaluate(*model, *tokenizer, setup.config, torch::kCPU, shard));
      } catch (const std::exception& e) {
        errors[static_cast<size_t>(rank)] = e.what();
      }
    });
  }
  for (auto& t : ranks) {
    t.join();
  }
  for (int rank = 0; rank < kWorld; ++rank) {
    INFO("rank " << rank);
    REQUIRE(errors[static_cast<size_t>(rank)].empty());
    CHECK(got[static_cast<size_t>(rank)]["metrics"] == expected["metrics"]);
    CHECK(got[static_cast<size_t>(rank)]["details"] == expected["details"]);
  }
}

TEST_CASE("gather_strings and shard_range keep rank order with uneven shares") {
  constexpr int kWorld = 3;
  ThreadGather exchange(kWorld);
  std::vector<std::vector<std::string>> got(kWorld);
  std::vector<std::thread> ranks;
  for (int rank = 0; rank < kWorld; ++rank) {
    ranks.emplace_back([&, rank] {
      duet::eval::EvalShard shard{
          rank, kWorld, [&, rank](const torch::Tensor& t) { return exchange.gather(rank, t); }};
      std::vector<std::string> mine;
      for (int i = 0; i < rank; ++i) {  // ranks hold 0, 1 and 2 strings of odd lengths
        mine.push_back(
            std::string(static_cast<size_t>(3 + 5 * i + rank), static_cast<char>('a' + rank)));
      }
      got[static_cast<size_t>(rank)] = duet::eval::gather_strings(shard, mine);
    });
  }
  for (auto& t : ranks) {
    t.join();
  }
  const std::vector<std::string> expected = {"bbbb", "ccccc", "cccccccccc"};
  for (const auto& g : got) {
    CHECK(g == expected);
  }
  duet::eval::EvalShard a{0, 3, nullptr};
  duet::eval::EvalShard c{2, 3, nullptr};
  CHECK(duet::eval::shard_range(a, 10) == std::pair<int64_t, int64_t>{0, 4});
  CHECK(duet::eval::shard_range(c, 10) == std::pair<int64_t, int64_t>{7, 10});
}
