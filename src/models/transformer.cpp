// Pre-norm residual attention blocks and the stack of them (see transformer.h for the names).
// Invariant: a block is a pure function of its input and parameters (no dropout, no RNG), which
// is what lets gradient checkpointing recompute it in backward.
#include "models/transformer.h"

#include <torch/torch.h>

#include <cmath>

#include "common/error.h"
#include "models/checkpoint.h"

namespace duet::models {

namespace {
constexpr double kLayerNormEps = 1e-5;  // torch.nn.LayerNorm's and OpenCLIP's default
}  // namespace

InitStd init_std(int64_t width, int64_t layers) {
  const double w = static_cast<double>(width);
  const double attn = std::pow(w, -0.5);
  return {attn, attn * std::pow(2.0 * static_cast<double>(layers), -0.5), std::pow(2.0 * w, -0.5)};
}

torch::nn::LayerNorm make_layer_norm(int64_t width) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({width}).eps(kLayerNormEps));
}

MlpImpl::MlpImpl(int64_t width, int64_t hidden, Activation activation) : activation_(activation) {
  c_fc = register_module("c_fc", torch::nn::Linear(width, hidden));
  c_proj = register_module("c_proj", torch::nn::Linear(hidden, width));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) {
  torch::Tensor h = c_fc(x);  // [..., hidden]
  switch (activation_) {
    case Activation::kGelu:
      h = torch::gelu(h);
      break;
    case Activation::kGeluTanh:
      h = torch::gelu(h, "tanh");
      break;
    case Activation::kQuickGelu:
      h = h * torch::sigmoid(1.702 * h);
      break;
  }
  return c_proj(h);
}

LayerScaleImpl::LayerScaleImpl(int64_t width, double init) {
  gamma = register_parameter("gamma", torch::full({width}, init));
}

ResidualAttentionBlockImpl::ResidualAttentionBlockImpl(const TransformerOptions& options) {
  // Registration order follows OpenAI's ResidualAttentionBlock (attn, ln_1, mlp, ln_2), so
  // named_parameters() lists keys in the order of its state dict.
  attn =
      register_module("attn", MultiheadAttention(options.width, options.heads, options.attention));
  ln_1 = register_module("ln_1", make_layer_norm(options.width));
  mlp = register_module("mlp", Mlp(options.width, options.mlp_width, options.activation));
  ln_2 = register_module("ln_2", make_layer_norm(options.width));
  if (options.ls_init > 0.0) {
    ls_1 = register_module("ls_1", LayerScale(options.width, options.ls_init));
    ls_2 = register_module("ls_2", LayerScale(options.width, options.ls_init));
  }
}

torch::Tensor ResidualAttentionBlockImpl::forward(const torch::Tensor& x, bool causal) {
  torch::Tensor branch = attn(ln_1(x), causal);  // [B, N, W]
  torch::Tensor y = x + (ls_1 ? ls_1(branch) : branch);
  branch = mlp(ln_2(y));
  return y + (ls_2 ? ls_2(branch) : branch);
}

void ResidualAttentionBlockImpl::init_weights(const InitStd& std) {
  torch::NoGradGuard no_grad;
  attn->in_proj_weight.normal_(0.0, std.attn);
  attn->out_proj->weight.normal_(0.0, std.proj);
  mlp->c_fc->weight.normal_(0.0, std.fc);
  mlp->c_proj->weight.normal_(0.0, std.proj);
}

TransformerImpl::TransformerImpl(const TransformerOptions& options) : options_(options) {
  DUET_CHECK(options.width % options.heads == 0,
             "transformer: width ({}) must be divisible by heads ({})", options.width,
             options.heads);
  resblocks = register_module("resblocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < options.layers; ++i) {
    resblocks->push_back(ResidualAttentionBlock(options));
  }
}

torch::Tensor TransformerImpl::forward(torch::Tensor x, bool causal) {
  const bool recompute = options_.grad_checkpointing && torch::GradMode::is_enabled();
  for (size_t i = 0; i < resblocks->size(); ++i) {
    auto block = resblocks->ptr<ResidualAttentionBlockImpl>(i);  // shared_ptr
    if (recompute) {
      // The closure owns the block, so the autograd graph keeps it alive until backward.
      x = checkpoint(
          [block, causal](const torch::Tensor& input) { return block->forward(input, causal); }, x,
          block->parameters());
    } else {
      x = block->forward(x, causal);
    }
  }
  return x;
}

void TransformerImpl::init_weights() {
  const InitStd std = init_std(options_.width, options_.layers);
  for (const auto& module : *resblocks) {
    module->as<ResidualAttentionBlockImpl>()->init_weights(std);
  }
}

}  // namespace duet::models
