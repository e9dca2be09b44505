// Dtype names (see dtype_names.h): one table, read both ways.
#include "common/dtype_names.h"

#include <c10/core/ScalarType.h>

#include <array>
#include <utility>

#include "common/error.h"

namespace duet {
namespace {

constexpr std::array<std::pair<c10::ScalarType, std::string_view>, 10> kNames = {{
    {c10::ScalarType::Float, "float32"},
    {c10::ScalarType::Double, "float64"},
    {c10::ScalarType::BFloat16, "bfloat16"},
    {c10::ScalarType::Half, "float16"},
    {c10::ScalarType::Long, "int64"},
    {c10::ScalarType::Int, "int32"},
    {c10::ScalarType::Short, "int16"},
    {c10::ScalarType::Char, "int8"},
    {c10::ScalarType::Byte, "uint8"},
    {c10::ScalarType::Bool, "bool"},
}};

// "a, b or c".
std::string name_list(std::initializer_list<c10::ScalarType> types) {
  std::string out;
  size_t i = 0;
  for (const c10::ScalarType type : types) {
    out += (i == 0 ? "" : i + 1 == types.size() ? " or " : ", ") + dtype_name(type);
    ++i;
  }
  return out;
}

}  // namespace

std::string dtype_name(c10::ScalarType type) {
  for (const auto& [known, name] : kNames) {
    if (known == type) {
      return std::string(name);
    }
  }
  return c10::toString(type);
}

std::optional<c10::ScalarType> dtype_from_name(std::string_view name) {
  for (const auto& [type, known] : kNames) {
    if (known == name) {
      return type;
    }
  }
  return std::nullopt;
}

c10::ScalarType parse_dtype_option(std::string_view option, std::string_view name,
                                   std::initializer_list<c10::ScalarType> allowed) {
  const auto type = dtype_from_name(name);
  for (const c10::ScalarType candidate : allowed) {
    if (type == candidate) {
      return candidate;
    }
  }
  fail(ErrorKind::kUsage, "{}: expected {}, got '{}'", option, name_list(allowed), name);
}

}  // namespace duet
