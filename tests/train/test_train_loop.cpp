// The step loop on the CPU, on the synthetic set (synthetic_run.h):
//  - it reads device values on the host only at logging steps (host_reads.h records every
//    deliberate read with its step; on a GPU, test_train_cuda.cpp proves the same for every
//    synchronisation with CUDA's sync debug mode);
//  - an explicit multi-process backend with one process runs the collective path (the loss
//    all-reduced on the training device) and logs the same losses as one process;
//  - metrics split the step time into data wait and compute, and SigLIP runs log logit_bias.
#include <torch/torch.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <set>

#include "common/test_util.h"
#include "synthetic_run.h"
#include "train/host_reads.h"
#include "train/metrics_jsonl.h"
#include "train/trainer.h"

using duet::test::logged_losses;
using duet::test::synthetic_run;
using duet::test::TempDir;

namespace {

// metrics.jsonl's records of training steps (those with a loss), as name -> value.
std::vector<std::map<std::string, double>> step_records(const std::string& run_dir) {
  std::vector<std::map<std::string, double>> out;
  for (const auto& record : duet::train::read_metrics_jsonl(run_dir + "/metrics.jsonl")) {
    std::map<std::string, double> values;
    for (const auto& s : record.scalars) {
      values[s.name] = s.value;
    }
    if (values.count("loss")) {
      out.push_back(values);
    }
  }
  return out;
}

}  // namespace

TEST_CASE("the step loop reads device values on the host only at logging steps", "[train]") {
  TempDir out;
  duet::train::clear_recorded_host_reads();
  const auto result = duet::train::train(
      synthetic_run().config(out.path().string(), "reads", "cpu", 8, {"logging.every_steps=4"}),
      {});
  REQUIRE(result.steps == 8);
  std::set<int64_t> steps_with_reads;
  for (const auto& read : duet::train::recorded_host_reads()) {
    if (read.step >= 0) {  // -1: outside the loop (the final checkpoint's divergence check)
      INFO("a host read at step " << read.step << ": " << read.what);
      CHECK((read.step == 4 || read.step == 8));
      steps_with_reads.insert(read.step);
    }
  }
  CHECK(steps_with_reads == std::set<int64_t>{4, 8});
}

TEST_CASE("gloo with one process runs the collective path and logs the same losses",
          "[train][distributed]") {
  TempDir out;
  const std::string dir = out.path().string();
  const auto alone = duet::train::train(synthetic_run().config(dir, "alone", "cpu", 3), {});
  const auto gloo = duet::train::train(
      synthetic_run().config(dir, "gloo", "cpu", 3, {"distributed.backend=gloo"}), {});
  const auto expected = logged_losses(alone.run_dir);
  const auto got = logged_losses(gloo.run_dir);
  REQUIRE(expected.size() == 3);
  REQUIRE(got.size() == 3);
  for (size_t i = 0; i < 3; ++i) {
    CHECK(got[i] == Approx(expected[i]).epsilon(1e-6));
  }
}

TEST_CASE("metrics split step time into data wait and compute, and SigLIP logs its bias",
          "[train][metrics]") {
  TempDir out;
  const auto clip =
      duet::train::train(synthetic_run().config(out.path().string(), "clip", "cpu", 2), {});
  for (const auto& record : step_records(clip.run_dir)) {
    for (const char* key : {"loss", "lr", "logit_scale", "grad_norm", "samples_per_second", "epoch",
                            "data_skipped", "step_time_ms", "data_wait_ms", "compute_ms"}) {
      INFO(key);
      CHECK(record.count(key) == 1);
    }
    CHECK(record.at("step_time_ms") > 0.0);
    CHECK(record.at("data_wait_ms") >= 0.0);
    CHECK(record.at("compute_ms") >= 0.0);
    CHECK(record.at("data_wait_ms") + record.at("compute_ms") == Approx(record.at("step_time_ms")));
    CHECK(record.count("logit_bias") == 0);
  }
  const auto siglip = duet::train::train(
      synthetic_run().config(out.path().string(), "siglip", "cpu", 2,
                             {"loss.type=siglip", "model.logit_bias=true",
                              "model.init_logit_scale=2.302585", "model.init_logit_bias=-10"}),
      {});
  const auto records = step_records(siglip.run_dir);
  REQUIRE(records.size() == 2);
  // The run report tells training scalars from evaluation metrics by this list.
  const auto& names = duet::train::training_metric_names();
  for (const auto& record : records) {
    for (const auto& [name, value] : record) {
      INFO(name);
      CHECK(std::find(names.begin(), names.end(), name) != names.end());
    }
    REQUIRE(record.count("logit_bias") == 1);
    CHECK(record.at("logit_bias") == Approx(-10.0).margin(0.1));
    CHECK(record.at("logit_scale") == Approx(10.0).epsilon(0.05));
  }
}

TEST_CASE("resuming from a checkpoint saved while the next batches were prepared is exact",
          "[train][checkpoint]") {
  // At a periodic checkpoint the device feeder has already drawn the next step's batches; the
  // checkpoint must hold the position after the batches used, not after those drawn ahead.
  TempDir out;
  const std::string dir = out.path().string();
  const auto whole = duet::train::train(
      synthetic_run().config(dir, "whole", "cpu", 6, {"checkpoint.every_steps=2"}), {});
  const std::string step2 = whole.run_dir + "/checkpoints/step-00000002";
  const auto resumed = duet::train::train(
      synthetic_run().config(dir, "from-step-2", "cpu", 6, {"checkpoint.resume=" + step2}), {});
  CHECK(resumed.steps == 6);
  const auto expected = logged_losses(whole.run_dir);
  const auto got = logged_losses(resumed.run_dir);  // steps 3 to 6
  REQUIRE(expected.size() == 6);
  REQUIRE(got.size() == 4);
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("step " << i + 3);
    CHECK(got[i] == Approx(expected[i + 2]).epsilon(1e-6));
  }
}
