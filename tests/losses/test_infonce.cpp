// InfoNCE: the reference and the tiled autograd functions against the independent float64
// oracle (forward and every gradient), finite differences, the distributed decomposition, lower
// precisions and the argument checks. Shapes include 1, primes and non-multiples of the tile.
//
// Tolerances. float64: both implementations sum O(D + M) terms of magnitude <= t per logit and
// take exp/log with ~1 ulp error, so their normwise error against the oracle is a few hundred
// ulps of the largest value at most; 1e-12 (~4500 ulps) leaves room without hiding a bug
// (a dropped tile or a wrong weight is an O(1/N) error). float32: scaled to what the
// same-precision reference gets wrong on the same inputs.
#include <cmath>
#include <functional>
#include <numeric>
#include <vector>

// LibTorch before Catch2: c10 defines a CHECK macro that Catch2's must replace.
#include <torch/torch.h>

#include <catch2/catch.hpp>

#include "common/error.h"
#include "losses/expect_close.h"
#include "losses/infonce.h"
#include "losses/loss_oracle.h"

namespace duet::losses {
namespace {

using testing::expect_close;
using testing::infonce_oracle;
using testing::random_embeddings;
using testing::to_matrix;

constexpr double kFloat64Tol = 1e-12;

// The gathered form (a rank's rows against all rows) and the one-process form of a path.
using GatheredFn =
    std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&,
                                const torch::Tensor&, int64_t, const torch::Tensor&)>;
using OneProcessFn =
    std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&)>;

struct Named {
  std::string name;
  GatheredFn gathered;
  OneProcessFn one;
};

std::vector<Named> implementations(int64_t tile) {
  return {{"reference",
           [](const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& c,
              const torch::Tensor& d, int64_t offset,
              const torch::Tensor& s) { return infonce_loss_reference(a, b, c, d, offset, s); },
           [](const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& s) {
             return infonce_loss_reference(a, b, s);
           }},
          {"tiled(tile " + std::to_string(tile) + ")",
           [tile](const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& c,
                  const torch::Tensor& d, int64_t offset, const torch::Tensor& s) {
             return infonce_loss_tiled(a, b, c, d, offset, s, tile);
           },
           [tile](const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& s) {
             return infonce_loss_tiled(a, b, s, tile);
           }}};
}

// Normwise floors: a gradient entry is a sum of terms as large as t/n (d embeddings) or t
// (d log t) that cancel when the softmax is sharp, so errors are measured against those sizes
// rather than against a result that may be ~1e-9.
struct Floors {
  Floors(double logit_scale, int64_t n)
      : embedding(std::exp(logit_scale) / static_cast<double>(n)), scale(std::exp(logit_scale)) {}
  double embedding;
  double scale;
};

torch::Tensor scalar(double value, torch::ScalarType dtype = torch::kFloat64) {
  return torch::tensor(value, torch::TensorOptions().dtype(dtype));
}

// Central difference of order 4: (−f(+2h) + 8 f(+h) − 8 f(−h) + f(−2h)) / 12h, on one entry.
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

TEST_CASE("infonce one process: reference and tiled match the float64 oracle", "[losses]") {
  torch::manual_seed(1);
  for (double logit_scale : {std::log(100.0), std::log(1 / 0.07), 0.0, -2.0}) {
    for (int64_t n : {1, 2, 5, 13, 31}) {
      for (int64_t d : {3, 16}) {
        const torch::Tensor image0 = random_embeddings(n, d);
        const torch::Tensor text0 = random_embeddings(n, d);
        const auto want = infonce_oracle(to_matrix(image0), to_matrix(text0), to_matrix(image0),
                                         to_matrix(text0), 0, logit_scale);
        for (int64_t tile : {4, 7, 64}) {
          for (const auto& impl : implementations(tile)) {
            INFO(impl.name << " n=" << n << " d=" << d << " logit_scale=" << logit_scale);
            const torch::Tensor image = image0.clone().requires_grad_();
            const torch::Tensor text = text0.clone().requires_grad_();
            const torch::Tensor scale = scalar(logit_scale).requires_grad_();
            const torch::Tensor loss = impl.one(image, text, scale);
            loss.backward();
            CHECK(loss.scalar_type() == torch::kFloat64);
            const Floors floors(logit_scale, n);
            expect_close("loss", loss, want.loss, kFloat64Tol);
            expect_close("d image", image.grad(), add(want.d_image_local, want.d_image_all),
                         kFloat64Tol, floors.embedding);
            expect_close("d text", text.grad(), add(want.d_text_local, want.d_text_all),
                         kFloat64Tol, floors.embedding);
            expect_close("d logit_scale", scale.grad(), want.d_logit_scale, kFloat64Tol,
                         floors.scale);
          }
        }
      }
    }
  }
}

