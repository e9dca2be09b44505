// The gradients of one optimiser step (train/train_step.h): with gradient accumulation and
// feature caching, the loss and every parameter's gradient equal those of the whole batch in one
// pass, in float64, for InfoNCE and SigLIP and both loss implementations.
#include <torch/torch.h>

#include <catch2/catch.hpp>

#include "data/loader.h"
#include "models/clip_model.h"
#include "models/model_test_util.h"
#include "train/train_step.h"

namespace {

using duet::models::test::make_tokens;
using duet::models::test::tiny_config;
using duet::models::test::tiny_tokenizer;

struct Gradients {
  double loss = 0.0;
  std::map<std::string, torch::Tensor> grads;
};

Gradients step_gradients(duet::models::ClipModel& model,
                         const std::vector<duet::data::Batch>& micro,
                         const duet::train::StepOptions& options) {
  model->zero_grad();
  Gradients out;
  out.loss = duet::train::accumulate_gradients(*model, micro, options);
  for (const auto& item : model->named_parameters()) {
    REQUIRE(item.value().grad().defined());
    out.grads[item.key()] = item.value().grad().clone();
  }
  return out;
}

std::vector<duet::data::Batch> split(const duet::data::Batch& batch, int64_t parts) {
  std::vector<duet::data::Batch> micro;
  const int64_t size = batch.size() / parts;
  for (int64_t k = 0; k < parts; ++k) {
    duet::data::Batch b;
    b.images = batch.images.narrow(0, k * size, size);
    b.tokens = batch.tokens.narrow(0, k * size, size);
    micro.push_back(b);
  }
  return micro;
}

}  // namespace

TEST_CASE("accumulated micro-batches give the loss and gradients of the whole batch") {
  const std::string type = GENERATE(as<std::string>{}, "clip", "siglip");
  const std::string implementation = GENERATE(as<std::string>{}, "reference", "tiled");
  const int64_t parts = GENERATE(as<int64_t>{}, 2, 3, 6);
  CAPTURE(type, implementation, parts);

  torch::manual_seed(7);
  auto config = tiny_config();
  config.vision.patch_dropout = 0.0;
  if (type == "siglip") {
    config.logit_bias = true;
    config.init_logit_scale = std::log(10.0);
  }
  duet::models::ClipModel model(config, tiny_tokenizer());
  model->to(torch::kFloat64);

  duet::data::Batch batch;
  batch.images = torch::randn({12, 3, 16, 16}, torch::kFloat64);
  batch.tokens = make_tokens({3, 11, 1, 5, 7, 2, 9, 4, 6, 10, 8, 3}, 12);

  duet::train::StepOptions options;
  options.loss.type = *duet::config::parse<duet::config::LossType>(type);
  options.loss.implementation =
      *duet::config::parse<duet::config::LossImplementation>(implementation);
  options.loss.tile_size = 5;  // tiles that do not divide the batch

  const Gradients whole = step_gradients(model, {batch}, options);
  const Gradients accumulated = step_gradients(model, split(batch, parts), options);

  CHECK(accumulated.loss == Approx(whole.loss).epsilon(1e-12));
  for (const auto& [name, grad] : whole.grads) {
    CAPTURE(name);
    const torch::Tensor other = accumulated.grads.at(name);
    const double scale = std::max(1.0, grad.abs().max().item<double>());
    CHECK((other - grad).abs().max().item<double>() <= 1e-11 * scale);
  }
  // The temperature (and SigLIP's bias) get their gradient once, not once per micro-batch.
  CHECK(whole.grads.at("logit_scale").abs().item<double>() > 0.0);
}

TEST_CASE("a one-rank gather gives the single-process gradients") {
  torch::manual_seed(3);
  auto config = tiny_config();
  duet::models::ClipModel model(config, tiny_tokenizer());
  model->to(torch::kFloat64);
  duet::data::Batch batch;
  batch.images = torch::randn({6, 3, 16, 16}, torch::kFloat64);
  batch.tokens = make_tokens({3, 11, 1, 5, 7, 2}, 12);

  duet::train::StepOptions options;
  const Gradients plain = step_gradients(model, split(batch, 2), options);
  int64_t gathers = 0;
  options.gather.all_gather = [&](const torch::Tensor& local) {
    ++gathers;
    return local;
  };
  const Gradients gathered = step_gradients(model, split(batch, 2), options);
  CHECK(gathers == 4);  // images and texts, once per micro-batch
  CHECK(gathered.loss == Approx(plain.loss).epsilon(1e-12));
  for (const auto& [name, grad] : plain.grads) {
    CAPTURE(name);
    CHECK(torch::allclose(gathered.grads.at(name), grad, 1e-12, 1e-14));
  }
}
