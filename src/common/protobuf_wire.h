#pragma once
// The protobuf wire format, for the few fields duet writes and reads itself: TensorBoard's
// Event and Summary messages (train/tensorboard_writer.cpp) and the spec fields of a
// SentencePiece ModelProto that libsentencepiece's API does not expose
// (export/sentencepiece_json.cpp).
//
// Why not libprotobuf: Debian ships neither generated headers for these messages nor their
// .proto files, and libsentencepiece.so exports a bundled protobuf-lite runtime under the same
// symbol names as Debian's libprotobuf, so linking both into one process mixes two protobuf
// versions.
//
// A message is a sequence of fields, each a key varint (field number << 3 | wire type) and a
// value: a varint, 8 or 4 little-endian bytes, or a varint length and that many bytes (strings,
// bytes and embedded messages). Torch-free.
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace duet::protobuf {

enum class WireType : uint8_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

// ---- writing: each appends one field to `out` ----------------------------------------------

// int32, int64, uint32, uint64, bool and enum fields; a negative int64 takes ten bytes.
void write_varint_field(std::string& out, uint32_t field, uint64_t value);
void write_double_field(std::string& out, uint32_t field, double value);
void write_float_field(std::string& out, uint32_t field, float value);
// string, bytes and embedded-message fields.
void write_bytes_field(std::string& out, uint32_t field, std::string_view bytes);

// The low `bytes` bytes of `value`, little-endian whatever the host's byte order (the fixed
// fields above, and framings such as TFRecord's).
void write_little_endian(std::string& out, uint64_t value, int bytes);

// ---- reading ---------------------------------------------------------------------------------

// One field as the wire gives it; what it means is up to the caller, who knows the schema.
struct Field {
  uint32_t number = 0;
  WireType type = WireType::kVarint;
  uint64_t varint = 0;     // kVarint: the value
  std::string_view bytes;  // kLengthDelimited: the payload; kFixed32 / kFixed64: the 4 / 8 bytes

  float fixed32_float() const;    // kFixed32 read as a float
  double fixed64_double() const;  // kFixed64 read as a double
};

// Calls visit(field) for each field of `message`, in order. Malformed input (a truncated or
// over-long varint, a length past the end, a group or an unknown wire type) throws a runtime
// Error that names the message as `what`, e.g. "the SentencePiece model".
void read_fields(std::string_view message, std::string_view what,
                 const std::function<void(const Field&)>& visit);

}  // namespace duet::protobuf
