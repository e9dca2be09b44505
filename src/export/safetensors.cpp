// safetensors reading and writing (see safetensors.h for the format and the checks). The data
// section is kept as read; nothing is interpreted until every entry has been validated.
#include "export/safetensors.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "common/error.h"
#include "common/tensor_text.h"

namespace fs = std::filesystem;

namespace duet::export_ {
namespace {

struct DtypeInfo {
  Dtype dtype;
  const char* name;
  int64_t size;
};

constexpr std::array<DtypeInfo, 15> kDtypes = {{
    {Dtype::kBool, "BOOL", 1},
    {Dtype::kU8, "U8", 1},
    {Dtype::kI8, "I8", 1},
    {Dtype::kI16, "I16", 2},
    {Dtype::kU16, "U16", 2},
    {Dtype::kF16, "F16", 2},
    {Dtype::kBF16, "BF16", 2},
    {Dtype::kI32, "I32", 4},
    {Dtype::kU32, "U32", 4},
    {Dtype::kF32, "F32", 4},
    {Dtype::kF64, "F64", 8},
    {Dtype::kI64, "I64", 8},
    {Dtype::kU64, "U64", 8},
    {Dtype::kF8E4M3, "F8_E4M3", 1},
    {Dtype::kF8E5M2, "F8_E5M2", 1},
}};

const DtypeInfo& info(Dtype dtype) {
  for (const auto& d : kDtypes) {
    if (d.dtype == dtype) {
      return d;
    }
  }
  fail("unknown safetensors dtype {}", static_cast<int>(dtype));
}

uint64_t read_u64_le(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) {
    v = (v << 8) | static_cast<unsigned char>(p[i]);
  }
  return v;
}

void append_u64_le(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) {
    out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
  }
}

// Elements in `shape` times `size` bytes, or nullopt on overflow past 2^63.
std::optional<uint64_t> byte_size(const std::vector<int64_t>& shape, int64_t size) {
  constexpr uint64_t kLimit = uint64_t{1} << 63;
  uint64_t bytes = static_cast<uint64_t>(size);
  for (int64_t d : shape) {
    const auto dim = static_cast<uint64_t>(d);
    if (dim != 0 && bytes > kLimit / dim) {
      return std::nullopt;
    }
    bytes *= dim;
  }
  return bytes;
}

// The header length N from the first 8 bytes of a `size`-byte file, checked against the file
// and the cap.
uint64_t header_length(std::string_view file, uint64_t size, const std::string& where) {
  if (size < 8 || file.size() < 8) {
    fail("'{}' is not a safetensors file: {} bytes, fewer than the 8-byte header length", where,
         size);
  }
  const uint64_t header = read_u64_le(file.data());
  if (header > kMaxHeaderBytes || header > size - 8) {
    fail(
        "'{}' is not a valid safetensors file: header length {} exceeds the file ({} bytes) or "
        "the {}-byte limit",
        where, header, size, kMaxHeaderBytes);
  }
  return header;
}

// The JSON header: an object, with no name twice in any object.
nlohmann::json parse_header(std::string_view text, const std::string& where) {
  if (text.empty() || text.front() != '{') {
    fail("'{}': safetensors header must be a JSON object starting with '{{'", where);
  }
  // Duplicate names are invisible after parsing (the last one wins), so catch them while
  // parsing: one set of keys per open object.
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  auto callback = [&](int /*depth*/, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using Event = nlohmann::json::parse_event_t;
    if (event == Event::object_start) {
      open_objects.emplace_back();
    } else if (event == Event::object_end && !open_objects.empty()) {
      open_objects.pop_back();
    } else if (event == Event::key && !open_objects.empty()) {
      const std::string key = parsed.get<std::string>();
      if (!open_objects.back().insert(key).second && duplicate.empty()) {
        duplicate = key;
      }
    }
    return true;
  };
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(text.begin(), text.end(), callback);
  } catch (const nlohmann::json::exception& e) {
    fail("'{}': safetensors header is not valid JSON: {}", where, e.what());
  }
  if (!duplicate.empty()) {
    fail("'{}': safetensors header has the key '{}' twice", where, duplicate);
  }
  if (!json.is_object()) {
    fail("'{}': safetensors header must be a JSON object", where);
  }
  return json;
}

// "__metadata__": an object of strings.
std::map<std::string, std::string> read_metadata(const nlohmann::json& value,
                                                 const std::string& where) {
  if (!value.is_object()) {
    fail("'{}': __metadata__ must be an object of strings", where);
  }
  std::map<std::string, std::string> metadata;
  for (const auto& [key, text_value] : value.items()) {
    if (!text_value.is_string()) {
      fail("'{}': __metadata__ value of '{}' must be a string, got {}", where, key,
           text_value.dump());
    }
    metadata[key] = text_value.get<std::string>();
  }
  return metadata;
}

