#pragma once
// `duet train`: the whole training loop, readable top to bottom in trainer.cpp's train().
//
// Per optimiser step: the schedule sets the learning rate; train.accum_steps micro-batches are
// drawn; with accumulation their features are first computed without gradients and cached, then
// each micro-batch is re-encoded with gradients and the loss is taken over the whole accumulated
// batch (cached features for the others), so the contrastive batch is train.batch_size while
// activations stay at one micro-batch; gradients are clipped, non-finite steps skipped; AdamW
// steps and logit_scale is clamped (train_step.h holds the gradient computation). Progress,
// metrics, evaluation and checkpoints follow their every_steps settings. Resuming restores model,
// optimiser, RNG and loader position, so the run continues exactly as if it had not stopped.
#include <cstdint>
#include <optional>
#include <string>

#include <torch/types.h>

#include "config/config.h"
#include "eval/evaluate.h"

namespace duet::train {

struct TrainOptions {
  // Run directory name when train.run_name is empty (the config file's stem).
  std::string default_run_name = "run";
  // Stop after this many optimiser steps of this invocation (tests interrupt runs with it);
  // 0: run to train.steps.
  int64_t stop_after = 0;
};

struct TrainResult {
  std::string run_dir;
  std::string last_checkpoint;
  int64_t steps = 0;          // optimiser steps completed in total (resumed ones included)
  int64_t skipped_steps = 0;  // non-finite steps skipped by this invocation
  double last_loss = 0.0;
  int rank = 0;  // this process's rank: only rank 0 writes the run directory and reports
  bool already_complete = false;  // resumed at the last step: nothing trained, saved or evaluated
  eval::EvalResult final_eval;
};

TrainResult train(const config::Config& config, const TrainOptions& options);

// The device train.device names: cpu, cuda (an Error when unavailable) or auto.
torch::Device resolve_device(config::DeviceChoice device);

// `duet eval`: loads the model weights of a checkpoint directory and evaluates as config.eval
// says. The checkpoint's own resolved config is used when `config` is null.
eval::EvalResult evaluate_checkpoint(const std::string& checkpoint,
                                     const std::optional<config::Config>& config);

}  // namespace duet::train
