// The dispatch: which path loss.implementation selects for which device and dtype, what the
// contrastive_loss front end actually ran (losses::path_of reads it off the autograd graph), the
// explicit one-process form, and the errors where a choice cannot run. The fused kernels are
// exercised for real only on a CUDA device ([cuda], skipped visibly without one); their numerics
// are tested on the host execution layer in tests/kernels.
#include <cmath>

// LibTorch before Catch2: c10 defines a CHECK macro that Catch2's must replace.
#include <torch/torch.h>

#include <catch2/catch.hpp>

#include "common/device_test_util.h"
#include "common/error.h"
#include "common/test_util.h"
#include "losses/contrastive_loss.h"
#include "losses/implementation.h"
#include "losses/infonce.h"
#include "losses/loss_oracle.h"
#include "losses/siglip.h"

namespace duet::losses {
namespace {

using Catch::Matchers::Contains;

config::LossConfig loss_config(const std::string& type, const std::string& implementation,
                               int64_t tile_size = 4) {
  config::LossConfig c;
  c.type = config::parse<config::LossType>(type).value();
  c.implementation = config::parse<config::LossImplementation>(implementation).value();
  c.tile_size = tile_size;
  return c;
}

std::string what_is_thrown(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::kConfig);
    return e.what();
  }
  return "(nothing thrown)";
}

TEST_CASE("select_implementation picks by config, device and dtype", "[losses]") {
  const torch::Device cpu(torch::kCPU);
  const torch::Device cuda(torch::kCUDA, 0);  // a device value: nothing runs on it here
  const bool fused = fused_kernels_available();
  CHECK(select_implementation(loss_config("clip", "auto"), cpu, torch::kFloat32) ==
        LossPath::kTiled);
  CHECK(select_implementation(loss_config("clip", "tiled"), cuda, torch::kFloat32) ==
        LossPath::kTiled);
  CHECK(select_implementation(loss_config("siglip", "reference"), cuda, torch::kBFloat16) ==
        LossPath::kReference);
  // auto on CUDA: the fused kernels where this build has them and the dtype suits them.
  for (auto dtype : {torch::kFloat32, torch::kBFloat16, torch::kFloat16}) {
    CHECK(select_implementation(loss_config("clip", "auto"), cuda, dtype) ==
          (fused ? LossPath::kFused : LossPath::kTiled));
  }
  CHECK(select_implementation(loss_config("clip", "auto"), cuda, torch::kFloat64) ==
        LossPath::kTiled);

  const std::string on_cpu = what_is_thrown(
      [&] { select_implementation(loss_config("clip", "fused"), cpu, torch::kFloat32); });
  const std::string float64 = what_is_thrown(
      [&] { select_implementation(loss_config("clip", "fused"), cuda, torch::kFloat64); });
  if (fused) {
    CHECK(select_implementation(loss_config("siglip", "fused"), cuda, torch::kBFloat16) ==
          LossPath::kFused);
    CHECK_THAT(on_cpu, Contains("runs on CUDA devices only") && Contains("cpu"));
    CHECK_THAT(float64, Contains("takes float32, bfloat16 or float16") && Contains("float64"));
  } else {
    CHECK_THAT(on_cpu, Contains("needs the CUDA kernels, which this build does not have"));
    CHECK_THAT(float64, Contains("needs the CUDA kernels, which this build does not have"));
  }
}

