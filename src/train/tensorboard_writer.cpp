// TensorBoard event files (see tensorboard_writer.h): the Event fields through the shared
// protobuf wire writer, TFRecord framing here, CRC-32C from Intel's ISA-L (Debian's libisal).
#include "train/tensorboard_writer.h"

#include <isa-l/crc.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <climits>
#include <filesystem>

#include <fmt/format.h>

#include "common/error.h"
#include "common/protobuf_wire.h"

namespace duet::train {
namespace {

using protobuf::write_bytes_field;
using protobuf::write_double_field;
using protobuf::write_float_field;
using protobuf::write_little_endian;
using protobuf::write_varint_field;

// Field numbers of tensorflow.Event, Summary, Summary.Value and SessionLog.
constexpr uint32_t kEventWallTime = 1;
constexpr uint32_t kEventStep = 2;
constexpr uint32_t kEventFileVersion = 3;
constexpr uint32_t kEventSummary = 5;
constexpr uint32_t kEventSessionLog = 7;
constexpr uint32_t kSummaryValue = 1;
constexpr uint32_t kValueTag = 1;
constexpr uint32_t kValueSimpleValue = 2;
constexpr uint32_t kSessionLogStatus = 1;
constexpr int64_t kSessionLogStart = 1;

std::string event_header(double wall_time, int64_t step) {
  std::string event;
  write_double_field(event, kEventWallTime, wall_time);
  write_varint_field(event, kEventStep, static_cast<uint64_t>(step));
  return event;
}

// ---- TFRecord framing ---------------------------------------------------------------------

std::string tfrecord(std::string_view data) {
  std::string length;
  write_little_endian(length, data.size(), 8);
  std::string record = length;
  write_little_endian(record, masked_crc32c(length), 4);
  record.append(data.data(), data.size());
  write_little_endian(record, masked_crc32c(data), 4);
  return record;
}

// The host name as TensorFlow puts it in event file names, with path separators replaced.
std::string host_name() {
  std::array<char, 256> buffer{};
  if (::gethostname(buffer.data(), buffer.size() - 1) != 0 || buffer[0] == '\0') {
    return "localhost";
  }
  std::string name = buffer.data();
  for (char& c : name) {
    if (c == '/' || c == '\\') {
      c = '_';
    }
  }
  return name;
}

// A file name no earlier writer used: a resumed run in the same second gets a ".1" suffix, which
// keeps it after the earlier file in TensorBoard's (lexicographic) reading order.
std::string new_event_file_path(const std::string& dir) {
  const std::string base =
      (std::filesystem::path(dir) /
       fmt::format("events.out.tfevents.{}.{}", static_cast<int64_t>(unix_time_now()), host_name()))
          .string();
  std::string path = base;
  for (int n = 1; std::filesystem::exists(path); ++n) {
    path = fmt::format("{}.{}", base, n);
  }
  return path;
}

}  // namespace

uint32_t crc32c(std::string_view data) {
  // ISA-L's crc32_iscsi is the CRC-32C update without the initial and final inversion, so
  // chunks (its length is an int) chain through it. It only reads the buffer.
  uint32_t crc = 0xFFFFFFFFu;
  while (!data.empty()) {
    const size_t n = std::min<size_t>(data.size(), INT_MAX);
    auto* bytes = reinterpret_cast<unsigned char*>(const_cast<char*>(data.data()));
    crc = crc32_iscsi(bytes, static_cast<int>(n), crc);
    data.remove_prefix(n);
  }
  return ~crc;
}

uint32_t masked_crc32c(std::string_view data) {
  const uint32_t crc = crc32c(data);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

TensorBoardWriter::TensorBoardWriter(const std::string& dir)
    : file_(new_event_file_path(dir), MetricsFile::Mode::kCreateNew) {
  std::string event = event_header(unix_time_now(), 0);
  write_bytes_field(event, kEventFileVersion, "brain.Event:2");
  file_.append(tfrecord(event));
}

void TensorBoardWriter::write(int64_t step, const Scalars& scalars) {
  write(step, unix_time_now(), scalars);
}

void TensorBoardWriter::write(int64_t step, double wall_time, const Scalars& scalars) {
  std::string summary;
  for (const Scalar& s : scalars) {
    std::string value;
    write_bytes_field(value, kValueTag, s.name);
    write_float_field(value, kValueSimpleValue, static_cast<float>(s.value));
    write_bytes_field(summary, kSummaryValue, value);
  }
  std::string event = event_header(wall_time, step);
  write_bytes_field(event, kEventSummary, summary);
  file_.append(tfrecord(event));
}

void TensorBoardWriter::write_resume(int64_t resumed_step) {
  std::string session_log;
  write_varint_field(session_log, kSessionLogStatus, kSessionLogStart);
  std::string event = event_header(unix_time_now(), resumed_step + 1);
  write_bytes_field(event, kEventSessionLog, session_log);
  file_.append(tfrecord(event));
}

}  // namespace duet::train
