// .npy reading and writing (see npy.h).
#include "export/npy.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "common/error.h"

namespace duet::export_ {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicSize = 6;

int64_t element_size(const std::string& descr) {
  if (descr == "<f4") {
    return 4;
  }
  if (descr == "<f2") {
    return 2;
  }
  return 0;
}

}  // namespace

void write_npy(const std::string& path, const std::string& descr, const std::vector<int64_t>& shape,
               const void* data) {
  const int64_t size = element_size(descr);
  DUET_CHECK(size > 0, "write_npy: unsupported dtype '{}'", descr);
  std::string dims;
  int64_t count = 1;
  for (int64_t d : shape) {
    dims += std::to_string(d) + ", ";
    count *= d;
  }
  if (shape.size() > 1) {
    dims.resize(dims.size() - 1);  // "(3, 4)" but "(3,)"
    dims.pop_back();
  } else if (shape.size() == 1) {
    dims.pop_back();  // "(3,)"
  }
  std::string header =
      "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (" + dims + "), }";
  // Magic (6) + version (2) + length (2) + header + '\n' is a multiple of 64.
  const size_t total = kMagicSize + 4 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::string out(kMagic, kMagicSize);
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(header.size() & 0xFF);
  out += static_cast<char>((header.size() >> 8) & 0xFF);
  out += header;
  const std::string tmp = path + ".tmp";
  {
    std::ofstream file(tmp, std::ios::binary | std::ios::trunc);
    file.write(out.data(), static_cast<std::streamsize>(out.size()));
    file.write(static_cast<const char*>(data), static_cast<std::streamsize>(count * size));
    file.close();
    if (!file) {
      fail("cannot write '{}'", path);
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    fail("cannot write '{}': {}", path, ec.message());
  }
}

NpyArray read_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    fail("cannot open the .npy file '{}'", path);
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  const std::string bytes = buffer.str();
  if (bytes.size() < kMagicSize + 4 || bytes.compare(0, kMagicSize, kMagic, kMagicSize) != 0) {
    fail("'{}' is not a .npy file (no \\x93NUMPY magic)", path);
  }
  const int major = static_cast<unsigned char>(bytes[6]);
  size_t header_len = 0;
  size_t offset = 0;
  if (major == 1) {
    header_len = static_cast<unsigned char>(bytes[8]) |
                 (static_cast<size_t>(static_cast<unsigned char>(bytes[9])) << 8);
    offset = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) {
      fail("'{}': truncated .npy header", path);
    }
    for (int i = 3; i >= 0; --i) {
      header_len = (header_len << 8) | static_cast<unsigned char>(bytes[8 + i]);
    }
    offset = 12;
  } else {
    fail("'{}': unsupported .npy format version {}", path, major);
  }
  if (header_len > bytes.size() - offset) {
    fail("'{}': .npy header length {} exceeds the file", path, header_len);
  }
  const std::string header = bytes.substr(offset, header_len);
  std::smatch match;
  NpyArray array;
  if (!std::regex_search(header, match, std::regex(R"('descr'\s*:\s*'([^']*)')"))) {
    fail("'{}': .npy header has no descr", path);
  }
  array.descr = match[1];
  const int64_t size = element_size(array.descr);
  if (size == 0) {
    fail("'{}': .npy dtype '{}' is not float32 ('<f4') or float16 ('<f2')", path, array.descr);
  }
  if (!std::regex_search(header, match, std::regex(R"('fortran_order'\s*:\s*False)"))) {
    fail("'{}': .npy data must be in C order", path);
  }
  if (!std::regex_search(header, match, std::regex(R"('shape'\s*:\s*\(([^)]*)\))"))) {
    fail("'{}': .npy header has no shape", path);
  }
  const std::string dims = match[1];
  const std::regex number(R"(\d+)");
  int64_t count = 1;
  for (auto it = std::sregex_iterator(dims.begin(), dims.end(), number);
       it != std::sregex_iterator(); ++it) {
    const std::string digits = it->str();
    if (digits.size() > 12) {
      fail("'{}': .npy dimension {} is too large", path, digits);
    }
    const int64_t d = std::stoll(digits);
    array.shape.push_back(d);
    if (d != 0 && count > (int64_t{1} << 40) / d) {
      fail("'{}': .npy shape ({}) is too large", path, dims);
    }
    count *= d;
  }
  const size_t data_start = offset + header_len;
  if (bytes.size() - data_start != static_cast<size_t>(count * size)) {
    fail("'{}': .npy shape ({}) needs {} bytes of data, the file has {}", path, dims, count * size,
         bytes.size() - data_start);
  }
  array.data = bytes.substr(data_start);
  return array;
}

}  // namespace duet::export_