TEST_CASE("infonce local rows against a gathered batch match the oracle", "[losses]") {
  torch::manual_seed(2);
  struct Shape {
    int64_t n, m, offset;
  };
  const std::vector<Shape> shapes = {{1, 1, 0},  {1, 7, 6},    {5, 13, 0},  {5, 13, 3},
                                     {5, 13, 8}, {13, 31, 18}, {31, 31, 0}, {4, 16, 12}};
  for (const Shape& shape : shapes) {
    for (bool gathered : {true, false}) {
      // gathered: the local rows are the slice [offset, offset + n) of the all-tensors, as after
      // an all-gather; otherwise unrelated values (the formula holds for any inputs).
      const torch::Tensor image_all0 = random_embeddings(shape.m, 16);
      const torch::Tensor text_all0 = random_embeddings(shape.m, 16);
      const torch::Tensor image_local0 = gathered
                                             ? image_all0.narrow(0, shape.offset, shape.n).clone()
                                             : random_embeddings(shape.n, 16);
      const torch::Tensor text_local0 = gathered
                                            ? text_all0.narrow(0, shape.offset, shape.n).clone()
                                            : random_embeddings(shape.n, 16);
      for (double logit_scale : {std::log(100.0), -1.0}) {
        const auto want =
            infonce_oracle(to_matrix(image_local0), to_matrix(text_local0), to_matrix(image_all0),
                           to_matrix(text_all0), shape.offset, logit_scale);
        for (int64_t tile : {4, 7}) {
          for (const auto& impl : implementations(tile)) {
            INFO(impl.name << " n=" << shape.n << " M=" << shape.m << " offset=" << shape.offset
                           << " gathered=" << gathered << " logit_scale=" << logit_scale);
            const torch::Tensor image_local = image_local0.clone().requires_grad_();
            const torch::Tensor text_local = text_local0.clone().requires_grad_();
            const torch::Tensor image_all = image_all0.clone().requires_grad_();
            const torch::Tensor text_all = text_all0.clone().requires_grad_();
            const torch::Tensor scale = scalar(logit_scale).requires_grad_();
            const torch::Tensor loss =
                impl.gathered(image_local, text_local, image_all, text_all, shape.offset, scale);
            loss.backward();
            const Floors floors(logit_scale, shape.n);
            expect_close("loss", loss, want.loss, kFloat64Tol);
            expect_close("d image_local", image_local.grad(), want.d_image_local, kFloat64Tol,
                         floors.embedding);
            expect_close("d text_local", text_local.grad(), want.d_text_local, kFloat64Tol,
                         floors.embedding);
            expect_close("d image_all", image_all.grad(), want.d_image_all, kFloat64Tol,
                         floors.embedding);
            expect_close("d text_all", text_all.grad(), want.d_text_all, kFloat64Tol,
                         floors.embedding);
            expect_close("d logit_scale", scale.grad(), want.d_logit_scale, kFloat64Tol,
                         floors.scale);
          }
        }
      }
    }
  }
}

