#pragma once
// safetensors files (https://github.com/huggingface/safetensors): an 8-byte little-endian header
// length N, N bytes of JSON, then the raw tensor data. The JSON maps each tensor name to
// {"dtype", "shape", "data_offsets": [begin, end]} (offsets into the data section) and may hold
// "__metadata__", a string-to-string map.
//
// Files are untrusted. Reading checks everything before any data is touched and throws a
// runtime Error naming the file and the problem: the header length against the file size and a
// 100 MB cap, the JSON (an object, no duplicate names, no unknown fields, string metadata),
// known dtypes, non-negative shapes whose byte size (without overflow) equals end - begin, and
// offsets that tile the data section exactly (each tensor within it, no overlaps, no gaps, no
// trailing bytes). Torch-free: tensors are bytes plus dtype and shape (tensor_io.h converts).
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace duet::export_ {

// The dtypes of the safetensors format, by their names in the header.
enum class Dtype {
  kBool,
  kU8,
  kI8,
  kI16,
  kU16,
  kF16,
  kBF16,
  kI32,
  kU32,
  kF32,
  kF64,
  kI64,
  kU64,
  kF8E4M3,
  kF8E5M2
};

const char* dtype_name(Dtype dtype);
int64_t dtype_size(Dtype dtype);  // bytes per element
// The dtype named `name` ("F32", ...), or nullopt.
std::optional<Dtype> parse_dtype(std::string_view name);

struct TensorEntry {
  std::string name;
  Dtype dtype = Dtype::kF32;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // byte offsets into the data section, [begin, end)
  uint64_t end = 0;
};

// Limits on what a reader accepts.
inline constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // as the reference implementation

// A safetensors file read and validated in full (header and data) at construction.
class SafetensorsFile {
 public:
  // Throws a runtime Error naming `path` when the file is missing, unreadable or malformed.
  explicit SafetensorsFile(const std::string& path);

  // The same for bytes in memory; `origin` names them in messages.
  static SafetensorsFile from_bytes(std::string bytes, const std::string& origin);

  const std::string& path() const { return path_; }
  // Entries in data order.
  const std::vector<TensorEntry>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // The entry named `name`, or nullptr.
  const TensorEntry* find(const std::string& name) const;
  // The raw (little-endian) bytes of `entry`.
  std::string_view data(const TensorEntry& entry) const;

 private:
  SafetensorsFile() = default;
  void parse();

  std::string path_;
  std::string bytes_;        // the whole file
  uint64_t data_start_ = 0;  // 8 + header length
  std::vector<TensorEntry> tensors_;
  std::map<std::string, size_t> index_;  // name -> position in tensors_
  std::map<std::string, std::string> metadata_;
};

// One tensor to write: `data` points at the product of `shape` elements of `dtype`,
// little-endian, contiguous.
struct TensorView {
  std::string name;
  Dtype dtype = Dtype::kF32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
};

// Writes the tensors in the given order (data packed back to back, the header padded with
// spaces to a multiple of 8 bytes) atomically: to a temporary sibling, then renamed. Throws a
// runtime Error on duplicate or empty names or when the file cannot be written.
void write_safetensors(const std::string& path, const std::vector<TensorView>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// The bytes write_safetensors would write (for tests and in-memory use).
std::string serialize_safetensors(const std::vector<TensorView>& tensors,
                                  const std::map<std::string, std::string>& metadata = {});

}  // namespace duet::export_
