// Tensor descriptions in error messages: shape, PyTorch dtype name and device, or "undefined".
#include <torch/torch.h>

#include <catch2/catch.hpp>

#include "common/tensor_text.h"

namespace duet {
namespace {

TEST_CASE("tensors are described by shape, dtype and device") {
  CHECK(describe(torch::zeros({8, 3, 16, 16})) == "[8, 3, 16, 16] float32 cpu");
  CHECK(describe(torch::zeros({2, 12}, torch::kLong)) == "[2, 12] int64 cpu");
  CHECK(describe(torch::zeros({0, 5}, torch::kBFloat16)) == "[0, 5] bfloat16 cpu");
  CHECK(describe(torch::tensor(1.5, torch::kFloat64)) == "[] float64 cpu");
  CHECK(describe(torch::Tensor()) == "undefined");
  // A view describes its own shape, not its storage's.
  CHECK(describe(torch::zeros({4, 6}).t()) == "[6, 4] float32 cpu");
}

TEST_CASE("shapes are bracketed, comma-separated lists") {
  CHECK(shape_text({}) == "[]");
  CHECK(shape_text({7}) == "[7]");
  CHECK(shape_text({1, 0, 49408}) == "[1, 0, 49408]");
}

}  // namespace
}  // namespace duet
