// End to end on real data (Fashion-MNIST shards written by the test): a run interrupted and
// resumed gives the same losses step for step as the uninterrupted run; corrupt checkpoints are
// detected and `resume: latest` falls back to the newest good one; a fresh run refuses a run
// directory that already holds checkpoints; the optimiser's weight-decay groups and schedule.
#include <torch/torch.h>

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "common/test_util.h"
#include "config/loader.h"
#include "data/fashion_mnist.h"
#include "data/zero_shot_prompts.h"
#include "text/sentencepiece_tokenizer.h"
#include "train/checkpoint_store.h"
#include "train/metrics_jsonl.h"
#include "train/optimizer.h"
#include "train/schedule.h"
#include "train/trainer.h"

namespace fs = std::filesystem;
using duet::test::TempDir;

namespace {

// Fashion-MNIST shards and a SentencePiece model, made once for all cases of this binary.
struct Fixture {
  TempDir dir;
  std::string train_pattern;
  std::string tokenizer;

  Fixture() {
    duet::data::FashionMnistOptions options;
    options.out_dir = dir / "fm";
    const auto summary = duet::data::write_fashion_mnist(options);
    train_pattern = summary.splits.at("train").pattern;
    std::vector<std::string> captions;
    for (const auto& t : duet::data::fashion_mnist_templates()) {
      for (const auto& c : duet::data::fashion_mnist_classes()) {
        captions.push_back(duet::data::fill_template(t, c));
      }
    }
    tokenizer = duet::text::train_sentencepiece(captions, 56, dir / "spm");
  }
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

duet::config::Config small_run(const std::string& output_dir, const std::string& run_name,
                               const std::vector<std::string>& extra = {}) {
  const std::string yaml =
      fmt::format(R"(
model:
  embed_dim: 32
  vision: {{image_size: 28, patch_size: 7, width: 32, layers: 1, heads: 2, patch_dropout: 0.25}}
  text: {{context_length: 16, vocab_size: 56, width: 32, layers: 1, heads: 2}}
tokenizer: {{type: sentencepiece, path: "{}"}}
data: {{train: ["{}"], workers: 2, shuffle_buffer: 200}}
optim: {{lr: 0.003}}
schedule: {{warmup_steps: 2}}
train: {{steps: 6, batch_size: 32, accum_steps: 2, threads: 1, device: cpu, output_dir: "{}",
         run_name: {}}}
logging: {{every_steps: 1, tensorboard: false}}
checkpoint: {{keep_last: 5}}
)",
                  fixture().tokenizer, fixture().train_pattern, output_dir, run_name);
  return duet::config::load_string(yaml, "small_run.yaml", extra);
}

std::vector<double> logged_losses(const std::string& run_dir) {
  std::vector<double> losses;
  for (const auto& record : duet::train::read_metrics_jsonl(run_dir + "/metrics.jsonl")) {
    for (const auto& scalar : record.scalars) {
      if (scalar.name == "loss") {
        losses.push_back(scalar.value);
      }
    }
  }
  return losses;
}

}  // namespace

TEST_CASE("an interrupted and resumed run gives the same losses step for step") {
  TempDir out;
  const auto whole = duet::train::train(small_run(out.path().string(), "whole"), {});
  CHECK(whole.steps == 6);

  duet::train::TrainOptions interrupt;
  interrupt.stop_after = 3;
  const auto first = duet::train::train(small_run(out.path().string(), "parts"), interrupt);
  CHECK(first.steps == 3);
  const auto second =
      duet::train::train(small_run(out.path().string(), "parts", {"checkpoint.resume=latest"}), {});
  CHECK(second.steps == 6);

  const auto expected = logged_losses(whole.run_dir);
  const auto resumed = logged_losses(second.run_dir);
  REQUIRE(expected.size() == 6);
  REQUIRE(resumed.size() == 6);
  for (size_t i = 0; i < expected.size(); ++i) {
    INFO("step " << i + 1);
    CHECK(resumed[i] == Approx(expected[i]).epsilon(1e-6));
  }
  // Training moved the loss: the comparison is not between two constants.
  CHECK(expected.front() != Approx(expected.back()).epsilon(1e-3));

  // Resuming a finished run trains, saves and evaluates nothing more; a checkpoint past the
  // configured steps is refused.
  const auto again =
      duet::train::train(small_run(out.path().string(), "parts", {"checkpoint.resume=latest"}), {});
  CHECK(again.already_complete);
  CHECK(again.steps == 6);
  CHECK(again.last_checkpoint == second.last_checkpoint);
  CHECK(logged_losses(second.run_dir).size() == 6);
  try {
    duet::train::train(
        small_run(out.path().string(), "parts", {"checkpoint.resume=latest", "train.steps=4"}), {});
    FAIL("a checkpoint past train.steps was resumed");
  } catch (const duet::Error& e) {
    CHECK(e.kind() == duet::ErrorKind::kConfig);
    CHECK_THAT(e.what(), Catch::Contains("at step 6, past the 4 steps"));
  }

  SECTION("a corrupt newest checkpoint is detected and latest falls back") {
    duet::train::CheckpointStore store(second.run_dir + "/checkpoints", 5);
    const auto paths = store.list();
    REQUIRE(paths.size() == 2);  // step 3 (interrupted) and step 6 (the end)
    const std::string model = paths.back() + "/model.pt";
    fs::resize_file(model, fs::file_size(model) / 2);
    try {
      duet::train::CheckpointStore::validate(paths.back());
      FAIL("a truncated checkpoint validated");
    } catch (const duet::Error& e) {
      CHECK_THAT(e.what(), Catch::Contains("model.pt"));
      CHECK_THAT(e.what(), Catch::Contains("truncated"));
    }
    const auto good = store.latest_good();
    REQUIRE(good.has_value());
    CHECK(good->step == 3);
    CHECK_THROWS_AS(duet::train::evaluate_checkpoint(paths.back(), std::nullopt), duet::Error);
  }

  SECTION("a fresh run does not overwrite a run directory with checkpoints") {
    try {
      duet::train::train(small_run(out.path().string(), "whole"), {});
      FAIL("a fresh run reused a run directory");
    } catch (const duet::Error& e) {
      CHECK(e.kind() == duet::ErrorKind::kConfig);
      CHECK_THAT(e.what(), Catch::Contains("checkpoint.resume: latest"));
    }
  }
}

