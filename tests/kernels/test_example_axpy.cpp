// example_axpy.cu run on the host execution layer: a .cu kernel source compiled as host C++ by
// duet_kernel_test, on awkward sizes (1, primes, non-multiples of a block).
#include <catch2/catch.hpp>

#include <random>
#include <vector>

#include "example_axpy.h"

namespace {

TEST_CASE("a .cu kernel source runs on the host layer", "[kernels]") {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  for (const int n : {1, 3, 4, 5, 511, 512, 513, 1031}) {
    std::vector<float> x(static_cast<std::size_t>(n));  // exactly n: the ASan twin checks reads
    std::vector<float> y(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
      x[static_cast<std::size_t>(i)] = uniform(rng);
      y[static_cast<std::size_t>(i)] = uniform(rng);
    }
    const std::vector<float> y0 = y;
    duet::kernels::example::axpy(0.5f, x.data(), y.data(), n, nullptr);
    for (int i = 0; i < n; ++i) {
      const auto k = static_cast<std::size_t>(i);
      INFO("n " << n << " i " << i);
      CHECK(y[k] == 0.5f * x[k] + y0[k]);
    }
  }
}

}  // namespace
