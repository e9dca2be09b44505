// TensorBoard event files: CRC-32C against published vectors, and the files decoded by a reader
// written here from the format description (TFRecord framing with both CRCs checked by a
// bit-at-a-time CRC, protobuf wire format), independent of the writer's encoder and table.
// A last case hands the files to TensorBoard's own EventAccumulator (read_tensorboard.py).
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/test_util.h"
#include "train/svg_plot.h"
#include "train/tensorboard_writer.h"

namespace {

using duet::test::read_file;
using duet::test::shell_quote;
using duet::test::TempDir;
using duet::test::write_file;
using duet::train::TensorBoardWriter;

// CRC-32C one bit at a time, straight from the definition (reflected polynomial 0x82F63B78).
uint32_t reference_crc32c(const std::string& data) {
  uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char byte : data) {
    crc ^= byte;
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
    }
  }
  return ~crc;
}

uint32_t reference_masked(const std::string& data) {
  const uint32_t crc = reference_crc32c(data);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

uint64_t read_le(const std::string& bytes, size_t pos, int n) {
  REQUIRE(pos + n <= bytes.size());
  uint64_t value = 0;
  for (int i = 0; i < n; ++i) {
    value |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[pos + i])) << (8 * i);
  }
  return value;
}

// TFRecord framing: the payloads, with both CRCs of every record verified.
std::vector<std::string> read_tfrecords(const std::string& file) {
  std::vector<std::string> records;
  size_t pos = 0;
  while (pos < file.size()) {
    REQUIRE(pos + 12 <= file.size());
    const std::string length_bytes = file.substr(pos, 8);
    const uint64_t length = read_le(file, pos, 8);
    CHECK(read_le(file, pos + 8, 4) == reference_masked(length_bytes));
    REQUIRE(pos + 12 + length + 4 <= file.size());
    const std::string data = file.substr(pos + 12, length);
    CHECK(read_le(file, pos + 12 + length, 4) == reference_masked(data));
    records.push_back(data);
    pos += 12 + length + 4;
  }
  return records;
}

// A minimal protobuf reader: (field number, wire type, value) triples.
struct Field {
  uint32_t number = 0;
  uint32_t wire_type = 0;
  uint64_t integer = 0;  // varint, fixed64 and fixed32 payloads
  std::string bytes;     // length-delimited payloads
};

uint64_t read_varint(const std::string& bytes, size_t& pos) {
  uint64_t value = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    REQUIRE(pos < bytes.size());
    const auto byte = static_cast<unsigned char>(bytes[pos++]);
    value |= static_cast<uint64_t>(byte & 0x7F) << shift;
    if ((byte & 0x80) == 0) {
      return value;
    }
  }
  FAIL("varint longer than ten bytes");
  return 0;
}

std::vector<Field> read_fields(const std::string& message) {
  std::vector<Field> fields;
  size_t pos = 0;
  while (pos < message.size()) {
    const uint64_t key = read_varint(message, pos);
    Field f;
    f.number = static_cast<uint32_t>(key >> 3);
    f.wire_type = static_cast<uint32_t>(key & 7);
    switch (f.wire_type) {
      case 0:
        f.integer = read_varint(message, pos);
        break;
      case 1:
        f.integer = read_le(message, pos, 8);
        pos += 8;
        break;
      case 5:
        f.integer = read_le(message, pos, 4);
        pos += 4;
        break;
      case 2: {
        const uint64_t n = read_varint(message, pos);
        REQUIRE(pos + n <= message.size());
        f.bytes = message.substr(pos, n);
        pos += n;
        break;
      }
      default:
        FAIL("unexpected wire type " << f.wire_type);
    }
    fields.push_back(f);
  }
  return fields;
}

struct DecodedValue {
  std::string tag;
  float value = 0.0f;
};

struct DecodedEvent {
  double wall_time = 0.0;
  int64_t step = 0;
  std::string file_version;
  std::vector<DecodedValue> values;
  int64_t session_status = -1;  // -1: no session_log
};

DecodedEvent decode_event(const std::string& data) {
  DecodedEvent event;
  for (const Field& f : read_fields(data)) {
    if (f.number == 1) {
      REQUIRE(f.wire_type == 1);
      std::memcpy(&event.wall_time, &f.integer, 8);
    } else if (f.number == 2) {
      REQUIRE(f.wire_type == 0);
      event.step = static_cast<int64_t>(f.integer);
    } else if (f.number == 3) {
      REQUIRE(f.wire_type == 2);
      event.file_version = f.bytes;
    } else if (f.number == 5) {
      REQUIRE(f.wire_type == 2);
      for (const Field& v : read_fields(f.bytes)) {
        REQUIRE(v.number == 1);
        REQUIRE(v.wire_type == 2);
        DecodedValue value;
        for (const Field& part : read_fields(v.bytes)) {
          if (part.number == 1) {
            REQUIRE(part.wire_type == 2);
            value.tag = part.bytes;
          } else {
            REQUIRE(part.number == 2);
            REQUIRE(part.wire_type == 5);
            const auto bits = static_cast<uint32_t>(part.integer);
            std::memcpy(&value.value, &bits, 4);
          }
        }
        event.values.push_back(value);
      }
    } else if (f.number == 7) {
      REQUIRE(f.wire_type == 2);
      const auto status = read_fields(f.bytes);
      REQUIRE(status.size() == 1);
      REQUIRE(status[0].number == 1);
      event.session_status = static_cast<int64_t>(status[0].integer);
    } else {
      FAIL("unexpected Event field " << f.number);
    }
  }
  return event;
}

