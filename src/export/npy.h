#pragma once
// NumPy .npy files (format version 1.0): a magic string, a header dict with 'descr',
// 'fortran_order' and 'shape', then the raw C-order data. Embeddings go out as float32 ('<f4')
// or float16 ('<f2') [N, E] arrays that numpy.load, FAISS and vector databases read. Reading
// (for `duet retrieve`) treats the file as untrusted: header length, dtype, order and shape are
// checked against the file size. Torch-free.
#include <cstdint>
#include <string>
#include <vector>

namespace duet::export_ {

struct NpyArray {
  std::string descr;           // "<f4" or "<f2"
  std::vector<int64_t> shape;  // C order
  std::string data;            // raw little-endian bytes
};

// Writes `data` (product(shape) elements of `descr`, "<f4" or "<f2") atomically.
void write_npy(const std::string& path, const std::string& descr, const std::vector<int64_t>& shape,
               const void* data);

// Reads a C-order '<f4' or '<f2' array; anything else is a runtime Error naming the file.
NpyArray read_npy(const std::string& path);

}  // namespace duet::export_
