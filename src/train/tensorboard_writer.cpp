// TensorBoard event files (see tensorboard_writer.h): protobuf wire format and TFRecord framing
// by hand, CRC-32C from a 256-entry table.
#include "train/tensorboard_writer.h"

#include <unistd.h>

#include <array>
#include <cmath>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

#include "common/error.h"

namespace duet::train {
namespace {

// ---- CRC-32C ------------------------------------------------------------------------------

constexpr uint32_t kCastagnoliReflected = 0x82F63B78u;  // 0x1EDC6F41 bit-reversed

constexpr std::array<uint32_t, 256> make_crc32c_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t crc = i;
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc & 1u) != 0 ? (crc >> 1) ^ kCastagnoliReflected : crc >> 1;
    }
    table[i] = crc;
  }
  return table;
}

constexpr std::array<uint32_t, 256> kCrc32cTable = make_crc32c_table();

// ---- protobuf wire format -----------------------------------------------------------------

enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

void put_varint(std::string& out, uint64_t value) {
  while (value >= 0x80) {
    out += static_cast<char>((value & 0x7F) | 0x80);
    value >>= 7;
  }
  out += static_cast<char>(value);
}

void put_key(std::string& out, uint32_t field, WireType type) {
  put_varint(out, (static_cast<uint64_t>(field) << 3) | type);
}

// Little-endian, whatever the host's byte order.
void put_le(std::string& out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) {
    out += static_cast<char>((value >> (8 * i)) & 0xFF);
  }
}

void put_double(std::string& out, uint32_t field, double value) {
  uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof bits);
  put_key(out, field, kFixed64);
  put_le(out, bits, 8);
}

void put_float(std::string& out, uint32_t field, float value) {
  uint32_t bits = 0;
  std::memcpy(&bits, &value, sizeof bits);
  put_key(out, field, kFixed32);
  put_le(out, bits, 4);
}

void put_int64(std::string& out, uint32_t field, int64_t value) {
  put_key(out, field, kVarint);
  put_varint(out, static_cast<uint64_t>(value));  // negatives take ten bytes, as in protobuf
}

void put_bytes(std::string& out, uint32_t field, std::string_view bytes) {
  put_key(out, field, kLengthDelimited);
  put_varint(out, bytes.size());
  out.append(bytes.data(), bytes.size());
}

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
  put_double(event, kEventWallTime, wall_time);
  put_int64(event, kEventStep, step);
  return event;
}

// ---- TFRecord framing ---------------------------------------------------------------------

std::string tfrecord(std::string_view data) {
  std::string length;
  put_le(length, data.size(), 8);
  std::string record = length;
  put_le(record, masked_crc32c(length), 4);
  record.append(data.data(), data.size());
  put_le(record, masked_crc32c(data), 4);
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
  uint32_t crc = 0xFFFFFFFFu;
  for (const char c : data) {
    crc = kCrc32cTable[(crc ^ static_cast<uint8_t>(c)) & 0xFF] ^ (crc >> 8);
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
  put_bytes(event, kEventFileVersion, "brain.Event:2");
  file_.append(tfrecord(event));
}

void TensorBoardWriter::write(int64_t step, const Scalars& scalars) {
  write(step, unix_time_now(), scalars);
}

void TensorBoardWriter::write(int64_t step, double wall_time, const Scalars& scalars) {
  std::string summary;
  for (const Scalar& s : scalars) {
    std::string value;
    put_bytes(value, kValueTag, s.name);
    put_float(value, kValueSimpleValue, static_cast<float>(s.value));
    put_bytes(summary, kSummaryValue, value);
  }
  std::string event = event_header(wall_time, step);
  put_bytes(event, kEventSummary, summary);
  file_.append(tfrecord(event));
}

void TensorBoardWriter::write_resume(int64_t resumed_step) {
  std::string session_log;
  put_key(session_log, kSessionLogStatus, kVarint);
  put_varint(session_log, kSessionLogStart);
  std::string event = event_header(unix_time_now(), resumed_step + 1);
  put_bytes(event, kEventSessionLog, session_log);
  file_.append(tfrecord(event));
}

}  // namespace duet::train