std::vector<DecodedEvent> read_events(const std::string& path) {
  std::vector<DecodedEvent> events;
  for (const std::string& record : read_tfrecords(read_file(path))) {
    events.push_back(decode_event(record));
  }
  return events;
}

std::string host_name() {
  char buffer[256] = {};
  REQUIRE(gethostname(buffer, sizeof buffer - 1) == 0);
  return buffer;
}

}  // namespace

TEST_CASE("crc32c matches published CRC-32C vectors") {
  using duet::train::crc32c;
  CHECK(crc32c("123456789") == 0xE3069283u);
  CHECK(crc32c("") == 0x00000000u);
  // RFC 3720 (iSCSI), appendix B.4.
  CHECK(crc32c(std::string(32, '\0')) == 0x8A9136AAu);
  CHECK(crc32c(std::string(32, '\xFF')) == 0x62A8AB43u);
  std::string ascending;
  std::string descending;
  for (int i = 0; i < 32; ++i) {
    ascending += static_cast<char>(i);
    descending += static_cast<char>(31 - i);
  }
  CHECK(crc32c(ascending) == 0x46DD794Eu);
  CHECK(crc32c(descending) == 0x113FDB5Cu);
  // The table agrees with the bitwise definition on every byte value and a longer text.
  for (int b = 0; b < 256; ++b) {
    const std::string one(1, static_cast<char>(b));
    REQUIRE(crc32c(one) == reference_crc32c(one));
  }
  const std::string text = "The quick brown fox jumps over the lazy dog, 0123456789 times.";
  CHECK(crc32c(text) == reference_crc32c(text));
  CHECK(duet::train::masked_crc32c(text) == reference_masked(text));
  // masked = the CRC rotated right by 15 bits, plus 0xa282ead8 (mod 2^32).
  CHECK(duet::train::masked_crc32c("123456789") ==
        static_cast<uint32_t>(((0xE3069283u >> 15) | (0xE3069283u << 17)) + 0xa282ead8u));
}

TEST_CASE("event files decode to the scalars written") {
  TempDir dir;
  const std::string tb_dir = dir / "run/tensorboard";
  std::string path;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  {
    TensorBoardWriter writer(tb_dir);
    path = writer.path();
    writer.write(100, 1732348800.5, {{"loss", 1.25}, {"lr", 5e-4}, {"logit_scale", 14.2857}});
    writer.write(200, 1732348900.25, {{"loss", nan}, {"train/zero_shot_top1", 0.8125}});
    writer.write(1LL << 40, 1732349000.0, {{"loss", -3.0e38}});
    writer.write(-1, 1.0, {});  // steps are int64; an event may hold no values
  }
  const std::string name = std::filesystem::path(path).filename().string();
  CHECK(std::filesystem::path(path).parent_path() == std::filesystem::path(tb_dir));
  CHECK_THAT(name, Catch::StartsWith("events.out.tfevents.") && Catch::EndsWith("." + host_name()));
  const std::string stamp =
      name.substr(std::strlen("events.out.tfevents."),
                  name.size() - std::strlen("events.out.tfevents.") - host_name().size() - 1);
  CHECK(std::abs(std::stod(stamp) - duet::train::unix_time_now()) < 600);

  const auto events = read_events(path);
  REQUIRE(events.size() == 5);
  CHECK(events[0].file_version == "brain.Event:2");
  CHECK(events[0].values.empty());
  CHECK(std::abs(events[0].wall_time - duet::train::unix_time_now()) < 600);

  CHECK(events[1].step == 100);
  CHECK(events[1].wall_time == 1732348800.5);
  CHECK(events[1].file_version.empty());
  REQUIRE(events[1].values.size() == 3);
  CHECK(events[1].values[0].tag == "loss");
  CHECK(events[1].values[0].value == 1.25f);
  CHECK(events[1].values[1].tag == "lr");
  CHECK(events[1].values[1].value == static_cast<float>(5e-4));
  CHECK(events[1].values[2].tag == "logit_scale");
  CHECK(events[1].values[2].value == static_cast<float>(14.2857));

  CHECK(events[2].step == 200);
  REQUIRE(events[2].values.size() == 2);
  CHECK(std::isnan(events[2].values[0].value));
  CHECK(events[2].values[1].tag == "train/zero_shot_top1");
  CHECK(events[2].values[1].value == 0.8125f);

  CHECK(events[3].step == (1LL << 40));
  CHECK(events[3].values.at(0).value == -3.0e38f);
  CHECK(events[4].step == -1);
  CHECK(events[4].values.empty());
}