TEST_CASE("infonce gradients match finite differences in float64", "[losses]") {
  // Fourth-order central differences with h = 1e-5: truncation ~h⁴·t⁵/30 relative to t, and
  // rounding ~1.5·eps·|loss|/h ~ 1e-10; 1e-8 relative to max(|gradient|, 1) covers both.
  torch::manual_seed(3);
  constexpr double kH = 1e-5;
  constexpr double kTol = 1e-8;
  struct Shape {
    int64_t n, m, offset;
    bool one_process;
  };
  for (const Shape shape : {Shape{13, 13, 0, true}, Shape{5, 13, 3, false}}) {
    for (double logit_scale : {std::log(100.0), 0.5}) {
      for (const auto& impl : implementations(4)) {
        INFO(impl.name << " n=" << shape.n << " M=" << shape.m << " logit_scale=" << logit_scale);
        torch::Tensor image_all = random_embeddings(shape.m, 8).requires_grad_();
        torch::Tensor text_all = random_embeddings(shape.m, 8).requires_grad_();
        torch::Tensor image_local =
            shape.one_process ? image_all : random_embeddings(shape.n, 8).requires_grad_();
        torch::Tensor text_local =
            shape.one_process ? text_all : random_embeddings(shape.n, 8).requires_grad_();
        torch::Tensor scale = scalar(logit_scale).requires_grad_();
        auto loss = [&] {
          return shape.one_process ? impl.one(image_local, text_local, scale)
                                   : impl.gathered(image_local, text_local, image_all, text_all,
                                                   shape.offset, scale);
        };
        auto f = [&] { return loss().item<double>(); };
        loss().backward();

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
        const int64_t d = image_all.size(1);
        for (std::vector<int64_t> index :
             {std::vector<int64_t>{0, 0}, {shape.n / 2, d / 2}, {shape.n - 1, d - 1}}) {
          check("d image_local", image_local, image_local.grad(), index);
          check("d text_local", text_local, text_local.grad(), index);
          if (!shape.one_process) {
            // Includes a column outside this rank's slot and one inside it.
            check("d image_all", image_all, image_all.grad(), {shape.m - 1 - index[0], index[1]});
            check("d text_all", text_all, text_all.grad(), {shape.offset + index[0], index[1]});
          }
        }
      }
    }
  }
}

