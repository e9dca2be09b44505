// The dispatch: which implementation config.implementation selects on which device, the
// 'fused' error while no CUDA kernels are built, and the contrastive_loss front end.
#include <cmath>

// LibTorch before Catch2: c10 defines a CHECK macro that Catch2's must replace.
#include <torch/torch.h>

#include <catch2/catch.hpp>

#include "common/error.h"
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

TEST_CASE("select_implementation picks by config and device", "[losses]") {
  const torch::Device cpu(torch::kCPU);
  const torch::Device cuda(torch::kCUDA, 0);  // only the device type is inspected
  CHECK(select_implementation(loss_config("clip", "auto"), cpu) == LossPath::kTiled);
  CHECK(select_implementation(loss_config("clip", "tiled"), cpu) == LossPath::kTiled);
  CHECK(select_implementation(loss_config("clip", "reference"), cpu) == LossPath::kReference);
  CHECK(select_implementation(loss_config("siglip", "reference"), cuda) == LossPath::kReference);
  CHECK_FALSE(fused_kernels_available());
  // Without the fused kernels, auto on CUDA takes the tiled functions (ATen ops run anywhere).
  CHECK(select_implementation(loss_config("clip", "auto"), cuda) == LossPath::kTiled);

  for (const torch::Device& device : {cpu, cuda}) {
    try {
      select_implementation(loss_config("clip", "fused"), device);
      FAIL("'fused' must throw while the CUDA kernels are not built");
    } catch (const Error& e) {
      CHECK(e.kind() == ErrorKind::kConfig);
      CHECK_THAT(e.what(), Contains("loss.implementation 'fused' needs the CUDA kernels, which "
                                    "this build does not have"));
    }
  }
}

TEST_CASE("contrastive_loss runs the configured loss and implementation", "[losses]") {
  torch::manual_seed(21);
  const torch::Tensor image = testing::random_embeddings(10, 8);
  const torch::Tensor text = testing::random_embeddings(10, 8);
  const torch::Tensor scale = torch::tensor(std::log(1 / 0.07), torch::kFloat64);
  const torch::Tensor bias = torch::tensor(-10.0, torch::kFloat64);
  const auto batch = ContrastiveBatch::single_process(image, text);

  const double clip_want =
      infonce_loss_reference(image, text, image, text, 0, scale).item<double>();
  const double siglip_want = siglip_loss_reference(image, text, 0, scale, bias).item<double>();
  for (const char* implementation : {"auto", "reference", "tiled"}) {
    INFO(implementation);
    CHECK(contrastive_loss(batch, scale, torch::Tensor(), loss_config("clip", implementation))
              .item<double>() == Approx(clip_want).epsilon(1e-12));
    CHECK(contrastive_loss(batch, scale, bias, loss_config("siglip", implementation))
              .item<double>() == Approx(siglip_want).epsilon(1e-12));
    CHECK(infonce_loss(image, text, scale, loss_config("clip", implementation)).item<double>() ==
          Approx(clip_want).epsilon(1e-12));
    CHECK(siglip_loss(image, text, scale, bias, loss_config("siglip", implementation))
              .item<double>() == Approx(siglip_want).epsilon(1e-12));
  }
  // The two losses differ, so the type really selects.
  CHECK(std::abs(clip_want - siglip_want) > 1e-3);

  // A rank's view: rows 4..6 of the batch against all of it.
  ContrastiveBatch rank;
  rank.image_local = image.narrow(0, 4, 3);
  rank.text_local = text.narrow(0, 4, 3);
  rank.image_all = image;
  rank.text_all = text;
  rank.offset = 4;
  CHECK(
      contrastive_loss(rank, scale, torch::Tensor(), loss_config("clip", "tiled")).item<double>() ==
      Approx(infonce_loss_reference(rank.image_local, rank.text_local, image, text, 4, scale)
                 .item<double>())
          .epsilon(1e-12));

  CHECK_THROWS_WITH(contrastive_loss(batch, scale, bias, loss_config("clip", "auto")),
                    Contains("loss.type 'clip' takes no logit_bias"));
  CHECK_THROWS_WITH(contrastive_loss(batch, scale, torch::Tensor(), loss_config("siglip", "auto")),
                    Contains("loss.type 'siglip' needs logit_bias"));
  CHECK_THROWS_WITH(contrastive_loss(batch, scale, bias, loss_config("siglip", "fused")),
                    Contains("needs the CUDA kernels"));
}

}  // namespace
}  // namespace duet::losses
