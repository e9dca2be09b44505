// The tiled losses on blocks large enough to run in parallel (tiling.h: column tiles on ATen's
// threads, per-column-tile partials combined in order): against the float64 oracle, and
// bitwise reproducible from run to run. The other tests use small blocks, which stay on the
// calling thread.
#include <cmath>
#include <vector>

// LibTorch before Catch2: c10 defines a CHECK macro that Catch2's must replace.
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <catch2/catch.hpp>

#include "losses/expect_close.h"
#include "losses/infonce.h"
#include "losses/loss_oracle.h"
#include "losses/siglip.h"

namespace duet::losses {
namespace {

using testing::expect_close;
using testing::random_embeddings;
using testing::to_matrix;

// Two intra-op threads for the scope, whatever the machine's default.
class TwoThreads {
 public:
  TwoThreads() : before_(at::get_num_threads()) { at::set_num_threads(2); }
  ~TwoThreads() { at::set_num_threads(before_); }
  TwoThreads(const TwoThreads&) = delete;
  TwoThreads& operator=(const TwoThreads&) = delete;

 private:
  int before_;
};

// 128·128·64 multiply-adds per block: at the parallel grain (tiling.h), so every column tile is
// its own task. 389 is prime: the last row and column tiles are partial.
constexpr int64_t kTile = 128;
constexpr int64_t kDim = 64;
constexpr double kTol = 1e-12;

struct Run {
  std::vector<torch::Tensor> values;  // loss, then the gradients
};

bool bitwise_equal(const Run& a, const Run& b) {
  for (size_t k = 0; k < a.values.size(); ++k) {
    if (!torch::equal(a.values[k], b.values[k])) {
      return false;
    }
  }
  return true;
}

TEST_CASE("tiled losses in parallel match the oracle and are reproducible", "[losses]") {
  TwoThreads threads;
  torch::manual_seed(41);
  const int64_t m = 389, n = 200, offset = 150;
  const torch::Tensor image0 = random_embeddings(m, kDim);
  const torch::Tensor text0 = random_embeddings(m, kDim);
  const double logit_scale = std::log(100.0);
  const double t = std::exp(logit_scale);

  SECTION("infonce, one process") {
    auto run = [&] {
      const torch::Tensor image = image0.clone().requires_grad_();
      const torch::Tensor text = text0.clone().requires_grad_();
      const torch::Tensor scale = torch::tensor(logit_scale, torch::kFloat64).requires_grad_();
      const torch::Tensor loss = infonce_loss_tiled(image, text, scale, kTile);
      loss.backward();
      return Run{{loss.detach(), image.grad(), text.grad(), scale.grad()}};
    };
    const Run first = run();
    const auto want = testing::infonce_oracle(to_matrix(image0), to_matrix(text0),
                                              to_matrix(image0), to_matrix(text0), 0, logit_scale);
    expect_close("loss", first.values[0], want.loss, kTol);
    expect_close("d image", first.values[1], add(want.d_image_local, want.d_image_all), kTol,
                 t / m);
    expect_close("d text", first.values[2], add(want.d_text_local, want.d_text_all), kTol, t / m);
    expect_close("d logit_scale", first.values[3], want.d_logit_scale, kTol, t);
    CHECK(bitwise_equal(first, run()));
  }

  SECTION("infonce, local rows against the gathered batch") {
    const torch::Tensor image_local0 = image0.narrow(0, offset, n).clone();
    const torch::Tensor text_local0 = text0.narrow(0, offset, n).clone();
    auto run = [&] {
      const torch::Tensor image_local = image_local0.clone().requires_grad_();
      const torch::Tensor text_local = text_local0.clone().requires_grad_();
      const torch::Tensor image_all = image0.clone().requires_grad_();
      const torch::Tensor text_all = text0.clone().requires_grad_();
      const torch::Tensor scale = torch::tensor(logit_scale, torch::kFloat64).requires_grad_();
      const torch::Tensor loss =
          infonce_loss_tiled(image_local, text_local, image_all, text_all, offset, scale, kTile);
      loss.backward();
      return Run{{loss.detach(), image_local.grad(), text_local.grad(), image_all.grad(),
                  text_all.grad(), scale.grad()}};
    };
    const Run first = run();
    const auto want =
        testing::infonce_oracle(to_matrix(image_local0), to_matrix(text_local0), to_matrix(image0),
                                to_matrix(text0), offset, logit_scale);
    expect_close("loss", first.values[0], want.loss, kTol);
    expect_close("d image_local", first.values[1], want.d_image_local, kTol, t / n);
    expect_close("d text_local", first.values[2], want.d_text_local, kTol, t / n);
    expect_close("d image_all", first.values[3], want.d_image_all, kTol, t / n);
    expect_close("d text_all", first.values[4], want.d_text_all, kTol, t / n);
    expect_close("d logit_scale", first.values[5], want.d_logit_scale, kTol, t);
    CHECK(bitwise_equal(first, run()));
  }

  SECTION("siglip, local rows against the gathered batch") {
    const torch::Tensor x0 = image0.narrow(0, offset, n).clone();
    auto run = [&] {
      const torch::Tensor x = x0.clone().requires_grad_();
      const torch::Tensor y = text0.clone().requires_grad_();
      const torch::Tensor scale = torch::tensor(logit_scale, torch::kFloat64).requires_grad_();
      const torch::Tensor bias = torch::tensor(-10.0, torch::kFloat64).requires_grad_();
      const torch::Tensor loss = siglip_loss_tiled(x, y, offset, scale, bias, kTile);
      loss.backward();
      return Run{{loss.detach(), x.grad(), y.grad(), scale.grad(), bias.grad()}};
    };
    const Run first = run();
    const auto want =
        testing::siglip_oracle(to_matrix(x0), to_matrix(text0), offset, logit_scale, -10.0);
    expect_close("loss", first.values[0], want.loss, kTol);
    expect_close("d x", first.values[1], want.d_x, kTol, t / n);
    expect_close("d y", first.values[2], want.d_y, kTol, t / n);
    expect_close("d logit_scale", first.values[3], want.d_logit_scale, kTol, t);
    expect_close("d logit_bias", first.values[4], want.d_logit_bias, kTol);
    CHECK(bitwise_equal(first, run()));
  }
}

}  // namespace
}  // namespace duet::losses
