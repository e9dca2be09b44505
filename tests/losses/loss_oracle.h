#pragma once
// The float64 oracles (loss_oracle_math.h) with tensor conversions for the tests of src/losses.
#include <cstdint>

#include <torch/types.h>

#include "losses/loss_oracle_math.h"

namespace duet::losses::testing {

// Row-major float64 copy of a 2-D tensor (or a 0-dim one as 1×1).
Matrix to_matrix(const torch::Tensor& tensor);

// n×D random rows, L2-normalised (like the towers' output), in `dtype`.
torch::Tensor random_embeddings(int64_t n, int64_t d, torch::ScalarType dtype = torch::kFloat64);

}  // namespace duet::losses::testing
