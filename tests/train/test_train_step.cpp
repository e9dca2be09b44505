// The gradients of one optimiser step (train/train_step.h): with gradient accumulation and
// feature caching, the loss and every parameter's gradient equal those of the whole batch in one
// pass, in float64, for InfoNCE and SigLIP and both loss implementations; and a one-rank gather
// (a copy of the local rows, as a real gather returns) runs the loss in its multi-rank form and
// gives the same gradients as the one-process form.
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
  out.loss = duet::train::accumulate_gradients(*model, micro, options).item<double>();
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

// The tiny model in float64 without patch dropout; for "siglip" with SigLIP's learnable bias
// and scale ln 10.
duet::models::ClipModel make_model(const std::string& type) {
  auto config = tiny_config();
  config.vision.patch_dropout = 0.0;
  if (type == "siglip") {
    config.logit_bias = true;
    config.init_logit_scale = std::log(10.0);
  }
  duet::models::ClipModel model(config, tiny_tokenizer());
  model->to(torch::kFloat64);
  return model;
}

// `batch_size` (at most 12) random images and texts, the texts' EOT at varied positions.
duet::data::Batch make_batch(int64_t batch_size) {
  const std::vector<int64_t> eot_positions = {3, 11, 1, 5, 7, 2, 9, 4, 6, 10, 8, 3};
  duet::data::Batch batch;
  batch.images = torch::randn({batch_size, 3, 16, 16}, torch::kFloat64);
  batch.tokens = make_tokens(
      std::vector<int64_t>(eot_positions.begin(), eot_positions.begin() + batch_size), 12);
  return batch;
}

duet::train::StepOptions step_options(const std::string& type, const std::string& implementation,
                                      int64_t tile_size) {
  duet::train::StepOptions options;
  options.loss.type = duet::config::parse<duet::config::LossType>(type).value();
  options.loss.implementation =
      duet::config::parse<duet::config::LossImplementation>(implementation).value();
  options.loss.tile_size = tile_size;
  return options;
}

}  // namespace

TEST_CASE("accumulated micro-batches give the loss and gradients of the whole batch") {
  const std::string type = GENERATE(as<std::string>{}, "clip", "siglip");
  const std::string implementation = GENERATE(as<std::string>{}, "reference", "tiled");
  const int64_t parts = GENERATE(as<int64_t>{}, 2, 3, 6);
  CAPTURE(type, implementation, parts);

  torch::manual_seed(7);
  duet::models::ClipModel model = make_model(type);
  const duet::data::Batch batch = make_batch(12);
  const auto options = step_options(type, implementation, 5);  // tiles that do not divide 12

  const Gradients whole = step_gradients(model, {batch}, options);
  const Gradients accumulated = step_gradients(model, split(batch, parts), options);

  CHECK(accumulated.loss == Approx(whole.loss).epsilon(1e-12));
  for (const auto& [name, grad] : whole.grads) {
    CAPTURE(name);
    const torch::Tensor other = accumulated.grads.at(name);
    const double scale = std::max(1.0, grad.abs().max().item<double>());
    CHECK((other - grad).abs().max().item<double>() <= 1e-11 * scale);
  }
  // The loop above includes logit_scale (and SigLIP's logit_bias): counted once per micro-batch
  // instead of once per step, the accumulated gradient would be `parts` times the whole batch's.
  // That check is only meaningful when the gradient is not zero.
  CHECK(whole.grads.at("logit_scale").abs().item<double>() > 0.0);
  if (type == "siglip") {
    CHECK(whole.grads.at("logit_bias").abs().item<double>() > 0.0);
  }
}

TEST_CASE(
    "a one-rank gather takes the multi-rank loss path and gives the single-process gradients") {
  const std::string type = GENERATE(as<std::string>{}, "clip", "siglip");
  const std::string implementation = GENERATE(as<std::string>{}, "reference", "tiled");
  CAPTURE(type, implementation);

  torch::manual_seed(3);
  duet::models::ClipModel model = make_model(type);
  const duet::data::Batch batch = make_batch(6);
  auto options = step_options(type, implementation, 4);  // tiles that do not divide 6 rows
  const Gradients plain = step_gradients(model, split(batch, 2), options);
  // What a one-rank all-gather with gradients returns: a new tensor holding the local rows, whose
  // gradient flows back to them. A copy rather than `local` itself, so the loss cannot tell it
  // from a real gather and runs its general (local rows x gathered batch) form.
  int64_t gathers = 0;
  options.gather.all_gather = [&](const torch::Tensor& local) {
    ++gathers;
    torch::Tensor gathered = local.clone();
    CHECK_FALSE(gathered.is_same(local));
    CHECK(gathered.requires_grad());
    return gathered;
  };
  const Gradients gathered = step_gradients(model, split(batch, 2), options);
  CHECK(gathers == 4);  // images and texts, once per micro-batch
  CHECK(gathered.loss == Approx(plain.loss).epsilon(1e-12));
  for (const auto& [name, grad] : plain.grads) {
    CAPTURE(name);
    CHECK(torch::allclose(gathered.grads.at(name), grad, 1e-12, 1e-14));
  }
}
