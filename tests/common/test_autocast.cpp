// AutocastScope: the bf16 copies autocast makes of weights must never outlive the scope, or the
// next step's forward runs on the weights of an earlier step (LibTorch caches the cast of each
// leaf parameter until the cache is cleared, as torch.autocast's __exit__ does in Python).
#include <torch/torch.h>

#include <catch2/catch.hpp>

#include "common/autocast.h"

namespace {

// x·wᵀ + b as autocast computes a bf16 linear, from the weights as they are now.
torch::Tensor bf16_linear(const torch::Tensor& x, const torch::nn::Linear& linear) {
  torch::NoGradGuard no_grad;
  return torch::nn::functional::linear(x.to(torch::kBFloat16),
                                       linear->weight.to(torch::kBFloat16),
                                       linear->bias.to(torch::kBFloat16));
}

}  // namespace

TEST_CASE("each bf16 autocast scope sees the weights as updated by the optimiser") {
  torch::manual_seed(0);
  torch::nn::Linear linear(8, 4);
  torch::optim::SGD optimizer(linear->parameters(), torch::optim::SGDOptions(0.5));
  const torch::Tensor x = torch::randn({3, 8});
  for (int step = 0; step < 4; ++step) {
    torch::Tensor y;
    {
      duet::AutocastScope scope(torch::kCPU, true, torch::kBFloat16);
      y = linear->forward(x);
    }
    REQUIRE(y.scalar_type() == torch::kBFloat16);
    INFO("step " << step);
    CHECK(torch::equal(y.detach(), bf16_linear(x, linear)));
    optimizer.zero_grad();
    y.to(torch::kFloat32).square().sum().backward();
    optimizer.step();  // updates the float32 weights in place
  }
}

TEST_CASE("nested autocast scopes keep the outer scope's cache and restore its state") {
  torch::manual_seed(0);
  torch::nn::Linear linear(8, 4);
  const torch::Tensor x = torch::randn({3, 8});
  duet::AutocastScope outer(torch::kCPU, true, torch::kBFloat16);
  {
    duet::AutocastScope inner(torch::kCPU, false, torch::kBFloat16);
    CHECK(linear->forward(x).scalar_type() == torch::kFloat32);
  }
  CHECK(at::autocast::is_autocast_enabled(torch::kCPU));
  CHECK(linear->forward(x).scalar_type() == torch::kBFloat16);
}
