#include "synthetic_run.h"

#include <fmt/format.h>

#include <filesystem>

#include "config/loader.h"
#include "text/sentencepiece_tokenizer.h"
#include "train/metrics_jsonl.h"

namespace duet::test {

SyntheticRun::SyntheticRun() {
  constexpr int kShards = 2;
  constexpr int kPerShard = 64;
  std::vector<std::string> captions;
  std::filesystem::create_directories(dir_.path() / "train");
  for (int s = 0; s < kShards; ++s) {
    data::testing::write_valid_shard(dir_.file(fmt::format("train/{:06d}.tar", s)),
                                     fmt::format("item{}", s), kPerShard);
    for (int i = 0; i < kPerShard; ++i) {
      captions.push_back(fmt::format("item{} {}", s, i));
    }
  }
  shards_ = dir_.file(fmt::format("train/{{000000..{:06d}}}.tar", kShards - 1));
  tokenizer_ = text::train_sentencepiece(captions, 24, dir_.file("spm"));
}

config::Config SyntheticRun::config(const std::string& output_dir, const std::string& run_name,
                                    const std::string& device, int steps,
                                    const std::vector<std::string>& overrides) const {
  const std::string yaml = fmt::format(R"(
model:
  embed_dim: 32
  vision: {{image_size: 16, patch_size: 4, width: 32, layers: 1, heads: 2, patch_dropout: 0.25}}
  text: {{context_length: 12, vocab_size: 24, width: 32, layers: 1, heads: 2}}
tokenizer: {{type: sentencepiece, path: "{}"}}
data: {{train: ["{}"], workers: 1, shuffle_buffer: 50}}
loss: {{implementation: reference}}
optim: {{lr: 0.003}}
schedule: {{warmup_steps: 1}}
train: {{steps: {}, batch_size: 16, accum_steps: 2, threads: 1, device: {}, output_dir: "{}",
         run_name: {}}}
logging: {{every_steps: 1, tensorboard: false}}
checkpoint: {{keep_last: 5}}
)",
                                       tokenizer_, shards_, steps, device, output_dir, run_name);
  return config::load_string(yaml, "synthetic_run.yaml", overrides);
}

SyntheticRun& synthetic_run() {
  static SyntheticRun run;
  return run;
}

std::vector<double> logged_losses(const std::string& run_dir) {
  std::vector<double> losses;
  for (const auto& record : train::read_metrics_jsonl(run_dir + "/metrics.jsonl")) {
    for (const auto& scalar : record.scalars) {
      if (scalar.name == "loss") {
        losses.push_back(scalar.value);
      }
    }
  }
  return losses;
}

}  // namespace duet::test