// "shape": non-negative integers.
std::vector<int64_t> read_shape(const nlohmann::json& value, const std::string& name,
                                const std::string& where) {
  const auto shape = value.find("shape");
  if (shape == value.end() || !shape->is_array()) {
    fail("'{}': tensor '{}' has no shape array", where, name);
  }
  std::vector<int64_t> out;
  for (const auto& d : *shape) {
    if (!d.is_number_unsigned() || d.get<uint64_t>() > (uint64_t{1} << 62)) {
      fail("'{}': tensor '{}' has an invalid shape {} (dimensions must be non-negative integers)",
           where, name, shape->dump());
    }
    out.push_back(static_cast<int64_t>(d.get<uint64_t>()));
  }
  return out;
}

// One tensor's entry: known fields only, a known dtype, a shape, and data_offsets inside the
// data section whose span is the byte size of dtype and shape.
TensorEntry read_entry(const std::string& name, const nlohmann::json& value, uint64_t data_size,
                       const std::string& where) {
  if (name.empty()) {
    fail("'{}': a tensor has an empty name", where);
  }
  if (!value.is_object()) {
    fail("'{}': tensor '{}' must be an object with dtype, shape and data_offsets", where, name);
  }
  for (const auto& [field, unused] : value.items()) {
    (void)unused;
    if (field != "dtype" && field != "shape" && field != "data_offsets") {
      fail("'{}': tensor '{}' has an unknown field '{}'", where, name, field);
    }
  }
  TensorEntry entry;
  entry.name = name;
  const auto dtype = value.find("dtype");
  if (dtype == value.end() || !dtype->is_string()) {
    fail("'{}': tensor '{}' has no dtype string", where, name);
  }
  const auto parsed = parse_dtype(dtype->get<std::string>());
  if (!parsed) {
    fail("'{}': tensor '{}' has the unknown dtype '{}'", where, name, dtype->get<std::string>());
  }
  entry.dtype = *parsed;
  entry.shape = read_shape(value, name, where);
  const auto offsets = value.find("data_offsets");
  if (offsets == value.end() || !offsets->is_array() || offsets->size() != 2 ||
      !(*offsets)[0].is_number_unsigned() || !(*offsets)[1].is_number_unsigned()) {
    fail("'{}': tensor '{}' needs data_offsets [begin, end] of non-negative integers", where, name);
  }
  entry.begin = (*offsets)[0].get<uint64_t>();
  entry.end = (*offsets)[1].get<uint64_t>();
  if (entry.begin > entry.end || entry.end > data_size) {
    fail(
        "'{}': tensor '{}' has data_offsets [{}, {}] outside the data section of {} bytes "
        "(or begin > end)",
        where, name, entry.begin, entry.end, data_size);
  }
  const auto bytes = byte_size(entry.shape, dtype_size(entry.dtype));
  if (!bytes || *bytes != entry.end - entry.begin) {
    fail("'{}': tensor '{}' is {} {} ({} bytes) but its data_offsets [{}, {}] span {} bytes", where,
         name, dtype_name(entry.dtype), shape_text(entry.shape),
         bytes ? std::to_string(*bytes) : std::string("too many"), entry.begin, entry.end,
         entry.end - entry.begin);
  }
  return entry;
}

// The tensors (sorted by offset) tile the data section: each starts where the last ended.
void check_tiling(const std::vector<TensorEntry>& tensors, uint64_t data_size,
                  const std::string& where) {
  uint64_t expected = 0;
  const TensorEntry* previous = nullptr;
  for (const auto& entry : tensors) {
    if (entry.begin < expected) {
      fail("'{}': tensors '{}' and '{}' overlap (bytes [{}, {}) and [{}, {}))", where,
           previous->name, entry.name, previous->begin, previous->end, entry.begin, entry.end);
    }
    if (entry.begin > expected) {
      fail("'{}': bytes [{}, {}) of the data section belong to no tensor (before '{}')", where,
           expected, entry.begin, entry.name);
    }
    expected = entry.end;
    previous = &entry;
  }
  if (expected != data_size) {
    fail("'{}': the data section has {} bytes but the tensors cover {}", where, data_size,
         expected);
  }
}

}  // namespace

const char* dtype_name(Dtype dtype) { return info(dtype).name; }

int64_t dtype_size(Dtype dtype) { return info(dtype).size; }