TEST_CASE("event files: a resumed run gets a new file that starts with a SessionLog START") {
  TempDir dir;
  TensorBoardWriter first(dir.path().string());
  TensorBoardWriter second(dir.path().string());  // same second, same host
  CHECK(first.path() != second.path());
  CHECK(second.path() > first.path());  // TensorBoard reads files in name order
  second.write_resume(3);
  const auto events = read_events(second.path());
  REQUIRE(events.size() == 2);
  CHECK(events[1].step == 4);
  CHECK(events[1].session_status == 1);  // SessionLog.START
}

TEST_CASE("event files: an unwritable directory is an error naming it") {
  TempDir dir;
  write_file(dir / "file", "x");
  CHECK_THROWS_AS(TensorBoardWriter(dir / "file/tensorboard"), duet::Error);
  CHECK_THROWS_WITH(TensorBoardWriter(dir / "file/tensorboard"),
                    Catch::Contains(dir / "file/tensorboard"));
}

// The oracle: TensorBoard's EventAccumulator reads what we wrote (including the purge of the
// steps a resumed run redoes), and Python's XML parser accepts the plots.
TEST_CASE("TensorBoard's own reader loads the event files and Python's XML parser the plots") {
  TempDir dir;
  const std::string tb_dir = dir / "tensorboard";
  nlohmann::json expected = {{"scalars", nlohmann::json::object()}};
  {
    TensorBoardWriter writer(tb_dir);
    for (int64_t step = 1; step <= 6; ++step) {
      const double loss = 2.0 / static_cast<double>(step);
      writer.write(step, 1000.0 + step, {{"loss", loss}, {"lr", 1e-3 * step}});
      if (step <= 3) {
        expected["scalars"]["loss"].push_back({step, static_cast<float>(loss), 1000.0 + step});
        expected["scalars"]["lr"].push_back({step, static_cast<float>(1e-3 * step), 1000.0 + step});
      }
    }
  }
  {
    // The run died after step 6; it resumes from the checkpoint of step 3 and redoes 4..6.
    TensorBoardWriter writer(tb_dir);
    writer.write_resume(3);
    for (int64_t step = 4; step <= 6; ++step) {
      const double loss = 1.0 / static_cast<double>(step);
      writer.write(step, 2000.0 + step, {{"loss", loss}, {"lr", 1e-3 * step}});
      expected["scalars"]["loss"].push_back({step, static_cast<float>(loss), 2000.0 + step});
      expected["scalars"]["lr"].push_back({step, static_cast<float>(1e-3 * step), 2000.0 + step});
    }
    writer.write(6, 2010.0, {{"zero_shot_top1", 0.75}});
    expected["scalars"]["zero_shot_top1"].push_back({6, 0.75, 2010.0});
  }
  write_file(dir / "expected.json", expected.dump());

  // Plots, edge cases included, for the XML parser.
  using duet::train::LinePlot;
  using duet::train::PlotSeries;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<LinePlot> plots(4);
  plots[0].title = "loss & <accuracy>";
  plots[0].x_label = "step";
  plots[0].panels = {
      {"Training loss", "loss", {PlotSeries("loss", {1, 2, 3, 4}, {3, nan, 1, 0.5})}},
      {"Zero-shot", "top-1", {PlotSeries("zero_shot_top1", {4}, {0.5})}}};
  plots[1].panels = {{"", "", {PlotSeries("empty", {}, {})}}};
  plots[2].panels = {{"constant", "", {PlotSeries("c", {0, 1}, {7, 7})}}};
  std::vector<std::string> svg_args;
  for (size_t i = 0; i < plots.size(); ++i) {
    const std::string svg = dir / ("plot" + std::to_string(i) + ".svg");
    duet::train::write_svg_line_plot(svg, plots[i]);
    svg_args.push_back(shell_quote(svg));
  }

  std::string command =
      shell_quote(DUET_TEST_PYTHON) + " " +
      shell_quote(std::string(DUET_TEST_SOURCE_DIR) + "/tests/train/read_tensorboard.py") + " " +
      shell_quote(tb_dir) + " " + shell_quote(dir / "expected.json");
  for (const auto& arg : svg_args) {
    command += " " + arg;
  }
  command += " >" + shell_quote(dir / "oracle.log") + " 2>&1";
  const int status = std::system(command.c_str());
  INFO("command: " << command);
  INFO("output:\n" << read_file(dir / "oracle.log"));
  CHECK(status == 0);
  CHECK_THAT(read_file(dir / "oracle.log"), Catch::Contains("ok: 3 tags"));
}
