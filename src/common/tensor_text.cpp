// Tensor descriptions for Error messages (see tensor_text.h).
#include "common/tensor_text.h"

#include <ATen/core/Tensor.h>

#include "common/dtype_names.h"

namespace duet {

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    text += (i > 0 ? ", " : "") + std::to_string(shape[i]);
  }
  return text + "]";
}

std::string describe(const at::Tensor& tensor) {
  if (!tensor.defined()) {
    return "undefined";
  }
  return shape_text(tensor.sizes().vec()) + " " + dtype_name(tensor.scalar_type()) + " " +
         tensor.device().str();
}

}  // namespace duet
