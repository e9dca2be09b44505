// Zero-shot classification end to end through eval::evaluate: labelled PNG shards written by the
// test, a SentencePiece tokenizer, a small random model; top-1 / top-5 checked against the same
// quantities computed here from first principles (every prompt encoded alone, class embedding =
// normalised mean of its prompts, prediction ranks over all classes), in float64.
#include <torch/torch.h>

#include <catch2/catch.hpp>

#include <fstream>

#include "common/error.h"
#include "common/test_util.h"
#include "config/loader.h"
#include "data/fashion_mnist.h"
#include "data/image_encode.h"
#include "data/loader.h"
#include "data/tar_writer.h"
#include "data/zero_shot_prompts.h"
#include "eval/evaluate.h"
#include "models/clip_model.h"
#include "text/sentencepiece_tokenizer.h"
#include "text/tokenizer.h"

namespace {

using duet::test::TempDir;

constexpr int64_t kSamples = 45;
constexpr int64_t kContext = 16;

void write_lines(const std::string& path, const std::vector<std::string>& lines) {
  std::ofstream out(path);
  for (const auto& line : lines) {
    out << line << '\n';
  }
}

// kSamples random 16x16 RGB PNGs labelled 0..9 in one shard.
std::string write_labelled_shard(const std::string& dir) {
  const std::string path = dir + "/labelled-000000.tar";
  duet::data::TarWriter writer(path);
  torch::manual_seed(11);
  const torch::Tensor pixels = torch::randint(0, 256, {kSamples, 16, 16, 3}, torch::kUInt8);
  for (int64_t i = 0; i < kSamples; ++i) {
    const std::string key = fmt::format("{:06d}", i);
    const torch::Tensor image = pixels[i].contiguous();
    writer.add(key + ".png", duet::data::encode_png(image.data_ptr<uint8_t>(), 16, 16, 3));
    writer.add(key + ".cls", std::to_string((i * 7) % 10));
  }
  writer.close();
  return path;
}

struct Setup {
  TempDir dir;
  std::string shard;
  std::string classnames;
  std::string templates;
  std::string tokenizer;

  Setup() {
    shard = write_labelled_shard(dir.path().string());
    classnames = (dir / "classnames.txt");
    templates = (dir / "templates.txt");
    const auto& classes = duet::data::fashion_mnist_classes();
    const auto& patterns = duet::data::fashion_mnist_templates();
    write_lines(classnames, classes);
    write_lines(templates, {patterns.begin(), patterns.begin() + 4});
    std::vector<std::string> captions;
    for (const auto& t : patterns) {
      for (const auto& c : classes) {
        captions.push_back(duet::data::fill_template(t, c));
      }
    }
    tokenizer = duet::text::train_sentencepiece(captions, 56, dir / "spm");
  }

  duet::config::Config config(const std::string& classnames_file) const {
    const std::string yaml = fmt::format(R"(
model:
  embed_dim: 24
  vision: {{image_size: 16, patch_size: 4, width: 32, layers: 1, heads: 2}}
  text: {{context_length: {}, vocab_size: 56, width: 32, layers: 1, heads: 2}}
tokenizer: {{type: sentencepiece, path: "{}"}}
eval:
  batch_size: 7
  zero_shot: {{source: "{}", classnames: "{}", templates: "{}"}}
train: {{device: cpu}}
)",
                                         kContext, tokenizer, shard, classnames_file, templates);
    return duet::config::load_string(yaml, "zero_shot_test.yaml");
  }
};

torch::Tensor unit(const torch::Tensor& x) { return x / x.norm(2, -1, true); }

}  // namespace

TEST_CASE("zero-shot top-1 and top-5 match a first-principles computation") {
  Setup setup;
  const auto config = setup.config(setup.classnames);
  const auto tokenizer = duet::text::make_tokenizer(config.tokenizer);
  torch::manual_seed(5);
  duet::models::ClipModel model(config.model, tokenizer->info());
  model->train(false);

  const duet::eval::EvalResult result =
      duet::eval::evaluate(*model, *tokenizer, config, torch::kCPU);
  REQUIRE(result.zero_shot.has_value());
  CHECK(result.zero_shot->samples == kSamples);
  CHECK(result.zero_shot->classes == 10);

  // Class embeddings, one prompt at a time.
  torch::NoGradGuard no_grad;
  const auto prompts = duet::data::read_zero_shot_prompts(setup.classnames, setup.templates);
  REQUIRE(prompts.templates.size() == 4);
  std::vector<torch::Tensor> classes;
  for (const auto& name : prompts.classnames) {
    std::vector<torch::Tensor> each;
    for (const auto& pattern : prompts.templates) {
      const auto ids = tokenizer->tokenize(duet::data::fill_template(pattern, name), kContext);
      const torch::Tensor tokens = torch::tensor(ids, torch::kInt64).unsqueeze(0);
      each.push_back(unit(model->encode_text(tokens).to(torch::kFloat64)).squeeze(0));
    }
    classes.push_back(unit(torch::stack(each).mean(0)));
  }
  const torch::Tensor class_matrix = torch::stack(classes);  // [10, E]

  // Images through the evaluation loader (what is under test is the scoring, not the decode).
  duet::data::LoaderOptions options;
  options.sources = {setup.shard};
  options.mode = duet::data::LoaderMode::kEval;
  options.batch_size = 64;
  options.image_size = 16;
  options.require_captions = false;
  options.require_labels = true;
  duet::data::Loader loader(config.data, options);
  auto batch = loader.next();
  REQUIRE(batch.has_value());
  REQUIRE(batch->size() == kSamples);
  const torch::Tensor images = unit(model->encode_image(batch->images).to(torch::kFloat64));
  const torch::Tensor scores = images.matmul(class_matrix.t());  // [N, 10]
  int64_t top1 = 0;
  int64_t top5 = 0;
  for (int64_t i = 0; i < kSamples; ++i) {
    const int64_t label = batch->labels[i].item<int64_t>();
    CHECK(label == (i * 7) % 10);
    const double own = scores[i][label].item<double>();
    const int64_t higher = (scores[i] > own).sum().item<int64_t>();  // rank - 1
    top1 += higher == 0;
    top5 += higher < 5;
  }
  CHECK(result.zero_shot->top1 == Approx(static_cast<double>(top1) / kSamples));
  CHECK(result.zero_shot->top5 == Approx(static_cast<double>(top5) / kSamples));
  // A random model ranks most labels somewhere in the middle: the check is not trivially 0 or 1.
  CHECK(top5 > top1);
  CHECK(top5 < kSamples);

  const auto json = result.to_json();
  CHECK(json.at("zero_shot_top1").get<double>() == Approx(result.zero_shot->top1));
}

TEST_CASE("labels outside the class list are an error naming the files") {
  Setup setup;
  const std::string three = setup.dir / "three.txt";
  write_lines(three, {"t-shirt", "trouser", "pullover"});
  const auto config = setup.config(three);
  const auto tokenizer = duet::text::make_tokenizer(config.tokenizer);
  duet::models::ClipModel model(config.model, tokenizer->info());
  try {
    duet::eval::evaluate(*model, *tokenizer, config, torch::kCPU);
    FAIL("labels 3..9 with 3 classes were accepted");
  } catch (const duet::Error& e) {
    CHECK_THAT(e.what(), Catch::Contains("fall outside the 3 classes"));
    CHECK_THAT(e.what(), Catch::Contains("three.txt"));
  }
}
