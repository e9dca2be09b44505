// Tensor descriptions for Error messages (see input_checks.h).
#include "models/input_checks.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace duet::models {

std::string dtype_name(const at::Tensor& t) {
  if (!t.defined()) {
    return "undefined";
  }
  switch (t.scalar_type()) {
    case at::kFloat:
      return "float32";
    case at::kDouble:
      return "float64";
    case at::kHalf:
      return "float16";
    case at::kBFloat16:
      return "bfloat16";
    case at::kLong:
      return "int64";
    case at::kInt:
      return "int32";
    case at::kShort:
      return "int16";
    case at::kChar:
      return "int8";
    case at::kByte:
      return "uint8";
    case at::kBool:
      return "bool";
    default:
      return c10::toString(t.scalar_type());
  }
}

std::string describe(const at::Tensor& t) {
  if (!t.defined()) {
    return "undefined";
  }
  return fmt::format("[{}] {}", fmt::join(t.sizes(), ", "), dtype_name(t));
}

}  // namespace duet::models
