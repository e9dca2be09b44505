#pragma once
// Describing tensors in the messages of bad-input Errors: "[8, 1, 28, 28] float32".
#include <ATen/core/Tensor.h>

#include <string>

namespace duet::models {

// "float32", "int64", ... (PyTorch's names); "undefined" for an undefined tensor.
std::string dtype_name(const at::Tensor& t);

// "[8, 1, 28, 28] float32", or "undefined".
std::string describe(const at::Tensor& t);

}  // namespace duet::models
