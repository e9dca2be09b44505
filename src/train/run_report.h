#pragma once
// The run report: RUN_DIR/report.html, one self-contained page a person reads after a run (no
// network, no external file: charts are inline SVG, thumbnails inline data: URIs, one small
// inline script). Sections, each present when the run has its data:
//   - the run's config (config.yaml);
//   - training: loss, learning rate, temperature (logit_scale, the inverse temperature t) and
//     the SigLIP bias against steps; throughput (samples/s) and step time split into data wait
//     and compute (step_time_ms, data_wait_ms, compute_ms);
//   - evaluation: every evaluation metric against steps, and the last evaluation's values;
//   - per evaluated set (from the newest RUN_DIR/eval/step-*.json, eval_details.h): for
//     classification a confusion matrix (up to 100 classes), per-class accuracy and the most
//     confused pairs with thumbnails; for retrieval the median ranks and a few text queries
//     with their top-5 images, correct ones marked;
//   - seen versus unseen: benchmark splits of one dataset named test and heldout side by side,
//     with the share of samples mistaken for their mirrored class when class names read
//     "A to the left of B" (the compositional run, configs/fashion-mnist-pairs.yaml).
// Every metric value shown carries data-metric / data-value attributes with the exact number,
// so tests compare the page with metrics.jsonl. The page stays within a few MB whatever the
// run's size: curves come from metrics.jsonl (one point per logged step) and thumbnails are
// the few the details file samples.
// The report lives in src/train beside metrics_plot and svg_plot, whose charts it reuses and
// whose metrics.jsonl it reads; src/eval sits below train in the link order.
#include <string>

namespace duet::train {

// Writes RUN_DIR/report.html (atomically) and returns its path. Reads RUN_DIR/config.yaml,
// RUN_DIR/metrics.jsonl and RUN_DIR/eval/ when present; a directory without any of them is a
// runtime Error naming it. Call on rank 0 at the end of training; `duet report RUN_DIR` calls it
// too.
std::string write_run_report(const std::string& run_dir);

// The page itself (what write_run_report writes).
std::string render_run_report(const std::string& run_dir);

}  // namespace duet::train
