// The image tower (see vision_transformer.h for names and pooling). Token layout in every
// activation: with a class token, index 0 is the class token and 1..T the patch tokens in
// row-major grid order; without one, 0..T-1 are the patch tokens (patch dropout keeps a random
// subset of the patch tokens, training only).
#include "models/vision_transformer.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "common/error.h"
#include "common/tensor_text.h"

namespace duet::models {
namespace {

constexpr int64_t kChannels = 3;

}  // namespace

AttentionPoolImpl::AttentionPoolImpl(const TransformerOptions& options) {
  probe = register_parameter("probe", torch::zeros({1, 1, options.width}));
  attn =
      register_module("attn", MultiheadAttention(options.width, options.heads, options.attention));
  ln = register_module("ln", make_layer_norm(options.width));
  mlp = register_module("mlp", Mlp(options.width, options.mlp_width, options.activation));
}

torch::Tensor AttentionPoolImpl::forward(const torch::Tensor& x) {
  torch::Tensor query = probe.to(x.dtype()).expand({x.size(0), 1, x.size(2)});  // [B, 1, W]
  torch::Tensor pooled = attn->cross(query, x);                                 // [B, 1, W]
  pooled = pooled + mlp(ln(pooled));
  return pooled.select(1, 0);  // [B, W]
}

VisionTransformerImpl::VisionTransformerImpl(const config::VisionConfig& config, int64_t embed_dim,
                                             AttentionKernel attention)
    : image_size_(config.image_size),
      patch_size_(config.patch_size),
      width_(config.width),
      pool_(config.pool),
      class_tokens_(config.class_token ? 1 : 0),
      patch_dropout_(config.patch_dropout) {
  if (config.patch_size <= 0 || config.image_size <= 0 ||
      config.image_size % config.patch_size != 0) {
    fail(ErrorKind::kConfig,
         "model.vision.image_size ({}) must be a positive multiple of model.vision.patch_size ({})",
         config.image_size, config.patch_size);
  }
  if (config.patch_dropout < 0.0 || config.patch_dropout >= 1.0) {
    fail(ErrorKind::kConfig, "model.vision.patch_dropout ({}) must lie in [0, 1)",
         config.patch_dropout);
  }
  if (embed_dim <= 0) {
    fail(ErrorKind::kConfig, "model.embed_dim ({}) must be > 0", embed_dim);
  }
  if (pool_ == VisionPool::kClass && !config.class_token) {
    fail(ErrorKind::kConfig,
         "model.vision.pool 'class' needs model.vision.class_token: true; use mean or attention "
         "pooling without a class token");
  }
  if (!config.proj && config.width != embed_dim) {
    fail(ErrorKind::kConfig,
         "model.vision.proj: false needs model.vision.width ({}) to equal model.embed_dim ({})",
         config.width, embed_dim);
  }
  const TransformerOptions options = tower_transformer_options(config, "model.vision", attention);
  const int64_t tokens = class_tokens_ + grid_size() * grid_size();

  // Registration order follows OpenAI's VisionTransformer: parameters, then submodules.
  if (config.class_token) {
    class_embedding = register_parameter("class_embedding", torch::empty({width_}));
  }
  positional_embedding = register_parameter("positional_embedding", torch::empty({tokens, width_}));
  if (config.proj) {
    proj = register_parameter("proj", torch::empty({width_, embed_dim}));
  }
  conv1 = register_module("conv1",
                          torch::nn::Conv2d(torch::nn::Conv2dOptions(kChannels, width_, patch_size_)
                                                .stride(patch_size_)
                                                .bias(config.patch_bias)));
  if (config.ln_pre) {
    ln_pre = register_module("ln_pre", make_layer_norm(width_));
  }
  transformer = register_module("transformer", Transformer(options));
  ln_post = register_module("ln_post", make_layer_norm(width_));
  if (pool_ == VisionPool::kAttention) {
    attn_pool = register_module("attn_pool", AttentionPool(options));
  }
  init_parameters();
}

void VisionTransformerImpl::init_parameters() {
  // OpenCLIP: the embeddings and the projection are N(0, W^-1); conv1 keeps PyTorch's default.
  const double scale = std::pow(static_cast<double>(width_), -0.5);
  torch::NoGradGuard no_grad;
  if (class_embedding.defined()) {
    class_embedding.normal_(0.0, scale);
  }
  positional_embedding.normal_(0.0, scale);
  if (proj.defined()) {
    proj.normal_(0.0, scale);
  }
  transformer->init_weights();
  if (attn_pool) {
    // The pooling head is initialised like one more block of this tower.
    const TransformerOptions& options = transformer->options();
    const InitStd std = init_std(options.width, options.layers);
    attn_pool->probe.normal_(0.0, scale);
    attn_pool->attn->in_proj_weight.normal_(0.0, std.attn);
    attn_pool->attn->out_proj->weight.normal_(0.0, std.proj);
    attn_pool->mlp->c_fc->weight.normal_(0.0, std.fc);
    attn_pool->mlp->c_proj->weight.normal_(0.0, std.proj);
  }
}

void VisionTransformerImpl::check_images(const torch::Tensor& images) const {
  const bool ok = images.defined() && images.dim() == 4 && images.size(1) == kChannels &&
                  images.size(2) == image_size_ && images.size(3) == image_size_ &&
                  images.is_floating_point();
  if (!ok) {
    fail("images: expected [B, {}, {}, {}] float, got {}", kChannels, image_size_, image_size_,
         describe(images));
  }
}

torch::Tensor VisionTransformerImpl::patch_dropout(const torch::Tensor& x) const {
  if (!is_training() || patch_dropout_ <= 0.0) {
    return x;
  }
  const int64_t batch = x.size(0);
  const int64_t patches = x.size(1) - class_tokens_;
  const int64_t keep = std::max<int64_t>(
      1, static_cast<int64_t>(static_cast<double>(patches) * (1.0 - patch_dropout_)));
  // As OpenCLIP's PatchDropout: the top-k of Gaussian noise is a uniform random subset per row.
  torch::Tensor noise = torch::randn({batch, patches}, x.options().dtype(torch::kFloat));
  torch::Tensor index = std::get<1>(noise.topk(keep, -1));  // [B, keep], in [0, T)
  torch::Tensor kept = x.narrow(1, class_tokens_, patches)
                           .gather(1, index.unsqueeze(-1).expand({batch, keep, x.size(2)}));
  if (class_tokens_ == 0) {
    return kept;  // [B, keep, W]
  }
  return torch::cat({x.narrow(1, 0, 1), kept}, 1);  // [B, 1 + keep, W]
}

torch::Tensor VisionTransformerImpl::forward(const torch::Tensor& images) {
  check_images(images);
  const int64_t batch = images.size(0);
  torch::Tensor x = conv1(images.to(conv1->weight.scalar_type()));  // [B, W, G, G]
  x = x.flatten(2).transpose(1, 2);                                 // [B, G*G, W]
  if (class_embedding.defined()) {
    torch::Tensor cls =
        class_embedding.to(x.dtype()).view({1, 1, width_}).expand({batch, 1, width_});
    x = torch::cat({cls, x}, 1);  // [B, 1 + G*G, W]
  }
  x = x + positional_embedding.to(x.dtype());  // [B, C + G*G, W]
  x = patch_dropout(x);                        // [B, C + keep, W]
  if (ln_pre) {
    x = ln_pre(x);
  }
  x = transformer(x, /*causal=*/false);
  x = ln_post(x);

  torch::Tensor pooled;  // [B, W]
  switch (pool_) {
    case VisionPool::kClass:
      pooled = x.select(1, 0);
      break;
    case VisionPool::kMean:
      pooled = x.narrow(1, class_tokens_, x.size(1) - class_tokens_).mean(1);
      break;
    case VisionPool::kAttention:
      pooled = attn_pool(x);
      break;
  }
  return proj.defined() ? torch::matmul(pooled, proj) : pooled;  // [B, E]
}

}  // namespace duet::models
