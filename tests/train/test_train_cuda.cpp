// [cuda]: the trainer on a GPU. Each test needs a CUDA device and skips visibly without one
// (DUET_REQUIRE_CUDA_DEVICE); scripts/gpu_check.sh runs them on a lent GPU. They train on the
// synthetic set of synthetic_run.h, so they need no dataset on the GPU machine.
//  - no step waits for the GPU outside logging steps: CUDA's sync debug mode turns any host
//    synchronisation in a step into an error (TrainOptions::check_host_syncs);
//  - a run stopped and resumed on the GPU logs the uninterrupted run's losses, patch dropout
//    (drawn by the GPU's generator) included;
//  - distributed.backend nccl with one process trains through the NCCL communicator;
//  - the device feeder hands out the loader's batches, in order, on the GPU;
//  - a checkpoint written on the GPU loads into a model on the CPU.
#include <torch/torch.h>

#include <catch2/catch.hpp>

#include <cmath>

#include "common/device_test_util.h"
#include "common/test_util.h"
#include "data/loader.h"
#include "distributed/communicator.h"
#include "models/clip_model.h"
#include "synthetic_run.h"
#include "text/tokenizer.h"
#include "train/checkpoint.h"
#include "train/device_feeder.h"
#include "train/sync_check.h"
#include "train/trainer.h"

using duet::test::logged_losses;
using duet::test::synthetic_run;
using duet::test::TempDir;

TEST_CASE("steps on the GPU never wait for it outside logging steps", "[train][cuda]") {
  DUET_REQUIRE_CUDA_DEVICE();
  REQUIRE(duet::train::host_sync_check_available());
  TempDir out;
  duet::train::TrainOptions options;
  options.check_host_syncs = true;  // a synchronisation inside a step throws
  // Logging every 3rd step: steps 1, 2, 4 and 5 run entirely under the check.
  const auto config =
      synthetic_run().config(out.path().string(), "sync", "cuda", 6, {"logging.every_steps=3"});
  const auto result = duet::train::train(config, options);
  CHECK(result.steps == 6);
  CHECK(std::isfinite(result.last_loss));
}

TEST_CASE("a run stopped and resumed on the GPU logs the uninterrupted run's losses",
          "[train][cuda]") {
  DUET_REQUIRE_CUDA_DEVICE();
  TempDir out;
  const std::string dir = out.path().string();
  const auto whole = duet::train::train(synthetic_run().config(dir, "whole", "cuda", 6), {});
  duet::train::TrainOptions interrupt;
  interrupt.stop_after = 3;
  duet::train::train(synthetic_run().config(dir, "parts", "cuda", 6), interrupt);
  const auto resumed = duet::train::train(
      synthetic_run().config(dir, "parts", "cuda", 6, {"checkpoint.resume=latest"}), {});
  CHECK(resumed.steps == 6);
  const auto expected = logged_losses(whole.run_dir);
  const auto got = logged_losses(resumed.run_dir);
  REQUIRE(expected.size() == 6);
  REQUIRE(got.size() == 6);
  for (size_t i = 0; i < expected.size(); ++i) {
    INFO("step " << i + 1);
    // GPU kernels may add in another order from run to run (atomics): a relative 1e-4 is far
    // below what a different patch-dropout draw changes (percents).
    CHECK(got[i] == Approx(expected[i]).epsilon(1e-4));
  }
}

TEST_CASE("distributed.backend nccl with one process trains through NCCL", "[train][cuda]") {
  DUET_REQUIRE_CUDA_DEVICE();
  if (!duet::distributed::nccl_available()) {
    DUET_WARN_DEVICE_SKIP("this build has no NCCL communicator");
    return;
  }
  TempDir out;
  const auto result = duet::train::train(
      synthetic_run().config(out.path().string(), "nccl", "cuda", 3, {"distributed.backend=nccl"}),
      {});
  CHECK(result.steps == 3);
  CHECK(std::isfinite(result.last_loss));
}

TEST_CASE("the device feeder hands out the loader's batches, in order, on the GPU",
          "[train][cuda]") {
  DUET_REQUIRE_CUDA_DEVICE();
  TempDir out;
  const auto config = synthetic_run().config(out.path().string(), "feeder", "cuda", 1);
  const std::shared_ptr<const duet::text::Tokenizer> tokenizer =
      duet::text::make_tokenizer(config.tokenizer);
  auto loader_options = [&](bool pinned) {
    duet::data::LoaderOptions o;
    o.sources = config.data.train;
    o.batch_size = 8;
    o.image_size = config.model.vision.image_size;
    o.context_length = config.model.text.context_length;
    o.tokenizer = tokenizer;
    o.pin_memory = pinned;
    return o;
  };
  duet::data::Loader on_gpu(config.data, loader_options(true));
  duet::data::Loader on_cpu(config.data, loader_options(false));
  const torch::Device device(torch::kCUDA, 0);
  duet::train::DeviceFeeder feeder(on_gpu, device, 2, {});
  for (int step = 0; step < 20; ++step) {  // past the end of an epoch (16 batches of 8)
    INFO("step " << step);
    const auto batches = feeder.take();
    feeder.prepare_next();
    REQUIRE(batches.size() == 2);
    for (const auto& b : batches) {
      auto expected = on_cpu.next();
      if (!expected) {
        expected = on_cpu.next();
      }
      REQUIRE(expected.has_value());
      CHECK(b.images.device() == device);
      CHECK(b.images.cpu().equal(expected->images));
      CHECK(b.tokens.cpu().equal(expected->tokens));
    }
  }
}

TEST_CASE("a checkpoint written on the GPU loads into a model on the CPU", "[train][cuda]") {
  DUET_REQUIRE_CUDA_DEVICE();
  TempDir out;
  const auto config = synthetic_run().config(out.path().string(), "portable", "cuda", 2);
  const auto result = duet::train::train(config, {});
  const auto tokenizer = duet::text::make_tokenizer(config.tokenizer);
  duet::models::ClipModel model(config.model, tokenizer->info());
  duet::train::load_model_weights(*model, result.last_checkpoint);
  for (const auto& p : model->parameters()) {
    CHECK(p.device().is_cpu());
  }
  const auto tensors = duet::train::read_model_tensors(result.last_checkpoint);
  CHECK(tensors.at("logit_scale").device().is_cpu());
  CHECK(model->logit_scale.equal(tensors.at("logit_scale")));
}
