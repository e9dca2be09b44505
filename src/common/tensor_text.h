#pragma once
// Tensors described in the messages of bad-input Errors, one way everywhere:
//   "[8, 3, 16, 16] float32 cpu"   (shape, dtype_name(), device), or "undefined".
// Torch-free: at::Tensor is only declared here, so headers of torch-free code may include it.
#include <cstdint>
#include <string>
#include <vector>

namespace at {
class Tensor;
}  // namespace at

namespace duet {

// "[8, 3, 16, 16]"; "[]" for a 0-dim shape.
std::string shape_text(const std::vector<int64_t>& shape);

// "[8, 3, 16, 16] float32 cpu", or "undefined" for an undefined tensor.
std::string describe(const at::Tensor& tensor);

}  // namespace duet