TEST_CASE("contrastive_loss runs the path it selects, in the form the batch states", "[losses]") {
  torch::manual_seed(21);
  const torch::Tensor image = testing::random_embeddings(10, 8).requires_grad_();
  const torch::Tensor text = testing::random_embeddings(10, 8).requires_grad_();
  const torch::Tensor scale = torch::tensor(std::log(1 / 0.07), torch::kFloat64);
  const torch::Tensor bias = torch::tensor(-10.0, torch::kFloat64);
  const auto batch = ContrastiveBatch::single_process(image, text);
  CHECK(batch.one_process);

  const double clip_want = infonce_loss_reference(image, text, scale).item<double>();
  const double siglip_want = siglip_loss_reference(image, text, 0, scale, bias).item<double>();
  struct Expect {
    const char* implementation;
    LossPath path;
  };
  for (const Expect& e : {Expect{"auto", LossPath::kTiled}, Expect{"tiled", LossPath::kTiled},
                          Expect{"reference", LossPath::kReference}}) {
    INFO(e.implementation);
    const torch::Tensor clip =
        contrastive_loss(batch, scale, torch::Tensor(), loss_config("clip", e.implementation));
    const torch::Tensor siglip =
        contrastive_loss(batch, scale, bias, loss_config("siglip", e.implementation));
    CHECK(path_of(clip) == e.path);
    CHECK(path_of(siglip) == e.path);
    CHECK(clip.item<double>() == Approx(clip_want).epsilon(1e-12));
    CHECK(siglip.item<double>() == Approx(siglip_want).epsilon(1e-12));
  }
  // The type selects the loss: InfoNCE and SigLIP differ.
  CHECK(std::abs(clip_want - siglip_want) > 1e-3);
  // Without a graph there is no node to read.
  {
    torch::NoGradGuard no_grad;
    CHECK_FALSE(
        path_of(contrastive_loss(batch, scale, torch::Tensor(), loss_config("clip", "tiled")))
            .has_value());
  }

  // A rank's view: rows 4..6 against all of them, the gathered form whatever the tensors are.
  ContrastiveBatch rank;
  rank.image_local = image.narrow(0, 4, 3);
  rank.text_local = text.narrow(0, 4, 3);
  rank.image_all = image;
  rank.text_all = text;
  rank.offset = 4;
  CHECK_FALSE(rank.one_process);
  const torch::Tensor ranked =
      contrastive_loss(rank, scale, torch::Tensor(), loss_config("clip", "tiled"));
  CHECK(path_of(ranked) == LossPath::kTiled);
  CHECK(ranked.item<double>() ==
        Approx(infonce_loss_reference(rank.image_local, rank.text_local, image, text, 4, scale)
                   .item<double>())
            .epsilon(1e-12));

  CHECK_THROWS_WITH(contrastive_loss(batch, scale, bias, loss_config("clip", "auto")),
                    Contains("loss.type 'clip' takes no logit_bias"));
  CHECK_THROWS_WITH(contrastive_loss(batch, scale, torch::Tensor(), loss_config("siglip", "auto")),
                    Contains("loss.type 'siglip' needs logit_bias"));
  CHECK_THROWS_WITH(contrastive_loss(batch, scale, bias, loss_config("siglip", "fused")),
                    Contains("loss.implementation 'fused'"));
}

TEST_CASE("on a CUDA device auto runs the fused kernels and matches the reference",
          "[losses][cuda]") {
  DUET_REQUIRE_CUDA_DEVICE();  // without one, the fused path is tested on the host layer
  REQUIRE(fused_kernels_available());
  torch::manual_seed(22);
  const auto options = torch::TensorOptions().device(torch::kCUDA).dtype(torch::kFloat32);
  const torch::Tensor image = testing::random_embeddings(300, 64).to(options).requires_grad_();
  const torch::Tensor text = testing::random_embeddings(300, 64).to(options).requires_grad_();
  const torch::Tensor scale = torch::tensor(std::log(1 / 0.07), options).requires_grad_();
  const torch::Tensor bias = torch::tensor(-10.0, options).requires_grad_();
  const auto batch = ContrastiveBatch::single_process(image, text);
  for (const char* type : {"clip", "siglip"}) {
    INFO(type);
    const bool siglip = std::string(type) == "siglip";
    const torch::Tensor b = siglip ? bias : torch::Tensor();
    const torch::Tensor fused = contrastive_loss(batch, scale, b, loss_config(type, "auto"));
    CHECK(path_of(fused) == LossPath::kFused);
    const auto fused_grads = torch::autograd::grad({fused}, {image, text, scale});
    const torch::Tensor ref = contrastive_loss(batch, scale, b, loss_config(type, "reference"));
    const auto ref_grads = torch::autograd::grad({ref}, {image, text, scale});
    // 3×TF32 products, fp32 sums: as close as two fp32 implementations get (D·u·t per logit).
    CHECK(fused.item<double>() == Approx(ref.item<double>()).epsilon(1e-4));
    for (size_t k = 0; k < fused_grads.size(); ++k) {
      const double scale_k = ref_grads[k].abs().max().item<double>();
      CHECK((fused_grads[k] - ref_grads[k]).abs().max().item<double>() <= 1e-3 * scale_k + 1e-7);
    }
  }
}

}  // namespace
}  // namespace duet::losses
