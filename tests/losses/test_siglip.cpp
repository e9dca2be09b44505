// SigLIP: the reference and the tiled autograd function against the independent float64 oracle
// (forward and every gradient), finite differences, the distributed decomposition, lower
// precisions and the argument checks. Tolerances as in test_infonce.cpp: float64 results agree
// with the oracle to 1e-12 normwise (a few hundred ulps of accumulated rounding at most).
#include <cmath>
#include <functional>
#include <numeric>
#include <vector>

// LibTorch before Catch2: c10 defines a CHECK macro that Catch2's must replace.
#include <torch/torch.h>

#include <catch2/catch.hpp>

#include "losses/expect_close.h"
#include "losses/loss_oracle.h"
#include "losses/siglip.h"

namespace duet::losses {
namespace {

using testing::expect_close;
using testing::random_embeddings;
using testing::siglip_oracle;
using testing::to_matrix;

constexpr double kFloat64Tol = 1e-12;

using SigLipFn = std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&, int64_t,
                                             const torch::Tensor&, const torch::Tensor&)>;

// fn: the gathered form (x_local against y_all at an offset); one: the one-process form (the
// reference has only the general form, which is also its one-process loss at offset 0).
using OneProcessFn = std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&,
                                                 const torch::Tensor&, const torch::Tensor&)>;

struct Named {
  std::string name;
  SigLipFn fn;
  OneProcessFn one;
};

std::vector<Named> implementations(int64_t tile) {
  return {{"reference", siglip_loss_reference,
           [](const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& s,
              const torch::Tensor& b) { return siglip_loss_reference(x, y, 0, s, b); }},
          {"tiled(tile " + std::to_string(tile) + ")",
           [tile](const torch::Tensor& x, const torch::Tensor& y, int64_t offset,
                  const torch::Tensor& s,
                  const torch::Tensor& b) { return siglip_loss_tiled(x, y, offset, s, b, tile); },
           [tile](const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& s,
                  const torch::Tensor& b) { return siglip_loss_tiled(x, y, s, b, tile); }}};
}

torch::Tensor scalar(double value, torch::ScalarType dtype = torch::kFloat64) {
  return torch::tensor(value, torch::TensorOptions().dtype(dtype));
}

double numeric_derivative(const std::function<double()>& f, torch::Tensor& entry, double h) {
  torch::NoGradGuard no_grad;
  const double x0 = entry.item<double>();
  auto at = [&](double x) {
    entry.fill_(x);
    return f();
  };
  const double d = (-at(x0 + 2 * h) + 8 * at(x0 + h) - 8 * at(x0 - h) + at(x0 - 2 * h)) / (12 * h);
  entry.fill_(x0);
  return d;
}

TEST_CASE("siglip matches the float64 oracle", "[losses]") {
  torch::manual_seed(11);
  struct Shape {
    int64_t n, m, offset;
  };
  const std::vector<Shape> shapes = {{1, 1, 0}, {2, 2, 0},  {5, 5, 0},  {13, 13, 0},  {31, 31, 0},
                                     {1, 7, 6}, {5, 13, 3}, {5, 13, 8}, {13, 31, 18}, {4, 16, 12}};
  for (const Shape& shape : shapes) {
    const torch::Tensor x0 = random_embeddings(shape.n, 16);
    const torch::Tensor y0 = random_embeddings(shape.m, 16);
    // (log t, b): SigLIP's init (ln 10, −10), the clamp ln 100 with either sign of bias, small t.
    for (auto [logit_scale, logit_bias] :
         std::vector<std::pair<double, double>>{{std::log(10.0), -10.0},
                                                {std::log(100.0), 10.0},
                                                {std::log(100.0), -10.0},
                                                {-1.0, 0.5}}) {
      const auto want =
          siglip_oracle(to_matrix(x0), to_matrix(y0), shape.offset, logit_scale, logit_bias);
      for (int64_t tile : {4, 7, 64}) {
        for (const auto& impl : implementations(tile)) {
          INFO(impl.name << " n=" << shape.n << " M=" << shape.m << " offset=" << shape.offset
                         << " logit_scale=" << logit_scale << " logit_bias=" << logit_bias);
          const torch::Tensor x = x0.clone().requires_grad_();
          const torch::Tensor y = y0.clone().requires_grad_();
          const torch::Tensor scale = scalar(logit_scale).requires_grad_();
          const torch::Tensor bias = scalar(logit_bias).requires_grad_();
          const torch::Tensor loss = impl.fn(x, y, shape.offset, scale, bias);
          loss.backward();
          CHECK(loss.scalar_type() == torch::kFloat64);
          // Normwise floors: terms of size t/n (d embeddings) and t (d log t), see InfoNCE.
          const double t = std::exp(logit_scale);
          expect_close("loss", loss, want.loss, kFloat64Tol);
          expect_close("d x", x.grad(), want.d_x, kFloat64Tol, t / static_cast<double>(shape.n));
          expect_close("d y", y.grad(), want.d_y, kFloat64Tol, t / static_cast<double>(shape.n));
          expect_close("d logit_scale", scale.grad(), want.d_logit_scale, kFloat64Tol, t);
          expect_close("d logit_bias", bias.grad(), want.d_logit_bias, kFloat64Tol);
          if (shape.n == shape.m && shape.offset == 0) {  // the one-process form: the same loss
            const torch::Tensor one = impl.one(x0, y0, scalar(logit_scale), scalar(logit_bias));
            expect_close("one-process loss", one, want.loss, kFloat64Tol);
          }
        }
      }
    }
  }
}

