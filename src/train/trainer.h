#pragma once
// `duet train`. train() reads top to bottom as a run goes:
//   1. plan (run_plan.h): device, ranks, run directory, where to resume from, how many steps;
//   2. build: tokenizer, model, optimiser, loader and the device feeder that keeps the GPU fed
//      (device_feeder.h); restore a checkpoint's state when resuming (checkpoint.h);
//   3. the step loop (trainer.cpp's run_steps): per optimiser step the schedule sets the
//      learning rate; train.accum_steps micro-batches arrive on the device; their gradients are
//      accumulated over the whole batch (train_step.h) and averaged over ranks; the gradient norm
//      is clipped; AdamW steps (or, for a non-finite loss or norm, skips on the device); the
//      logit scale is clamped; the reporter (reporter.h) logs, evaluation and checkpoints follow
//      their every_steps;
//   4. the end: a last checkpoint, the final evaluation, the loss plot.
// Resuming restores model, optimiser, every rank's generators (CPU and GPU) and loader position,
// so the run continues exactly as if it had not stopped.
//
// Invariant: inside the step loop the host reads device values only at logging, evaluation and
// checkpoint steps (host_reads.h), so a GPU is never left waiting in between; on a GPU,
// TrainOptions::check_host_syncs makes any other synchronisation an error (sync_check.h).
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
  // Make any host-device synchronisation inside a step (outside logging, evaluation and
  // checkpoint steps) an error: CUDA's sync debug mode (sync_check.h). CUDA builds only.
  bool check_host_syncs = false;
};

struct TrainResult {
  std::string run_dir;
  std::string last_checkpoint;
  int64_t steps = 0;          // optimiser steps completed in total (resumed ones included)
  int64_t skipped_steps = 0;  // non-finite steps skipped by this invocation
  double last_loss = 0.0;     // mean loss of the last logging window
  int rank = 0;  // this process's rank: only rank 0 writes the run directory and reports
  bool already_complete = false;  // resumed at the last step: nothing trained, saved or evaluated
  eval::EvalResult final_eval;
  std::string report;  // RUN_DIR/report.html (rank 0), written at the end of every invocation
};

TrainResult train(const config::Config& config, const TrainOptions& options);

// The device for evaluation and inference (`duet eval`, `duet embed`): train.device as training
// resolves it for one process (a CUDA device is cuda:0), except that 'cuda' without a visible
// GPU falls back to the CPU with a warning - a checkpoint trained on a GPU is evaluated where
// there is none.
torch::Device inference_device(config::DeviceChoice device);

// `duet eval`: loads the model weights of a checkpoint directory (to the CPU, then onto the
// inference device) and evaluates as config.eval says. The checkpoint's own resolved config is
// used when `config` is null; with a config, `checkpoint` may also be any source
// export_::load_weights reads (a transformers or OpenCLIP export, a .safetensors file).
eval::EvalResult evaluate_checkpoint(const std::string& checkpoint,
                                     const std::optional<config::Config>& config);

}  // namespace duet::train
