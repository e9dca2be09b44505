// The protobuf wire format: the writer against encodings from the protobuf documentation's
// "Encoding" page, the reader on what the writer wrote and on malformed messages.
#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "common/protobuf_wire.h"

namespace duet::protobuf {
namespace {

std::string bytes(std::initializer_list<int> values) {
  std::string out;
  for (int v : values) {
    out += static_cast<char>(v);
  }
  return out;
}

std::vector<Field> fields_of(std::string_view message) {
  std::vector<Field> out;
  read_fields(message, "the test message", [&](const Field& f) { out.push_back(f); });
  return out;
}

TEST_CASE("the writer encodes fields as the protobuf documentation does") {
  std::string out;
  write_varint_field(out, 1, 150);  // the documentation's Test1 { a: 150 }
  CHECK(out == bytes({0x08, 0x96, 0x01}));

  out.clear();
  write_bytes_field(out, 2, "testing");  // Test2 { b: "testing" }
  CHECK(out == bytes({0x12, 0x07}) + "testing");

  out.clear();
  write_varint_field(out, 2, static_cast<uint64_t>(int64_t{-1}));  // int64 -1: ten bytes
  CHECK(out == bytes({0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}));

  out.clear();
  write_double_field(out, 1, 1.0);  // key 0x09, then 1.0's bits little-endian
  CHECK(out == bytes({0x09, 0, 0, 0, 0, 0, 0, 0xF0, 0x3F}));

  out.clear();
  write_float_field(out, 2, -2.0f);  // key 0x15, 0xC0000000 little-endian
  CHECK(out == bytes({0x15, 0, 0, 0, 0xC0}));

  out.clear();
  write_varint_field(out, 35, 1);  // a two-byte key: 35 << 3 = 280
  CHECK(out == bytes({0x98, 0x02, 0x01}));

  out.clear();
  write_little_endian(out, 0x0102030405060708u, 8);
  write_little_endian(out, 0xA1B2C3D4u, 4);
  CHECK(out == bytes({8, 7, 6, 5, 4, 3, 2, 1, 0xD4, 0xC3, 0xB2, 0xA1}));
}

TEST_CASE("the reader gives back what the writer wrote, nested messages included") {
  std::string inner;
  write_bytes_field(inner, 1, "loss");
  write_float_field(inner, 2, 0.25f);
  std::string message;
  write_double_field(message, 1, 1234.5);
  write_varint_field(message, 2, std::numeric_limits<uint64_t>::max());
  write_bytes_field(message, 5, inner);
  write_bytes_field(message, 6, "");

  const std::vector<Field> fields = fields_of(message);
  REQUIRE(fields.size() == 4);
  CHECK(fields[0].number == 1);
  CHECK(fields[0].type == WireType::kFixed64);
  CHECK(fields[0].fixed64_double() == 1234.5);
  CHECK(fields[1].type == WireType::kVarint);
  CHECK(fields[1].varint == std::numeric_limits<uint64_t>::max());
  CHECK(fields[2].number == 5);
  CHECK(fields[2].type == WireType::kLengthDelimited);
  CHECK(fields[3].bytes.empty());

  const std::vector<Field> value = fields_of(fields[2].bytes);
  REQUIRE(value.size() == 2);
  CHECK(value[0].bytes == "loss");
  CHECK(value[1].type == WireType::kFixed32);
  CHECK(value[1].fixed32_float() == 0.25f);
  CHECK(fields_of("").empty());
}

TEST_CASE("malformed messages are errors naming the message and the problem") {
  auto error_of = [](const std::string& message) {
    try {
      fields_of(message);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  using Catch::Contains;
  CHECK_THAT(error_of(bytes({0x08, 0x96})), Contains("the test message") && Contains("varint"));
  CHECK_THAT(error_of(bytes({0x0A, 0xFF})), Contains("varint"));
  CHECK_THAT(error_of(bytes({0x12, 0x07}) + "test"), Contains("announces 7 bytes"));
  CHECK_THAT(error_of(bytes({0x09, 1, 2, 3})), Contains("announces 8 bytes"));
  CHECK_THAT(error_of(bytes({0x0B})), Contains("wire type 3"));  // a group
  CHECK_THAT(
      error_of(bytes({0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01})),
      Contains("longer than 10 bytes"));
}

}  // namespace
}  // namespace duet::protobuf