std::optional<Dtype> parse_dtype(std::string_view name) {
  for (const auto& d : kDtypes) {
    if (name == d.name) {
      return d.dtype;
    }
  }
  return std::nullopt;
}

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    fail("safetensors file '{}' does not exist or is not a regular file", path);
  }
  const uint64_t size = fs::file_size(path, ec);
  if (ec) {
    fail("cannot read safetensors file '{}': {}", path, ec.message());
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    fail("cannot open safetensors file '{}'", path);
  }
  // Check the header length before reading the rest, so a hostile length costs nothing.
  char head[8] = {};
  in.read(head, 8);
  header_length(std::string_view(head, 8), size, path);
  bytes_.resize(size);
  std::memcpy(bytes_.data(), head, 8);
  in.read(bytes_.data() + 8, static_cast<std::streamsize>(size - 8));
  if (static_cast<uint64_t>(in.gcount()) != size - 8) {
    fail("cannot read safetensors file '{}': short read", path);
  }
  parse();
}

SafetensorsFile SafetensorsFile::from_bytes(std::string bytes, const std::string& origin) {
  SafetensorsFile file;
  file.path_ = origin;
  file.bytes_ = std::move(bytes);
  file.parse();
  return file;
}

void SafetensorsFile::parse() {
  const std::string& where = path_;
  const uint64_t header = header_length(bytes_, bytes_.size(), where);
  data_start_ = 8 + header;
  const uint64_t data_size = bytes_.size() - data_start_;
  const nlohmann::json json = parse_header(std::string_view(bytes_.data() + 8, header), where);
  for (const auto& [name, value] : json.items()) {
    if (name == "__metadata__") {
      metadata_ = read_metadata(value, where);
    } else {
      tensors_.push_back(read_entry(name, value, data_size, where));
    }
  }
  std::sort(tensors_.begin(), tensors_.end(), [](const TensorEntry& a, const TensorEntry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  check_tiling(tensors_, data_size, where);
  for (size_t i = 0; i < tensors_.size(); ++i) {
    index_[tensors_[i].name] = i;
  }
}

const TensorEntry* SafetensorsFile::find(const std::string& name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

std::string_view SafetensorsFile::data(const TensorEntry& entry) const {
  return std::string_view(bytes_.data() + data_start_ + entry.begin, entry.end - entry.begin);
}

namespace {

// The 8-byte length and the JSON header (padded to 8 bytes) for `tensors`; `data_bytes` gets the
// size of the data section.
std::string header_bytes(const std::vector<TensorView>& tensors,
                         const std::map<std::string, std::string>& metadata, uint64_t& data_bytes) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    header["__metadata__"] = metadata;
  }
  std::set<std::string> names;
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    if (t.name.empty() || t.name == "__metadata__" || !names.insert(t.name).second) {
      fail("cannot write tensor '{}' to safetensors: empty, reserved or duplicate name", t.name);
    }
    for (int64_t d : t.shape) {
      if (d < 0) {
        fail("cannot write tensor '{}' to safetensors: negative dimension in {}", t.name,
             shape_text(t.shape));
      }
    }
    const auto bytes = byte_size(t.shape, dtype_size(t.dtype));
    if (!bytes) {
      fail("cannot write tensor '{}': shape {} is too large", t.name, shape_text(t.shape));
    }
    header[t.name] = {{"dtype", dtype_name(t.dtype)},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + *bytes}}};
    offset += *bytes;
  }
  std::string json = header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');  // data starts 8-byte aligned
  std::string out;
  append_u64_le(out, json.size());
  data_bytes = offset;
  return out + json;
}

uint64_t tensor_bytes(const TensorView& t) { return *byte_size(t.shape, dtype_size(t.dtype)); }

}  // namespace

std::string serialize_safetensors(const std::vector<TensorView>& tensors,
                                  const std::map<std::string, std::string>& metadata) {
  uint64_t data_bytes = 0;
  std::string out = header_bytes(tensors, metadata, data_bytes);
  out.reserve(out.size() + data_bytes);
  for (const auto& t : tensors) {
    if (tensor_bytes(t) > 0) {
      out.append(static_cast<const char*>(t.data), tensor_bytes(t));
    }
  }
  return out;
}

void write_safetensors(const std::string& path, const std::vector<TensorView>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  uint64_t data_bytes = 0;
  const std::string header = header_bytes(tensors, metadata, data_bytes);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(header.data(), static_cast<std::streamsize>(header.size()));
    for (const auto& t : tensors) {
      if (tensor_bytes(t) > 0) {
        out.write(static_cast<const char*>(t.data), static_cast<std::streamsize>(tensor_bytes(t)));
      }
    }
    out.close();
    if (!out) {
      std::error_code ec;
      fs::remove(tmp, ec);
      fail("cannot write '{}'", path);
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    fail("cannot write '{}': {}", path, ec.message());
  }
}

}  // namespace duet::export_
