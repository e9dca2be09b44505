#pragma once
// The named scalars one training or evaluation step reports ("loss", "lr", "zero_shot_top1"),
// in the order the trainer adds them, and the clock that stamps them. The metrics writers
// (metrics_jsonl.h, tensorboard_writer.h) and the metrics plot (metrics_plot.h) share these.
#include <chrono>
#include <string>
#include <vector>

namespace duet::train {

struct Scalar {
  std::string name;
  double value = 0.0;  // may be NaN or ±Inf; each writer documents how it records those
};

using Scalars = std::vector<Scalar>;

// The names of the training scalars the reporter writes at each logging step (reporter.h), in its
// order; every other name in metrics.jsonl is an evaluation's.
inline const std::vector<std::string>& training_metric_names() {
  static const std::vector<std::string> names = {
      "loss",         "lr",           "logit_scale",  "grad_norm",    "samples_per_second",
      "epoch",        "data_skipped", "skipped_steps", "step_time_ms", "data_wait_ms",
      "compute_ms",   "logit_bias"};
  return names;
}

// Seconds since the Unix epoch with sub-second resolution: the time stamp of every record.
inline double unix_time_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace duet::train
