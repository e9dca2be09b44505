#pragma once
// The image tower: a Vision Transformer as OpenAI CLIP's, with SigLIP's attention pooling and
// layout as options. Parameter names (under `visual.` in ClipModel) are OpenAI's:
//   conv1.weight [W, 3, P, P]            patchify; conv1.bias [W] only with patch_bias
//   class_embedding [W]                  only with class_token
//   positional_embedding [C + G*G, W]    G = image_size / patch_size, C = 1 with a class token
//                                        (row 0 is then its position), else 0
//   ln_pre.{weight, bias}                only with ln_pre
//   transformer.resblocks.N.*            see transformer.h
//   ln_post.{weight, bias}
//   proj [W, E]                          pooled @ proj; no bias; only with proj (else W == E)
// and, with pool: attention only (SigLIP's MAP head; HF SiglipMultiheadAttentionPoolingHead
// maps probe -> head.probe, attn.* -> head.attention.*, ln -> head.layernorm,
// mlp.c_fc/c_proj -> head.mlp.fc1/fc2):
//   attn_pool.probe [1, 1, W]
//   attn_pool.attn.{in_proj_weight [3W, W], in_proj_bias [3W], out_proj.weight, out_proj.bias}
//   attn_pool.ln.{weight, bias}
//   attn_pool.mlp.c_fc.{weight, bias}, attn_pool.mlp.c_proj.{weight, bias}
//
// Pooling always follows ln_post over all tokens: `class` takes the class token, `mean`
// averages the G*G patch tokens (OpenCLIP's "avg"), `attention` lets the learned probe attend to
// every token and adds an MLP with a residual. CLIP's layout (the default) has a class token,
// ln_pre, a bias-free patch embedding and proj; SigLIP's (big_vision, transformers'
// SiglipVisionModel) has no class token, no ln_pre, a patch bias and no proj.
#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <cstdint>

#include "config/config.h"
#include "models/attention.h"
#include "models/transformer.h"

namespace duet::models {

using config::VisionPool;

// SigLIP's multihead attention pooling ("MAP"): a learned probe attends to the tokens, then
// probe + mlp(ln(probe)).
class AttentionPoolImpl : public torch::nn::Module {
 public:
  explicit AttentionPoolImpl(const TransformerOptions& options);

  torch::Tensor forward(const torch::Tensor& x);  // [B, N, W] -> [B, W]

  torch::Tensor probe;  // [1, 1, W]
  MultiheadAttention attn{nullptr};
  torch::nn::LayerNorm ln{nullptr};
  Mlp mlp{nullptr};
};
TORCH_MODULE(AttentionPool);

class VisionTransformerImpl : public torch::nn::Module {
 public:
  // Throws a config Error naming the model.vision key when the shapes do not fit together.
  VisionTransformerImpl(const config::VisionConfig& config, int64_t embed_dim,
                        AttentionKernel attention);

  // images [B, 3, S, S] floating point (any float dtype; cast to the parameters' dtype)
  // -> [B, E], not normalised. Bad shapes or dtypes throw an Error naming `images`.
  torch::Tensor forward(const torch::Tensor& images);

  // Throws unless images is [B, 3, S, S] floating point with S = image_size.
  void check_images(const torch::Tensor& images) const;

  // Randomly keeps a (1 - patch_dropout) share of the patch tokens of each sample, and always
  // the class token when there is one: x [B, C + T, W] -> [B, C + keep, W]. Identity in eval
  // mode or when 0.
  torch::Tensor patch_dropout(const torch::Tensor& x) const;

  int64_t image_size() const { return image_size_; }
  int64_t patch_size() const { return patch_size_; }
  int64_t grid_size() const { return image_size_ / patch_size_; }
  VisionPool pool() const { return pool_; }
  bool has_class_token() const { return class_tokens_ == 1; }

  torch::nn::Conv2d conv1{nullptr};
  torch::Tensor class_embedding;         // [W]; undefined without class_token
  torch::Tensor positional_embedding;    // [C + G*G, W]
  torch::nn::LayerNorm ln_pre{nullptr};  // null without ln_pre
  Transformer transformer{nullptr};
  torch::nn::LayerNorm ln_post{nullptr};
  AttentionPool attn_pool{nullptr};  // null unless pool is attention
  torch::Tensor proj;                // [W, E]; undefined without proj

 private:
  void init_parameters();

  int64_t image_size_;
  int64_t patch_size_;
  int64_t width_;
  VisionPool pool_;
  int64_t class_tokens_;  // C: 1 with a class token, else 0
  double patch_dropout_;
};
TORCH_MODULE(VisionTransformer);

}  // namespace duet::models
