#include "losses/loss_oracle.h"

#include <algorithm>

namespace duet::losses::testing {

Matrix to_matrix(const torch::Tensor& tensor) {
  const torch::Tensor t = tensor.detach().to(torch::kCPU, torch::kFloat64).contiguous();
  Matrix m(t.dim() == 2 ? t.size(0) : 1, t.dim() == 2 ? t.size(1) : t.numel());
  std::copy(t.data_ptr<double>(), t.data_ptr<double>() + t.numel(), m.data.begin());
  return m;
}

torch::Tensor random_embeddings(int64_t n, int64_t d, torch::ScalarType dtype) {
  const torch::Tensor x = torch::randn({n, d}, torch::kFloat64);
  return (x / x.norm(2, 1, true)).to(dtype);
}

}  // namespace duet::losses::testing
