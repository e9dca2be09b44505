#pragma once
// The pre-norm residual Transformer both towers share, named as OpenAI's CLIP state dict names
// it (under a tower's `transformer.`):
//   resblocks.N.attn.{in_proj_weight, in_proj_bias, out_proj.weight, out_proj.bias}
//   resblocks.N.ln_1.{weight, bias}, resblocks.N.ln_2.{weight, bias}
//   resblocks.N.mlp.c_fc.{weight, bias}, resblocks.N.mlp.c_proj.{weight, bias}
//   resblocks.N.ls_1.gamma, resblocks.N.ls_2.gamma   (LayerScale, only when ls_init > 0)
// A block computes x + ls_1(attn(ln_1(x))), then x + ls_2(mlp(ln_2(x))); activations are
// batch-first [B, N, W] throughout.
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <string>

#include "common/error.h"
#include "config/config.h"
#include "models/attention.h"

namespace duet::models {

// kGelu: exact (erf) GELU, as torch.nn.GELU; kGeluTanh: its tanh approximation, as big_vision's
// SigLIP (HF "gelu_pytorch_tanh"); kQuickGelu: x * sigmoid(1.702 x), OpenAI CLIP's.
using config::Activation;

// What one tower's Transformer is made of (from model.vision.* or model.text.*).
struct TransformerOptions {
  int64_t width = 0;
  int64_t layers = 0;
  int64_t heads = 0;
  int64_t mlp_width = 0;  // hidden units of each MLP: int(width * mlp_ratio), as OpenCLIP
  Activation activation = Activation::kGelu;
  double ls_init = 0.0;  // LayerScale initial gain; 0 leaves LayerScale out
  bool grad_checkpointing = false;
  AttentionKernel attention = AttentionKernel::kFused;
};

// The Transformer options of a tower config (config::VisionConfig or config::TextConfig, which
// share these keys); `key` ("model.vision", "model.text") names them in config errors.
template <class TowerConfig>
TransformerOptions tower_transformer_options(const TowerConfig& config, const std::string& key,
                                             AttentionKernel attention) {
  if (config.width <= 0 || config.heads <= 0 || config.width % config.heads != 0) {
    fail(ErrorKind::kConfig, "{0}.width ({1}) must be divisible by {0}.heads ({2})", key,
         config.width, config.heads);
  }
  if (config.layers <= 0 || config.mlp_ratio <= 0.0) {
    fail(ErrorKind::kConfig, "{0}.layers ({1}) and {0}.mlp_ratio ({2}) must be > 0", key,
         config.layers, config.mlp_ratio);
  }
  TransformerOptions options;
  options.width = config.width;
  options.layers = config.layers;
  options.heads = config.heads;
  options.mlp_width = static_cast<int64_t>(static_cast<double>(config.width) * config.mlp_ratio);
  options.activation = config.act;
  options.ls_init = config.ls_init;
  options.grad_checkpointing = config.grad_checkpointing;
  options.attention = attention;
  return options;
}

// OpenCLIP's init for the blocks of a tower: the attention input projection with std W^-0.5,
// the residual-branch outputs (out_proj, c_proj) with W^-0.5 (2 layers)^-0.5 so the residual
// stream's variance stays O(1) with depth, c_fc with (2W)^-0.5.
struct InitStd {
  double attn;
  double proj;
  double fc;
};
InitStd init_std(int64_t width, int64_t layers);

class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(int64_t width, int64_t hidden, Activation activation);
  torch::Tensor forward(const torch::Tensor& x);  // [..., W] -> [..., W]

  torch::nn::Linear c_fc{nullptr};    // W -> hidden
  torch::nn::Linear c_proj{nullptr};  // hidden -> W

 private:
  Activation activation_;
};
TORCH_MODULE(Mlp);

// Per-channel learnable gain on a residual branch (CaiT's LayerScale, OpenCLIP's ls_1/ls_2).
class LayerScaleImpl : public torch::nn::Module {
 public:
  LayerScaleImpl(int64_t width, double init);
  torch::Tensor forward(const torch::Tensor& x) { return x * gamma; }

  torch::Tensor gamma;  // [W]
};
TORCH_MODULE(LayerScale);

class ResidualAttentionBlockImpl : public torch::nn::Module {
 public:
  explicit ResidualAttentionBlockImpl(const TransformerOptions& options);

  torch::Tensor forward(const torch::Tensor& x, bool causal);  // [B, N, W] -> [B, N, W]

  // Re-initialises the weights with OpenCLIP's standard deviations.
  void init_weights(const InitStd& std);

  MultiheadAttention attn{nullptr};
  torch::nn::LayerNorm ln_1{nullptr};
  Mlp mlp{nullptr};
  torch::nn::LayerNorm ln_2{nullptr};
  LayerScale ls_1{nullptr};  // null when LayerScale is off
  LayerScale ls_2{nullptr};
};
TORCH_MODULE(ResidualAttentionBlock);

class TransformerImpl : public torch::nn::Module {
 public:
  explicit TransformerImpl(const TransformerOptions& options);

  // x [B, N, W] -> [B, N, W]. With grad_checkpointing and grad mode on, each block keeps only
  // its input and recomputes its activations in backward.
  torch::Tensor forward(torch::Tensor x, bool causal);

  // Re-initialises every block's weights as OpenCLIP does for this width and depth.
  void init_weights();

  const TransformerOptions& options() const { return options_; }

  torch::nn::ModuleList resblocks{nullptr};

 private:
  TransformerOptions options_;
};
TORCH_MODULE(Transformer);

// LayerNorm with OpenCLIP's epsilon over the last dimension of size `width`.
torch::nn::LayerNorm make_layer_norm(int64_t width);

}  // namespace duet::models
