// bf16 autocast in the train step: every step's forward must run on the weights the optimiser
// left after the previous step. A model whose bf16 weight copies were cached across steps would
// compute its loss from the first step's weights; a fresh copy of the model (no cache of its own)
// tells the two apart.
#include <torch/torch.h>

#include <catch2/catch.hpp>

#include "data/loader.h"
#include "models/clip_model.h"
#include "models/model_test_util.h"
#include "train/train_step.h"

using duet::models::test::copy_parameters;
using duet::models::test::make_tokens;
using duet::models::test::tiny_config;
using duet::models::test::tiny_tokenizer;

TEST_CASE("bf16 steps: each step's loss is that of the weights the optimiser just updated") {
  torch::manual_seed(11);
  auto config = tiny_config();
  config.vision.patch_dropout = 0.0;  // deterministic forward: the two models must agree exactly
  duet::models::ClipModel model(config, tiny_tokenizer());
  torch::optim::AdamW optimizer(model->parameters(), torch::optim::AdamWOptions(1e-2));

  duet::data::Batch batch;
  batch.images = torch::randn({8, 3, 16, 16});
  batch.tokens = make_tokens({3, 11, 1, 5, 7, 2, 9, 4}, 12);
  duet::train::StepOptions options;
  options.bf16 = true;

  double first_loss = 0.0;
  for (int step = 0; step < 4; ++step) {
    INFO("step " << step);
    duet::models::ClipModel fresh(config, tiny_tokenizer());
    copy_parameters(*fresh, *model);
    const double expected =
        duet::train::accumulate_gradients(*fresh, {batch}, options).item<double>();

    optimizer.zero_grad();
    const double loss = duet::train::accumulate_gradients(*model, {batch}, options).item<double>();
    CHECK(loss == Approx(expected).epsilon(1e-6));
    optimizer.step();
    if (step == 0) {
      first_loss = loss;
    } else {
      CHECK(loss != first_loss);  // the weights moved, so the loss must have too
    }
  }
  // Autocast computes in bf16 but the master weights stay float32.
  for (const auto& parameter : model->parameters()) {
    CHECK(parameter.scalar_type() == torch::kFloat32);
  }
}