TEST_CASE("weight decay skips gains, biases, embeddings and the logit scale") {
  const torch::Tensor matrix = torch::zeros({4, 4});
  const torch::Tensor vector = torch::zeros({4});
  CHECK_FALSE(duet::train::exempt_from_weight_decay("visual.conv1.weight", matrix));
  CHECK_FALSE(
      duet::train::exempt_from_weight_decay("transformer.resblocks.0.attn.in_proj_weight", matrix));
  CHECK(duet::train::exempt_from_weight_decay("positional_embedding", matrix));
  CHECK(duet::train::exempt_from_weight_decay("token_embedding.weight", matrix));
  CHECK(duet::train::exempt_from_weight_decay("ln_final.weight", vector));
  CHECK(duet::train::exempt_from_weight_decay("transformer.resblocks.0.attn.in_proj_bias", vector));
  CHECK(duet::train::exempt_from_weight_decay("logit_scale", torch::zeros({})));
}

TEST_CASE("warmup then cosine to min_lr, or constant after warmup") {
  duet::config::ScheduleConfig schedule;
  schedule.warmup_steps = 10;
  schedule.min_lr = 0.1;
  const duet::train::LrSchedule cosine(schedule, 1.0, 110);
  CHECK(cosine.at(0) == Approx(0.1));
  CHECK(cosine.at(9) == Approx(1.0));
  CHECK(cosine.at(10) == Approx(1.0));
  CHECK(cosine.at(60) == Approx(0.55));
  CHECK(cosine.at(110) == Approx(0.1));
  schedule.type = duet::config::ScheduleType::kConstant;
  const duet::train::LrSchedule constant(schedule, 1.0, 110);
  CHECK(constant.at(5) == Approx(0.6));
  CHECK(constant.at(100) == Approx(1.0));
}

TEST_CASE("a bf16 run trains with float32 master weights and finite losses") {
  // Whether each step sees the updated weights is proven in test_bf16_step.cpp; here the whole
  // loop runs in bf16 and its checkpoint holds float32 weights.
  TempDir out;
  const auto bf16 =
      duet::train::train(small_run(out.path().string(), "bf16", {"train.precision=bf16"}), {});
  CHECK(std::isfinite(bf16.last_loss));
  CHECK(bf16.skipped_steps == 0);
  torch::serialize::InputArchive archive;
  archive.load_from(bf16.last_checkpoint + "/model.pt");
  int64_t tensors = 0;
  std::function<void(torch::serialize::InputArchive&)> check_float32 = [&](auto& node) {
    for (const auto& key : node.keys()) {
      torch::Tensor value;
      torch::serialize::InputArchive child;
      if (node.try_read(key, value)) {
        CAPTURE(key);
        CHECK(value.scalar_type() == torch::kFloat32);
        ++tensors;
      } else if (node.try_read(key, child)) {
        check_float32(child);
      }
    }
  };
  check_float32(archive);
  CHECK(tensors > 20);
}

TEST_CASE("non-finite steps are skipped, and too many in a row stop the run with a clear message") {
  TempDir out;
  // exp(100) as the temperature overflows the float32 logits: every step's loss is non-finite.
  const auto config = small_run(
      out.path().string(), "diverge",
      {"optim.logit_scale_max=100", "model.init_logit_scale=100", "train.nan_patience=3"});
  try {
    duet::train::train(config, {});
    FAIL("a diverged run did not stop");
  } catch (const duet::Error& e) {
    CHECK_THAT(e.what(), Catch::Contains("training diverged: 3 consecutive steps"));
    CHECK_THAT(e.what(), Catch::Contains("train.nan_patience = 3"));
  }
  // No optimiser step was taken: the run directory holds no checkpoint.
  CHECK(
      duet::train::CheckpointStore(out.path().string() + "/diverge/checkpoints", 5).list().empty());
}
