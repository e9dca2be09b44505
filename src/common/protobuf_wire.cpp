// The protobuf wire format (see protobuf_wire.h).
#include "common/protobuf_wire.h"

#include <cstring>

#include "common/error.h"

namespace duet::protobuf {
namespace {

void write_varint(std::string& out, uint64_t value) {
  while (value >= 0x80) {
    out += static_cast<char>((value & 0x7F) | 0x80);
    value >>= 7;
  }
  out += static_cast<char>(value);
}

void write_key(std::string& out, uint32_t field, WireType type) {
  write_varint(out, (static_cast<uint64_t>(field) << 3) | static_cast<uint64_t>(type));
}

uint64_t read_little_endian(std::string_view bytes) {
  uint64_t value = 0;
  for (size_t i = bytes.size(); i-- > 0;) {
    value = (value << 8) | static_cast<unsigned char>(bytes[i]);
  }
  return value;
}

// Reads the fields of one message; every read is bounds-checked against the message.
class Reader {
 public:
  Reader(std::string_view message, std::string_view what) : message_(message), what_(what) {}

  bool done() const { return pos_ >= message_.size(); }

  Field next() {
    const uint64_t key = varint();
    Field field;
    field.number = static_cast<uint32_t>(key >> 3);
    switch (key & 7) {
      case 0:
        field.type = WireType::kVarint;
        field.varint = varint();
        break;
      case 1:
        field.type = WireType::kFixed64;
        field.bytes = take(8);
        break;
      case 2:
        field.type = WireType::kLengthDelimited;
        field.bytes = take(varint());
        break;
      case 5:
        field.type = WireType::kFixed32;
        field.bytes = take(4);
        break;
      default:
        fail(
            "{} is not a valid protobuf message: field {} has wire type {} (groups and unknown "
            "types are not supported)",
            what_, field.number, key & 7);
    }
    return field;
  }

 private:
  uint64_t varint() {
    uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (done()) {
        fail("{} is not a valid protobuf message: it ends inside a varint (byte {})", what_, pos_);
      }
      const auto byte = static_cast<unsigned char>(message_[pos_++]);
      value |= static_cast<uint64_t>(byte & 0x7F) << shift;
      if ((byte & 0x80) == 0) {
        return value;
      }
    }
    fail("{} is not a valid protobuf message: a varint longer than 10 bytes ends at byte {}", what_,
         pos_);
  }

  std::string_view take(uint64_t n) {
    if (n > message_.size() - pos_) {
      fail("{} is not a valid protobuf message: a field announces {} bytes at byte {}, {} are left",
           what_, n, pos_, message_.size() - pos_);
    }
    const std::string_view out = message_.substr(pos_, n);
    pos_ += n;
    return out;
  }

  std::string_view message_;
  std::string_view what_;
  size_t pos_ = 0;
};

}  // namespace

void write_varint_field(std::string& out, uint32_t field, uint64_t value) {
  write_key(out, field, WireType::kVarint);
  write_varint(out, value);
}

void write_double_field(std::string& out, uint32_t field, double value) {
  uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof bits);
  write_key(out, field, WireType::kFixed64);
  write_little_endian(out, bits, 8);
}

void write_float_field(std::string& out, uint32_t field, float value) {
  uint32_t bits = 0;
  std::memcpy(&bits, &value, sizeof bits);
  write_key(out, field, WireType::kFixed32);
  write_little_endian(out, bits, 4);
}

void write_bytes_field(std::string& out, uint32_t field, std::string_view bytes) {
  write_key(out, field, WireType::kLengthDelimited);
  write_varint(out, bytes.size());
  out.append(bytes.data(), bytes.size());
}

void write_little_endian(std::string& out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) {
    out += static_cast<char>((value >> (8 * i)) & 0xFF);
  }
}

float Field::fixed32_float() const {
  const auto bits = static_cast<uint32_t>(read_little_endian(bytes));
  float value = 0.0f;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

double Field::fixed64_double() const {
  const uint64_t bits = read_little_endian(bytes);
  double value = 0.0;
  std::memcpy(&value, &bits, sizeof value);
  return value;
}

void read_fields(std::string_view message, std::string_view what,
                 const std::function<void(const Field&)>& visit) {
  Reader reader(message, what);
  while (!reader.done()) {
    visit(reader.next());
  }
}

}  // namespace duet::protobuf
