#pragma once
// What a run tells its user: the progress line, metrics (metrics.jsonl, TensorBoard), ETA, and
// where step time goes. Each step adds its loss, gradient check and timings; the reporter keeps
// them on the device until a logging step, where it reads them all in one host read
// (host_reads.h), so the steps in between never wait for the GPU.
//
// Per logging window (logging.every_steps steps) it writes: loss (mean over applied steps), lr,
// logit_scale (the temperature t = exp of the learnable log scale), logit_bias (SigLIP),
// grad_norm (of the window's last step), samples_per_second, epoch, data_skipped,
// skipped_steps, and the split of the step time: step_time_ms (mean wall time per optimiser
// step), data_wait_ms (of which blocked on the data loader), compute_ms (the rest). A GPU that
// waits for data shows as data_wait_ms close to step_time_ms; the line then says so.
//
// Invariant: a non-finite step (loss or gradient norm) is counted on the device; at each sync
// point (logging, evaluation, checkpoint, the end) the reporter reads the count and throws when
// train.nan_patience steps in a row were non-finite, before anything is saved.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <torch/types.h>

#include "config/config.h"
#include "eval/evaluate.h"
#include "train/metrics.h"
#include "train/train_step.h"

namespace duet::train {

class MetricsJsonl;
class TensorBoardWriter;

// What the reporter needs to know about the run.
struct ReportSetup {
  std::string run_dir;
  bool writer = true;            // rank 0: writes metrics and prints progress at info
  int64_t total_steps = 0;       // train.steps or epochs' worth
  int64_t first_step = 0;        // the step this invocation starts at (resumed runs)
  int64_t samples_per_step = 0;  // train.batch_size
  bool resumed = false;
};

class Reporter {
 public:
  Reporter(const config::Config& config, const ReportSetup& setup);
  ~Reporter();
  Reporter(const Reporter&) = delete;
  Reporter& operator=(const Reporter&) = delete;

  // After a step: its loss and gradient check (device tensors, kept there) and how long it was
  // blocked on the data loader.
  void add_step(const torch::Tensor& loss, const GradientCheck& check, double data_wait_seconds);

  // Leaves `seconds` (an evaluation, a checkpoint) out of the window's step time.
  void exclude(double seconds);

  // True when `step` ends a logging window.
  bool is_logging_step(int64_t step, int64_t stop_at) const;

  // At a logging step: reads the window's values (one host read), checks for divergence, prints
  // the progress line and writes the metrics. `logit_scale` / `logit_bias` are the model's
  // parameters (the bias undefined without one), `epoch` and `data_skipped` the loader's.
  void log_window(int64_t step, double lr, const torch::Tensor& logit_scale,
                  const torch::Tensor& logit_bias, int64_t epoch, int64_t data_skipped);

  // At any other sync point (evaluation, checkpoint, the end): reads only the non-finite count
  // and throws when the run diverged.
  void check_divergence(int64_t step);

  // Writes evaluation results (numbers only) for `step`; `label` prefixes the log line.
  void write_eval(int64_t step, const eval::EvalResult& result, const std::string& label);

  // Non-finite steps skipped by this invocation (as of the last sync point).
  int64_t skipped_steps() const { return skipped_total_; }
  // Mean loss of the last logging window (NaN before the first).
  double last_loss() const { return last_loss_; }

 private:
  void fail_if_diverged(double worst_run, int64_t step) const;
  void write(int64_t step, const Scalars& scalars);

  const config::Config& config_;
  ReportSetup setup_;
  std::unique_ptr<MetricsJsonl> jsonl_;
  std::unique_ptr<TensorBoardWriter> tensorboard_;

  // Device-side accumulators (defined from the first step on).
  torch::Tensor window_loss_;     // sum of the applied steps' losses
  torch::Tensor window_applied_;  // applied steps
  torch::Tensor bad_run_;         // current run of consecutive non-finite steps
  torch::Tensor worst_run_;       // longest run since the last sync point
  torch::Tensor last_grad_norm_;
  // Host-side timings of the window: wall time from its start (less exclude()d pauses) to the
  // logging read, which is where a GPU's compute time shows on the host.
  int64_t window_steps_ = 0;
  double window_wait_seconds_ = 0.0;
  std::chrono::steady_clock::time_point run_start_;
  std::chrono::steady_clock::time_point window_start_;
  int64_t skipped_total_ = 0;
  double last_loss_;
};

}  // namespace duet::train