TEST_CASE("siglip gradients match finite differences in float64", "[losses]") {
  // As for InfoNCE: fourth-order central differences, h = 1e-5, tolerance 1e-8 relative.
  torch::manual_seed(12);
  constexpr double kH = 1e-5;
  constexpr double kTol = 1e-8;
  for (auto [n, m, offset] :
       std::vector<std::tuple<int64_t, int64_t, int64_t>>{{13, 13, 0}, {5, 13, 3}}) {
    for (auto [logit_scale, logit_bias] :
         std::vector<std::pair<double, double>>{{std::log(100.0), -10.0}, {0.5, 10.0}}) {
      for (const auto& impl : implementations(4)) {
        INFO(impl.name << " n=" << n << " M=" << m << " logit_scale=" << logit_scale
                       << " logit_bias=" << logit_bias);
        torch::Tensor x = random_embeddings(n, 8).requires_grad_();
        torch::Tensor y = random_embeddings(m, 8).requires_grad_();
        torch::Tensor scale = scalar(logit_scale).requires_grad_();
        torch::Tensor bias = scalar(logit_bias).requires_grad_();
        auto f = [&, offset = offset] { return impl.fn(x, y, offset, scale, bias).item<double>(); };
        impl.fn(x, y, offset, scale, bias).backward();
        auto check = [&](const std::string& what, const torch::Tensor& leaf,
                         const torch::Tensor& analytic, std::vector<int64_t> index) {
          torch::Tensor entry = leaf.detach();
          torch::Tensor grad = analytic;
          for (int64_t i : index) {
            entry = entry.select(0, i);
            grad = grad.select(0, i);
          }
          const double numeric = numeric_derivative(f, entry, kH);
          const double g = grad.item<double>();
          INFO(what << " analytic " << g << " numeric " << numeric << " abs err "
                    << std::abs(g - numeric));
          CHECK(std::abs(g - numeric) <= kTol * std::max(1.0, std::abs(numeric)));
        };
        check("d logit_scale", scale, scale.grad(), {});
        check("d logit_bias", bias, bias.grad(), {});
        for (std::vector<int64_t> index : {std::vector<int64_t>{0, 0}, {n / 2, 4}, {n - 1, 7}}) {
          check("d x", x, x.grad(), index);
          check("d y (own slot)", y, y.grad(), {offset + index[0], index[1]});
          check("d y", y, y.grad(), {m - 1 - index[0], index[1]});
        }
      }
    }
  }
}

