// Dtype names: PyTorch's spelling both ways, c10's for the rest, and option parsing that names
// the option, the accepted names and the value.
#include <torch/torch.h>

#include <catch2/catch.hpp>

#include "common/dtype_names.h"
#include "common/error.h"

namespace duet {
namespace {

TEST_CASE("dtype names are PyTorch's and read back to the same dtype") {
  const std::vector<std::pair<torch::ScalarType, std::string>> names = {
      {torch::kFloat32, "float32"}, {torch::kFloat64, "float64"}, {torch::kBFloat16, "bfloat16"},
      {torch::kFloat16, "float16"}, {torch::kInt64, "int64"},     {torch::kInt32, "int32"},
      {torch::kInt16, "int16"},     {torch::kInt8, "int8"},       {torch::kUInt8, "uint8"},
      {torch::kBool, "bool"},
  };
  for (const auto& [type, name] : names) {
    CAPTURE(name);
    CHECK(dtype_name(type) == name);
    CHECK(dtype_from_name(name) == type);
  }
  CHECK(dtype_name(torch::kComplexFloat) == "ComplexFloat");  // c10's name for the rest
  CHECK_FALSE(dtype_from_name("ComplexFloat").has_value());
  CHECK_FALSE(dtype_from_name("Float").has_value());
  CHECK_FALSE(dtype_from_name("").has_value());
}

TEST_CASE("parse_dtype_option accepts only the allowed names, naming them when it refuses") {
  CHECK(parse_dtype_option("--dtype", "bfloat16", {torch::kFloat32, torch::kBFloat16}) ==
        torch::kBFloat16);
  CHECK_THROWS_WITH(
      parse_dtype_option("--dtype", "float64", {torch::kFloat32, torch::kHalf, torch::kBFloat16}),
      "--dtype: expected float32, float16 or bfloat16, got 'float64'");
  CHECK_THROWS_WITH(parse_dtype_option("--dtype", "half", {torch::kFloat32, torch::kFloat64}),
                    "--dtype: expected float32 or float64, got 'half'");
  try {
    parse_dtype_option("--dtype", "x", {torch::kFloat32});
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::kUsage);
    CHECK(std::string(e.what()) == "--dtype: expected float32, got 'x'");
  }
}

}  // namespace
}  // namespace duet
