#pragma once
// RUN_DIR/metrics.jsonl: one JSON object per logged step, one line each, in the order written:
//   {"step":100,"time":1732348800.25,"loss":1.234,"lr":0.0005,"logit_scale":2.66}
// "step" (integer) and "time" (Unix seconds, fractional) come first, then the scalars in the
// order given. Non-finite values (NaN, ±Inf) are written as JSON null, so every line stays
// valid JSON for any reader; they read back as NaN.
//
// Invariants:
//  - Each line is written with one write(2) and no buffering (metrics_file.h): a killed run
//    keeps every line it logged.
//  - Every line of the file is a complete JSON object. A torn last line (a crash mid-write) is
//    dropped when the file is opened again for writing, and skipped by the reader.
//  - After a resume from the checkpoint of step S, the lines with step > S (logged after that
//    checkpoint by the run that died) are removed before new lines are appended, so steps in
//    the file never repeat and only describe the run that the checkpoints continue.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "train/metrics.h"
#include "train/metrics_file.h"

namespace duet::train {

// One line of a metrics.jsonl file.
struct MetricsRecord {
  int64_t step = 0;
  double time = 0.0;  // Unix seconds; NaN when the line has no "time"
  Scalars scalars;    // every other numeric or null field, in file order (null -> NaN)
};

class MetricsJsonl {
 public:
  // Opens `path` for appending (creating it and its directory when missing). With
  // `resumed_step`, first removes the lines with step > *resumed_step
  // (truncate_metrics_jsonl). Throws a runtime Error naming the path when it cannot.
  explicit MetricsJsonl(std::string path, std::optional<int64_t> resumed_step = std::nullopt);

  // Appends one line for `step` stamped with the current time.
  void write(int64_t step, const Scalars& scalars);
  // Appends one line with an explicit time (Unix seconds).
  void write(int64_t step, double time, const Scalars& scalars);

  const std::string& path() const { return file_.path(); }

 private:
  MetricsFile file_;
};

// The line (without its newline) that MetricsJsonl writes. Scalar names must be unique and
// must not be "step" or "time"; a runtime Error says which one is not.
std::string metrics_json_line(int64_t step, double time, const Scalars& scalars);

// Reads a metrics.jsonl file. A torn last line (no newline, not valid JSON) is skipped; any other
// line that is not a JSON object with an integer "step" is a runtime Error naming path:line.
std::vector<MetricsRecord> read_metrics_jsonl(const std::string& path);

// Removes the lines with step > `last_step` and a torn last line, rewriting the file atomically
// (temporary file + rename) only when something changes. A missing file is left missing.
// Returns the number of lines removed. Must not run while a MetricsJsonl has the file open.
int64_t truncate_metrics_jsonl(const std::string& path, int64_t last_step);

}  // namespace duet::train