TEST_CASE("infonce: R ranks' local losses average to the single-process loss and gradients",
          "[losses]") {
  // Each rank contrasts its rows with the gathered batch (a copy that routes gradients back to
  // every owner, as gather-with-grad does). The weighted mean of the rank losses (weights
  // n_r / N; 1/R for equal shards) must equal the loss of the whole batch in one process, and
  // the sum of the ranks' weighted gradients must equal its gradients.
  torch::manual_seed(4);
  const std::vector<std::vector<int64_t>> splits = {{12},         {6, 6},    {4, 4, 4},
                                                    {3, 3, 3, 3}, {5, 4, 4}, {1, 12}};
  for (const auto& split : splits) {
    const int64_t n_total = std::accumulate(split.begin(), split.end(), int64_t{0});
    const torch::Tensor image = random_embeddings(n_total, 16).requires_grad_();
    const torch::Tensor text = random_embeddings(n_total, 16).requires_grad_();
    const torch::Tensor scale = scalar(std::log(1 / 0.07)).requires_grad_();
    for (const auto& impl : implementations(4)) {
      INFO(impl.name << " ranks=" << split.size() << " N=" << n_total);
      const torch::Tensor single = impl.one(image, text, scale);
      const auto single_grads = torch::autograd::grad({single}, {image, text, scale});

      torch::Tensor mean_loss = torch::zeros({}, torch::kFloat64);
      std::vector<torch::Tensor> summed = {torch::zeros_like(image), torch::zeros_like(text),
                                           torch::zeros_like(scale)};
      int64_t offset = 0;
      for (int64_t n : split) {
        const torch::Tensor image_all = image.clone();  // this rank's gathered copy
        const torch::Tensor text_all = text.clone();
        const torch::Tensor local =
            impl.gathered(image.narrow(0, offset, n), text.narrow(0, offset, n), image_all,
                          text_all, offset, scale);
        const double weight = static_cast<double>(n) / static_cast<double>(n_total);
        const auto grads = torch::autograd::grad({local}, {image, text, scale});
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
    }
  }
}

TEST_CASE("infonce in float32 is as accurate as the float32 reference", "[losses]") {
  // The error budget of a float32 loss is set by the logits: |δs| <~ D·u·t for dot products of
  // unit vectors (u = 2^-24). The tiled loss must stay within 4x of the plain float32
  // reference's error on the same inputs (plus a few ulps of slack).
  torch::manual_seed(5);
  const double u = std::ldexp(1.0, -24);
  for (double logit_scale : {std::log(100.0), std::log(1 / 0.07)}) {
    for (int64_t n : {5, 31, 64}) {
      const torch::Tensor image64 = random_embeddings(n, 32);
      const torch::Tensor text64 = random_embeddings(n, 32);
      const torch::Tensor image32 = image64.to(torch::kFloat32);
      const torch::Tensor text32 = text64.to(torch::kFloat32);
      const auto want = infonce_oracle(to_matrix(image32), to_matrix(text32), to_matrix(image32),
                                       to_matrix(text32), 0, logit_scale);
      struct Errors {
        double loss, image, text, scale;
      };
      auto run = [&](const OneProcessFn& fn) {
        const torch::Tensor image = image32.clone().requires_grad_();
        const torch::Tensor text = text32.clone().requires_grad_();
        const torch::Tensor scale = scalar(logit_scale, torch::kFloat32).requires_grad_();
        const torch::Tensor loss = fn(image, text, scale);
        loss.backward();
        CHECK(loss.scalar_type() == torch::kFloat32);
        CHECK(image.grad().scalar_type() == torch::kFloat32);
        testing::Matrix loss_want(1, 1), scale_want(1, 1);
        loss_want.at(0, 0) = want.loss;
        scale_want.at(0, 0) = want.d_logit_scale;
        auto rel = [](const torch::Tensor& got, const testing::Matrix& w) {
          return difference(to_matrix(got), w, 1e-6).max_rel;
        };
        return Errors{rel(loss, loss_want),
                      rel(image.grad(), add(want.d_image_local, want.d_image_all)),
                      rel(text.grad(), add(want.d_text_local, want.d_text_all)),
                      rel(scale.grad(), scale_want)};
      };
      const Errors ref = run(implementations(7)[0].one);
      const Errors tiled = run(implementations(7)[1].one);
      INFO("n=" << n << " logit_scale=" << logit_scale << " rel errors tiled/reference: loss "
                << tiled.loss << "/" << ref.loss << " d image " << tiled.image << "/" << ref.image
                << " d text " << tiled.text << "/" << ref.text << " d logit_scale " << tiled.scale
                << "/" << ref.scale);
      const double slack = 16 * u;
      CHECK(tiled.loss <= 4 * ref.loss + slack);
      CHECK(tiled.image <= 4 * ref.image + slack);
      CHECK(tiled.text <= 4 * ref.text + slack);
      CHECK(tiled.scale <= 4 * ref.scale + slack);
      // And both are within the a-priori budget of float32 logits, D·u·t per logit.
      const double budget = 4 * 32 * u * std::exp(logit_scale);
      CHECK(tiled.loss <= budget);
      CHECK(ref.loss <= budget);
    }
  }
}

TEST_CASE("infonce with bfloat16 inputs computes in float32", "[losses]") {
  // bfloat16 embeddings are upcast, so the loss equals the float32 loss of the same (rounded)
  // values and gradients come back in bfloat16.
  torch::manual_seed(6);
  const torch::Tensor image16 = random_embeddings(13, 16, torch::kBFloat16);
  const torch::Tensor text16 = random_embeddings(13, 16, torch::kBFloat16);
  for (const auto& impl : implementations(4)) {
    INFO(impl.name);
    const torch::Tensor image = image16.clone().requires_grad_();
    const torch::Tensor text = text16.clone().requires_grad_();
    const torch::Tensor scale = scalar(std::log(1 / 0.07), torch::kFloat32).requires_grad_();
    const torch::Tensor loss = impl.one(image, text, scale);
    loss.backward();
    CHECK(loss.scalar_type() == torch::kFloat32);
    CHECK(image.grad().scalar_type() == torch::kBFloat16);
    CHECK(text.grad().scalar_type() == torch::kBFloat16);
    CHECK(scale.grad().scalar_type() == torch::kFloat32);

    const torch::Tensor image32 = image16.to(torch::kFloat32).requires_grad_();
    const torch::Tensor text32 = text16.to(torch::kFloat32).requires_grad_();
    const torch::Tensor scale32 = scalar(std::log(1 / 0.07), torch::kFloat32).requires_grad_();
    const torch::Tensor loss32 = impl.one(image32, text32, scale32);
    loss32.backward();
    expect_close("loss", loss, loss32.item<double>(), 1e-6);
    expect_close("d logit_scale", scale.grad(), scale32.grad().item<double>(), 1e-6);
    // The gradients differ only by their final rounding to bfloat16 (8 bits: 2^-8 relative).
    expect_close("d image", image.grad(), to_matrix(image32.grad()), std::ldexp(1.0, -8));
  }
}

TEST_CASE("infonce: gradients only where asked, none under no_grad", "[losses]") {
  torch::manual_seed(7);
  const torch::Tensor image0 = random_embeddings(9, 8);
  const torch::Tensor text0 = random_embeddings(9, 8);
  const double logit_scale = 2.0;
  const auto want = infonce_oracle(to_matrix(image0), to_matrix(text0), to_matrix(image0),
                                   to_matrix(text0), 0, logit_scale);
  for (const auto& impl : implementations(4)) {
    INFO(impl.name);
    {
      // Only the temperature learns (frozen towers).
      const torch::Tensor scale = scalar(logit_scale).requires_grad_();
      impl.one(image0, text0, scale).backward();
      expect_close("d logit_scale", scale.grad(), want.d_logit_scale, kFloat64Tol);
    }
    {
      // Only the text tower learns (LiT: locked image tower), fixed temperature.
      const torch::Tensor text = text0.clone().requires_grad_();
      impl.one(image0, text, scalar(logit_scale)).backward();
      expect_close("d text", text.grad(), add(want.d_text_local, want.d_text_all), kFloat64Tol);
    }
    {
      torch::NoGradGuard no_grad;
      const torch::Tensor image = image0.clone().requires_grad_();
      const torch::Tensor loss = impl.one(image, text0, scalar(logit_scale));
      CHECK_FALSE(loss.requires_grad());
      expect_close("loss", loss, want.loss, kFloat64Tol);
    }
  }
}

TEST_CASE("infonce argument checks name the argument and its shape", "[losses]") {
  const auto x = torch::randn({4, 8});
  const auto big = torch::randn({10, 8});
  const auto s = torch::tensor(2.0f);
  for (const auto& impl : implementations(4)) {
    INFO(impl.name);
    using Catch::Matchers::Contains;
    CHECK_THROWS_WITH(impl.gathered(x, torch::randn({4, 7}), big, big, 0, s),
                      Contains("text_local must be [n, D] = [4, 8]") && Contains("[4, 7]"));
    CHECK_THROWS_WITH(impl.gathered(x, x, torch::randn({10, 7}), big, 0, s),
                      Contains("image_all must be [M, D] with D = 8") && Contains("[10, 7]"));
    CHECK_THROWS_WITH(impl.gathered(x, x, big, torch::randn({9, 8}), 0, s),
                      Contains("text_all must be [M, D] = [10, 8] like image_all"));
    CHECK_THROWS_WITH(impl.gathered(torch::randn({8}), x, big, big, 0, s),
                      Contains("image_local must be a 2-D [n, D] matrix, got [8] float32 cpu"));
    CHECK_THROWS_WITH(impl.gathered(x, x, big, big, 7, s),
                      Contains("offset 7 puts the n = 4 local rows outside the M = 10 rows"));
    CHECK_THROWS_WITH(impl.gathered(x, x, big, big, -1, s), Contains("offset -1"));
    CHECK_THROWS_WITH(impl.gathered(big, big, x, x, 0, s),
                      Contains("more rows (n = 10) than the gathered image_all (M = 4)"));
    CHECK_THROWS_WITH(
        impl.gathered(x, x.to(torch::kFloat64), big, big, 0, s),
        Contains("text_local must have image_local's dtype and device (float32 cpu)"));
    CHECK_THROWS_WITH(impl.gathered(x, x, big, big, 0, torch::tensor({2.0f})),
                      Contains("logit_scale must be a 0-dim tensor") && Contains("[1] float32"));
    CHECK_THROWS_WITH(impl.gathered(x.to(torch::kLong), x.to(torch::kLong), big, big, 0, s),
                      Contains("image_local must be float32, float64, bfloat16 or float16"));
    CHECK_THROWS_AS(impl.gathered(x, x, big, big, 0, s.to(torch::kLong)), Error);
  }
  CHECK_THROWS_WITH(infonce_loss_tiled(x, x, x, x, 0, s, 0), Catch::Contains("tile_size"));
}

TEST_CASE("infonce handles non-contiguous inputs", "[losses]") {
  torch::manual_seed(8);
  // Transposed storage: rows are strided.
  const torch::Tensor image0 = random_embeddings(16, 11).t().contiguous().t();
  const torch::Tensor text0 = random_embeddings(11, 16).t();
  CHECK_FALSE(text0.is_contiguous());
  const auto want = infonce_oracle(to_matrix(image0), to_matrix(text0), to_matrix(image0),
                                   to_matrix(text0), 0, 1.5);
  for (const auto& impl : implementations(5)) {
    INFO(impl.name);
    const torch::Tensor scale = scalar(1.5).requires_grad_();
    const torch::Tensor loss = impl.one(image0, text0, scale);
    loss.backward();
    expect_close("loss", loss, want.loss, kFloat64Tol);
    expect_close("d logit_scale", scale.grad(), want.d_logit_scale, kFloat64Tol);
  }
}

TEST_CASE("the gathered form with the batch as both local and all rows is the one-process loss",
          "[losses]") {
  // The form is the caller's choice: passing the same tensors (or clones) to the gathered form
  // takes the general path and must still give the one-process loss, and gradients summed over
  // the local and the gathered uses.
  torch::manual_seed(9);
  const torch::Tensor image0 = random_embeddings(11, 8);
  const torch::Tensor text0 = random_embeddings(11, 8);
  for (const auto& impl : implementations(4)) {
    for (bool clones : {false, true}) {
      INFO(impl.name << (clones ? " (clones as all rows)" : " (the same tensors)"));
      const torch::Tensor image = image0.clone().requires_grad_();
      const torch::Tensor text = text0.clone().requires_grad_();
      const torch::Tensor scale = scalar(1.7).requires_grad_();
      const torch::Tensor one = impl.one(image, text, scale);
      const auto one_grads = torch::autograd::grad({one}, {image, text, scale});
      const torch::Tensor all_image = clones ? image.clone() : image;
      const torch::Tensor all_text = clones ? text.clone() : text;
      const torch::Tensor gathered = impl.gathered(image, text, all_image, all_text, 0, scale);
      const auto grads = torch::autograd::grad({gathered}, {image, text, scale});
      expect_close("loss", gathered, one.item<double>(), kFloat64Tol);
      expect_close("d image", grads[0], to_matrix(one_grads[0]), kFloat64Tol);
      expect_close("d text", grads[1], to_matrix(one_grads[1]), kFloat64Tol);
      expect_close("d logit_scale", grads[2], one_grads[2].item<double>(), kFloat64Tol);
    }
  }
}

}  // namespace
}  // namespace duet::losses