TEST_CASE("siglip: R ranks' local losses average to the single-process loss and gradients",
          "[losses]") {
  // Rank r: its image rows x_r against all texts (gathered with grad), offset = its first row.
  torch::manual_seed(13);
  const std::vector<std::vector<int64_t>> splits = {
      {12}, {6, 6}, {4, 4, 4}, {3, 3, 3, 3}, {5, 4, 4}};
  for (const auto& split : splits) {
    const int64_t n_total = std::accumulate(split.begin(), split.end(), int64_t{0});
    const torch::Tensor image = random_embeddings(n_total, 16).requires_grad_();
    const torch::Tensor text = random_embeddings(n_total, 16).requires_grad_();
    const torch::Tensor scale = scalar(std::log(10.0)).requires_grad_();
    const torch::Tensor bias = scalar(-10.0).requires_grad_();
    const std::vector<torch::Tensor> leaves = {image, text, scale, bias};
    for (const auto& impl : implementations(4)) {
      INFO(impl.name << " ranks=" << split.size() << " N=" << n_total);
      const torch::Tensor single = impl.one(image, text, scale, bias);
      const auto single_grads = torch::autograd::grad({single}, leaves);

      torch::Tensor mean_loss = torch::zeros({}, torch::kFloat64);
      std::vector<torch::Tensor> summed;
      for (const auto& leaf : leaves) {
        summed.push_back(torch::zeros_like(leaf));
      }
      int64_t offset = 0;
      for (int64_t n : split) {
        const torch::Tensor local =
            impl.fn(image.narrow(0, offset, n), text.clone(), offset, scale, bias);
        const double weight = static_cast<double>(n) / static_cast<double>(n_total);
        const auto grads = torch::autograd::grad({local}, leaves);
        mean_loss += weight * local.detach();
        for (size_t k = 0; k < grads.size(); ++k) {
          summed[k] += weight * grads[k];
        }
        offset += n;
      }
      expect_close("loss", mean_loss, single.item<double>(), kFloat64Tol);
      expect_close("d image", summed[0], to_matrix(single_grads[0]), kFloat64Tol);
      expect_close("d text", summed[1], to_matrix(single_grads[1]), kFloat64Tol);
      expect_close("d logit_scale", summed[2], single_grads[2].item<double>(), kFloat64Tol);
      expect_close("d logit_bias", summed[3], single_grads[3].item<double>(), kFloat64Tol);
    }
  }
}

TEST_CASE("siglip in float32 is as accurate as the float32 reference", "[losses]") {
  // Same budget as InfoNCE: logits carry |δs| <~ D·u·t; the tiled loss stays within 4x of the
  // plain float32 reference's error on the same inputs.
  torch::manual_seed(14);
  const double u = std::ldexp(1.0, -24);
  for (auto [logit_scale, logit_bias] :
       std::vector<std::pair<double, double>>{{std::log(10.0), -10.0}, {std::log(100.0), 10.0}}) {
    for (int64_t n : {5, 31, 64}) {
      const torch::Tensor x32 = random_embeddings(n, 32, torch::kFloat32);
      const torch::Tensor y32 = random_embeddings(n, 32, torch::kFloat32);
      const auto want = siglip_oracle(to_matrix(x32), to_matrix(y32), 0, logit_scale, logit_bias);
      auto rel = [](const torch::Tensor& got, double w) {
        testing::Matrix m(1, 1);
        m.at(0, 0) = w;
        return difference(to_matrix(got), m, 1e-6).max_rel;
      };
      auto run = [&](const SigLipFn& fn) {
        const torch::Tensor x = x32.clone().requires_grad_();
        const torch::Tensor y = y32.clone().requires_grad_();
        const torch::Tensor scale = scalar(logit_scale, torch::kFloat32).requires_grad_();
        const torch::Tensor bias = scalar(logit_bias, torch::kFloat32).requires_grad_();
        const torch::Tensor loss = fn(x, y, 0, scale, bias);
        loss.backward();
        CHECK(loss.scalar_type() == torch::kFloat32);
        CHECK(x.grad().scalar_type() == torch::kFloat32);
        return std::vector<double>{
            rel(loss, want.loss), difference(to_matrix(x.grad()), want.d_x, 1e-6).max_rel,
            difference(to_matrix(y.grad()), want.d_y, 1e-6).max_rel,
            rel(scale.grad(), want.d_logit_scale), rel(bias.grad(), want.d_logit_bias)};
      };
      const auto ref = run(siglip_loss_reference);
      const auto tiled = run(implementations(7)[1].fn);
      const char* names[] = {"loss", "d x", "d y", "d logit_scale", "d logit_bias"};
      for (size_t k = 0; k < ref.size(); ++k) {
        INFO("n=" << n << " logit_scale=" << logit_scale << " " << names[k] << " rel error tiled "
                  << tiled[k] << " reference " << ref[k]);
        CHECK(tiled[k] <= 4 * ref[k] + 16 * u);
      }
    }
  }
}

