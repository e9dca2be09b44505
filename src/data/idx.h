#pragma once
// Reader for the IDX format of MNIST and Fashion-MNIST (optionally gzip-compressed, as Debian's
// dataset-fashion-mnist ships them): a big-endian header (magic 0x0000 TT DD, then DD uint32
// dimensions) followed by the elements. Only unsigned bytes (type 0x08) are supported, which is
// what the image and label files hold. Truncated or malformed files are a duet::Error naming
// the file.
#include <cstdint>
#include <string>
#include <vector>

namespace duet::data {

struct IdxArray {
  std::vector<int64_t> shape;  // e.g. [60000, 28, 28] for images, [60000] for labels
  std::vector<uint8_t> data;   // row-major, product(shape) bytes
};

IdxArray read_idx(const std::string& path);

}  // namespace duet::data
