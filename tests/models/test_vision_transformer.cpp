// The image tower: shapes, the three poolings against step-by-step recomputations, patch
// dropout, and the bad-input errors.
#include <torch/torch.h>

#include <catch2/catch.hpp>
#include <set>

#include "model_test_util.h"
#include "models/vision_transformer.h"

namespace duet::models {
namespace {

using test::max_abs_diff;

VisionTransformer make_vit(const config::VisionConfig& config, int64_t embed_dim = 24) {
  VisionTransformer vit(config, embed_dim, AttentionKernel::kExplicit);
  vit->to(torch::kDouble);
  vit->eval();
  return vit;
}

// The tokens after ln_post, [B, 1 + G*G, W], computed step by step from the parameters.
torch::Tensor tokens_after_ln_post(VisionTransformerImpl& vit, const torch::Tensor& images) {
  torch::Tensor x = vit.conv1(images).flatten(2).transpose(1, 2);
  torch::Tensor cls = vit.class_embedding.view({1, 1, -1}).expand({images.size(0), 1, -1});
  x = torch::cat({cls, x}, 1) + vit.positional_embedding;
  return vit.ln_post(vit.transformer(vit.ln_pre(x), false));
}

TEST_CASE("ViT forward shapes and parameter shapes", "[models][vision]") {
  torch::manual_seed(10);
  config::VisionConfig config = test::tiny_config().vision;
  VisionTransformer vit(config, 24, AttentionKernel::kExplicit);
  CHECK(vit->grid_size() == 4);
  CHECK(vit->conv1->weight.sizes() == torch::IntArrayRef({32, 3, 4, 4}));
  CHECK_FALSE(vit->conv1->bias.defined());
  CHECK(vit->class_embedding.sizes() == torch::IntArrayRef({32}));
  CHECK(vit->positional_embedding.sizes() == torch::IntArrayRef({17, 32}));
  CHECK(vit->proj.sizes() == torch::IntArrayRef({32, 24}));
  CHECK_FALSE(vit->attn_pool);
  for (int64_t batch : {1, 3}) {
    torch::Tensor out = vit(torch::randn({batch, 3, 16, 16}));
    CHECK(out.sizes() == torch::IntArrayRef({batch, 24}));
    CHECK(out.scalar_type() == torch::kFloat);
  }
  // Double images into a float model are cast, not rejected.
  CHECK(vit(torch::randn({2, 3, 16, 16}, torch::kDouble)).scalar_type() == torch::kFloat);
}

TEST_CASE("class and mean pooling take token 0 and the patch-token mean", "[models][vision]") {
  torch::manual_seed(11);
  config::VisionConfig config = test::tiny_config().vision;
  torch::Tensor images = torch::randn({3, 3, 16, 16}, torch::kDouble);

  config.pool = config::VisionPool::kClass;
  VisionTransformer by_class = make_vit(config);
  torch::Tensor x = tokens_after_ln_post(*by_class, images);
  CHECK(max_abs_diff(by_class(images), torch::matmul(x.select(1, 0), by_class->proj)) < 1e-12);

  config.pool = config::VisionPool::kMean;
  VisionTransformer by_mean = make_vit(config);
  test::copy_parameters(*by_mean, *by_class);
  torch::Tensor patch_mean = x.narrow(1, 1, 16).mean(1);
  CHECK(max_abs_diff(by_mean(images), torch::matmul(patch_mean, by_mean->proj)) < 1e-12);
  CHECK(max_abs_diff(by_mean(images), by_class(images)) > 1e-3);
}

TEST_CASE("attention pooling: a learned probe attends to every token, then MLP + residual",
          "[models][vision]") {
  torch::manual_seed(12);
  config::VisionConfig config = test::tiny_config().vision;
  config.pool = config::VisionPool::kAttention;
  VisionTransformer vit = make_vit(config);
  REQUIRE(vit->attn_pool);
  auto& pool = *vit->attn_pool;
  CHECK(pool.probe.sizes() == torch::IntArrayRef({1, 1, 32}));
  CHECK(pool.attn->in_proj_weight.sizes() == torch::IntArrayRef({96, 32}));
  {
    torch::NoGradGuard no_grad;  // non-zero biases so that every term is exercised
    pool.attn->in_proj_bias.normal_();
    pool.attn->out_proj->bias.normal_();
  }
  torch::Tensor images = torch::randn({2, 3, 16, 16}, torch::kDouble);
  torch::Tensor x = tokens_after_ln_post(*vit, images);  // [B, 17, W]

  // Single-query multi-head attention written out head by head.
  const int64_t width = 32;
  const int64_t heads = 4;
  const int64_t d = width / heads;
  torch::Tensor w = pool.attn->in_proj_weight;
  torch::Tensor b = pool.attn->in_proj_bias;
  torch::Tensor q = torch::matmul(pool.probe.view({1, width}), w.narrow(0, 0, width).t()) +
                    b.narrow(0, 0, width);  // [1, W]
  torch::Tensor k = torch::matmul(x, w.narrow(0, width, width).t()) + b.narrow(0, width, width);
  torch::Tensor v =
      torch::matmul(x, w.narrow(0, 2 * width, width).t()) + b.narrow(0, 2 * width, width);
  std::vector<torch::Tensor> per_head;
  for (int64_t h = 0; h < heads; ++h) {
    torch::Tensor qh = q.narrow(1, h * d, d);  // [1, d]
    torch::Tensor kh = k.narrow(2, h * d, d);  // [B, 17, d]
    torch::Tensor vh = v.narrow(2, h * d, d);  // [B, 17, d]
    torch::Tensor weights = torch::softmax(
        torch::matmul(kh, qh.t()).squeeze(-1) / std::sqrt(static_cast<double>(d)), -1);  // [B, 17]
    per_head.push_back(torch::matmul(weights.unsqueeze(1), vh).squeeze(1));              // [B, d]
  }
  torch::Tensor attended = pool.attn->out_proj(torch::cat(per_head, 1));  // [B, W]
  torch::Tensor pooled = attended + pool.mlp(pool.ln(attended));
  CHECK(max_abs_diff(vit(images), torch::matmul(pooled, vit->proj)) < 1e-12);

  auto names = vit->named_parameters();
  for (const char* key :
       {"attn_pool.probe", "attn_pool.attn.in_proj_weight", "attn_pool.attn.in_proj_bias",
        "attn_pool.attn.out_proj.weight", "attn_pool.attn.out_proj.bias", "attn_pool.ln.weight",
        "attn_pool.ln.bias", "attn_pool.mlp.c_fc.weight", "attn_pool.mlp.c_fc.bias",
        "attn_pool.mlp.c_proj.weight", "attn_pool.mlp.c_proj.bias"}) {
    INFO(key);
    CHECK(names.contains(key));
  }
}

TEST_CASE("patch dropout keeps the class token and a random subset, in training only",
          "[models][vision]") {
  torch::manual_seed(13);
  config::VisionConfig config = test::tiny_config().vision;
  config.patch_dropout = 0.5;
  VisionTransformer vit = make_vit(config);

  // Token t of sample b holds the value 100 b + t in every channel, so kept tokens are visible.
  const int64_t batch = 4;
  torch::Tensor x = (torch::arange(17, torch::kDouble).view({1, 17, 1}) +
                     100 * torch::arange(batch, torch::kDouble).view({batch, 1, 1}))
                        .expand({batch, 17, 32})
                        .contiguous();
  CHECK(vit->patch_dropout(x).equal(x));  // eval mode: identity

  vit->train();
  torch::Tensor kept = vit->patch_dropout(x);
  REQUIRE(kept.sizes() == torch::IntArrayRef({batch, 1 + 8, 32}));  // int(16 * 0.5) = 8 patches
  std::set<std::vector<int64_t>> subsets;
  for (int64_t b = 0; b < batch; ++b) {
    CHECK(kept[b][0][0].item<double>() == 100.0 * b);  // the class token, first
    std::vector<int64_t> ids;
    for (int64_t t = 1; t <= 8; ++t) {
      const auto id = static_cast<int64_t>(kept[b][t][0].item<double>()) - 100 * b;
      CHECK(id >= 1);  // a patch token of this sample, never its class token
      CHECK(id <= 16);
      ids.push_back(id);
      CHECK(torch::all(kept[b][t] == kept[b][t][0]).item<bool>());
    }
    std::sort(ids.begin(), ids.end());
    CHECK(std::unique(ids.begin(), ids.end()) == ids.end());  // distinct patches
    subsets.insert(ids);
  }
  CHECK(subsets.size() > 1);  // drawn per sample

  // The whole tower runs on the shorter sequence in training and is deterministic in eval.
  torch::Tensor images = torch::randn({batch, 3, 16, 16}, torch::kDouble);
  CHECK(vit(images).sizes() == torch::IntArrayRef({batch, 24}));
  vit->eval();
  CHECK(max_abs_diff(vit(images), vit(images)) == 0.0);
  config.patch_dropout = 0.0;
  VisionTransformer no_dropout = make_vit(config);
  test::copy_parameters(*no_dropout, *vit);
  CHECK(max_abs_diff(vit(images), no_dropout(images)) == 0.0);
}

TEST_CASE("bad images name the argument, the expected and the actual shape", "[models][vision]") {
  VisionTransformer vit(test::tiny_config().vision, 24, AttentionKernel::kExplicit);
  const std::string expected = "images: expected [B, 3, 16, 16] float, got ";
  const std::vector<std::pair<torch::Tensor, std::string>> cases = {
      {torch::randn({8, 1, 16, 16}), "[8, 1, 16, 16] float32 cpu"},
      {torch::randn({8, 3, 28, 28}), "[8, 3, 28, 28] float32 cpu"},
      {torch::randn({8, 3, 16, 12}), "[8, 3, 16, 12] float32 cpu"},
      {torch::randn({3, 16, 16}), "[3, 16, 16] float32 cpu"},
      {torch::zeros({2, 3, 16, 16}, torch::kByte), "[2, 3, 16, 16] uint8 cpu"},
      {torch::Tensor(), "undefined"},
  };
  for (const auto& [images, got] : cases) {
    auto caught = test::catch_error([&] { vit(images); });
    REQUIRE(caught.thrown);
    CHECK(caught.kind == ErrorKind::kRuntime);
    CHECK(caught.message == expected + got);
  }
}

TEST_CASE("inconsistent vision configs are config errors naming the keys", "[models][vision]") {
  config::VisionConfig config = test::tiny_config().vision;
  config.patch_size = 5;
  auto caught =
      test::catch_error([&] { VisionTransformer(config, 24, AttentionKernel::kExplicit); });
  CHECK(caught.kind == ErrorKind::kConfig);
  CHECK_THAT(caught.message, Catch::Contains("model.vision.patch_size (5)"));

  config = test::tiny_config().vision;
  config.heads = 5;
  caught = test::catch_error([&] { VisionTransformer(config, 24, AttentionKernel::kExplicit); });
  CHECK(caught.kind == ErrorKind::kConfig);
  CHECK_THAT(caught.message, Catch::Contains("model.vision.heads (5)"));

  config = test::tiny_config().vision;
  config.class_token = false;  // pool stays "class"
  caught = test::catch_error([&] { VisionTransformer(config, 24, AttentionKernel::kExplicit); });
  CHECK(caught.kind == ErrorKind::kConfig);
  CHECK_THAT(caught.message, Catch::Contains("model.vision.class_token"));

  config = test::tiny_config().vision;
  config.proj = false;  // width 32, embed_dim 24
  caught = test::catch_error([&] { VisionTransformer(config, 24, AttentionKernel::kExplicit); });
  CHECK(caught.kind == ErrorKind::kConfig);
  CHECK_THAT(caught.message,
             Catch::Contains("model.vision.width (32)") && Catch::Contains("model.embed_dim (24)"));
}

TEST_CASE("SigLIP's layout: no class token, patch bias, no ln_pre, no projection",
          "[models][vision]") {
  torch::manual_seed(17);
  config::VisionConfig config = test::tiny_config().vision;
  config.class_token = false;
  config.patch_bias = true;
  config.ln_pre = false;
  config.proj = false;
  torch::Tensor images = torch::randn({3, 3, 16, 16}, torch::kDouble);
  for (const auto pool : {config::VisionPool::kMean, config::VisionPool::kAttention}) {
    INFO(config::name(pool));
    config.pool = pool;
    VisionTransformer vit = make_vit(config, /*embed_dim=*/32);
    CHECK_FALSE(vit->class_embedding.defined());
    CHECK_FALSE(vit->proj.defined());
    CHECK_FALSE(vit->ln_pre);
    CHECK_FALSE(vit->has_class_token());
    CHECK(vit->conv1->bias.sizes() == torch::IntArrayRef({32}));
    CHECK(vit->positional_embedding.sizes() == torch::IntArrayRef({16, 32}));
    std::set<std::string> names;
    for (const auto& item : vit->named_parameters()) {
      names.insert(item.key());
    }
    CHECK(names.count("conv1.bias") == 1);
    CHECK(names.count("class_embedding") == 0);
    CHECK(names.count("ln_pre.weight") == 0);
    CHECK(names.count("proj") == 0);

    // Step by step: patches + bias + positions, blocks, ln_post, then pooling with no projection.
    torch::Tensor x = vit->conv1(images).flatten(2).transpose(1, 2) + vit->positional_embedding;
    x = vit->ln_post(vit->transformer(x, false));
    torch::Tensor expected = pool == config::VisionPool::kMean ? x.mean(1) : vit->attn_pool(x);
    CHECK(max_abs_diff(vit(images), expected) < 1e-12);

    // Patch dropout keeps a subset of the patch tokens (there is no class token to keep).
    config.patch_dropout = 0.5;
    VisionTransformer dropping = make_vit(config, 32);
    dropping->train();
    torch::Tensor tokens = torch::arange(16, torch::kDouble).view({1, 16, 1}).expand({2, 16, 32});
    torch::Tensor kept = dropping->patch_dropout(tokens);
    CHECK(kept.sizes() == torch::IntArrayRef({2, 8, 32}));
    config.patch_dropout = 0.0;
  }
}

}  // namespace
}  // namespace duet::models