TEST_CASE("siglip with bfloat16 inputs computes in float32", "[losses]") {
  torch::manual_seed(15);
  const torch::Tensor x16 = random_embeddings(13, 16, torch::kBFloat16);
  const torch::Tensor y16 = random_embeddings(13, 16, torch::kBFloat16);
  for (const auto& impl : implementations(4)) {
    INFO(impl.name);
    const torch::Tensor x = x16.clone().requires_grad_();
    const torch::Tensor y = y16.clone().requires_grad_();
    const torch::Tensor scale = scalar(std::log(10.0), torch::kFloat32).requires_grad_();
    const torch::Tensor bias = scalar(-10.0, torch::kFloat32).requires_grad_();
    const torch::Tensor loss = impl.fn(x, y, 0, scale, bias);
    loss.backward();
    CHECK(loss.scalar_type() == torch::kFloat32);
    CHECK(x.grad().scalar_type() == torch::kBFloat16);
    CHECK(y.grad().scalar_type() == torch::kBFloat16);
    CHECK(bias.grad().scalar_type() == torch::kFloat32);

    const torch::Tensor x32 = x16.to(torch::kFloat32).requires_grad_();
    const torch::Tensor y32 = y16.to(torch::kFloat32).requires_grad_();
    const torch::Tensor scale32 = scalar(std::log(10.0), torch::kFloat32).requires_grad_();
    const torch::Tensor bias32 = scalar(-10.0, torch::kFloat32).requires_grad_();
    const torch::Tensor loss32 = impl.fn(x32, y32, 0, scale32, bias32);
    loss32.backward();
    expect_close("loss", loss, loss32.item<double>(), 1e-6);
    expect_close("d logit_bias", bias.grad(), bias32.grad().item<double>(), 1e-6);
    expect_close("d x", x.grad(), to_matrix(x32.grad()), std::ldexp(1.0, -8));
  }
}

TEST_CASE("siglip: gradients only where asked, none under no_grad", "[losses]") {
  torch::manual_seed(16);
  const torch::Tensor x0 = random_embeddings(9, 8);
  const torch::Tensor y0 = random_embeddings(11, 8);
  const auto want = siglip_oracle(to_matrix(x0), to_matrix(y0), 2, 1.0, -3.0);
  for (const auto& impl : implementations(4)) {
    INFO(impl.name);
    {
      const torch::Tensor bias = scalar(-3.0).requires_grad_();
      impl.fn(x0, y0, 2, scalar(1.0), bias).backward();
      expect_close("d logit_bias", bias.grad(), want.d_logit_bias, kFloat64Tol);
    }
    {
      const torch::Tensor y = y0.clone().requires_grad_();
      const torch::Tensor scale = scalar(1.0).requires_grad_();
      impl.fn(x0, y, 2, scale, scalar(-3.0)).backward();
      expect_close("d y", y.grad(), want.d_y, kFloat64Tol);
      expect_close("d logit_scale", scale.grad(), want.d_logit_scale, kFloat64Tol);
    }
    {
      // The loss times a constant: backward scales the gradients by the upstream gradient.
      const torch::Tensor x = x0.clone().requires_grad_();
      (impl.fn(x, y0, 2, scalar(1.0), scalar(-3.0)) * 3.0).backward();
      testing::Matrix want3 = want.d_x;
      for (double& v : want3.data) {
        v *= 3.0;
      }
      expect_close("3 · d x", x.grad(), want3, kFloat64Tol);
    }
    {
      torch::NoGradGuard no_grad;
      const torch::Tensor x = x0.clone().requires_grad_();
      const torch::Tensor loss = impl.fn(x, y0, 2, scalar(1.0), scalar(-3.0));
      CHECK_FALSE(loss.requires_grad());
      expect_close("loss", loss, want.loss, kFloat64Tol);
    }
  }
}

TEST_CASE("siglip argument checks name the argument and its shape", "[losses]") {
  using Catch::Matchers::Contains;
  const auto x = torch::randn({4, 8});
  const auto y = torch::randn({10, 8});
  const auto s = torch::tensor(2.0f);
  const auto b = torch::tensor(-10.0f);
  for (const auto& impl : implementations(4)) {
    INFO(impl.name);
    CHECK_THROWS_WITH(impl.fn(x, torch::randn({10, 7}), 0, s, b),
                      Contains("y_all must be [M, D] with D = 8") && Contains("[10, 7]"));
    CHECK_THROWS_WITH(impl.fn(x, y, 7, s, b),
                      Contains("offset 7 puts the n = 4 local rows outside the M = 10 rows of "
                               "y_all"));
    CHECK_THROWS_WITH(impl.fn(y, x, 0, s, b), Contains("more rows (n = 10)"));
    CHECK_THROWS_WITH(impl.fn(x, y, 0, s, torch::Tensor()), Contains("logit_bias is undefined"));
    CHECK_THROWS_WITH(impl.fn(x, y, 0, s, torch::zeros({1, 1})),
                      Contains("logit_bias must be a 0-dim tensor") && Contains("[1, 1]"));
    CHECK_THROWS_WITH(impl.fn(x, y.to(torch::kFloat64), 0, s, b),
                      Contains("y_all must have x_local's dtype and device"));
  }
}

}  // namespace
}  // namespace duet::losses
