#pragma once
// TensorBoard event files with scalar summaries, written without libprotobuf or Python: the few
// protobuf fields involved go through common/protobuf_wire.h, framed as TFRecords.
//
// File: DIR/events.out.tfevents.<unix seconds>.<hostname>[.<n> when that name is taken], a
// sequence of TFRecords:
//   uint64 length (little-endian) | uint32 masked_crc32c(length bytes) | data |
//   uint32 masked_crc32c(data)
// where data is a serialized tensorflow.Event:
//   Event   { double wall_time = 1; int64 step = 2; string file_version = 3;
//             Summary summary = 5; SessionLog session_log = 7; }
//   Summary { repeated Value value = 1; }   Value { string tag = 1; float simple_value = 2; }
//   SessionLog { enum status = 1 (START = 1); }
// The first record is the file_version event "brain.Event:2"; each write() adds one event
// holding all of its scalars (as float; NaN and ±Inf are kept as such, TensorBoard shows them).
// Every record reaches the kernel in one write(2) (metrics_file.h): a killed run keeps them all.
#include <cstdint>
#include <string>
#include <string_view>

#include "train/metrics.h"
#include "train/metrics_file.h"

namespace duet::train {

class TensorBoardWriter {
 public:
  // Creates `dir` when missing and a new event file in it. Throws a runtime Error naming the
  // path when it cannot.
  explicit TensorBoardWriter(const std::string& dir);

  // Appends one event at `step` with a simple_value per scalar, stamped with the current time.
  void write(int64_t step, const Scalars& scalars);
  // The same with an explicit wall time (Unix seconds).
  void write(int64_t step, double wall_time, const Scalars& scalars);

  // After resuming from the checkpoint of step `resumed_step`: writes a SessionLog START event
  // at resumed_step + 1, which tells TensorBoard to drop what earlier files logged at that
  // step or later (the part of the old run that the checkpoints do not continue).
  void write_resume(int64_t resumed_step);

  // The event file.
  const std::string& path() const { return file_.path(); }

 private:
  MetricsFile file_;
};

// CRC-32C (Castagnoli polynomial 0x1EDC6F41, reflected), as TFRecord uses: crc32c("123456789")
// is 0xE3069283.
uint32_t crc32c(std::string_view data);
// The masked form stored in TFRecords: ((crc >> 15) | (crc << 17)) + 0xa282ead8.
uint32_t masked_crc32c(std::string_view data);

}  // namespace duet::train
