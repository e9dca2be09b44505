#pragma once
// Multi-head attention with OpenAI CLIP's packed parameter layout, and the kernel choice behind
// it: LibTorch's fused at::scaled_dot_product_attention where the linked LibTorch has it
// (DUET_TORCH_HAS_SDPA), or the explicit softmax(Q K^T / sqrt(d)) V. Both compute the same
// function (tests hold them equal in float64, forward and backward); the fused one never
// materialises the [B, H, N, N] score matrix on backends with a flash kernel.
//
// Parameter names follow torch.nn.MultiheadAttention as OpenAI's state dict has them:
//   in_proj_weight [3W, W] (rows: q, k, v), in_proj_bias [3W], out_proj.{weight [W, W], bias [W]}
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <string>

#include "config/config.h"

namespace duet::models {

enum class AttentionKernel {
  kFused,     // at::scaled_dot_product_attention
  kExplicit,  // softmax(Q K^T / sqrt(d)) V with plain ATen ops
};

// Resolves model.attention. 'fused' without SDPA in the linked LibTorch is a config Error naming
// model.attention.
AttentionKernel resolve_attention_kernel(config::AttentionImpl choice);

// "fused" or "explicit".
const char* attention_kernel_name(AttentionKernel kernel);

// Scaled dot-product attention over heads. q [B, H, Nq, D], k and v [B, H, Nk, D] -> [B, H, Nq, D].
// `causal` masks key j > query i (self-attention, Nq == Nk).
torch::Tensor scaled_dot_product_attention(const torch::Tensor& q, const torch::Tensor& k,
                                           const torch::Tensor& v, bool causal,
                                           AttentionKernel kernel);

class MultiheadAttentionImpl : public torch::nn::Module {
 public:
  MultiheadAttentionImpl(int64_t width, int64_t heads, AttentionKernel kernel);

  // Self-attention: x [B, N, W] -> [B, N, W].
  torch::Tensor forward(const torch::Tensor& x, bool causal);

  // Cross-attention (attention pooling): queries [B, Nq, W] attend to key_value [B, Nk, W];
  // returns [B, Nq, W].
  torch::Tensor cross(const torch::Tensor& query, const torch::Tensor& key_value);

  torch::Tensor in_proj_weight;  // [3W, W]
  torch::Tensor in_proj_bias;    // [3W]
  torch::nn::Linear out_proj{nullptr};

 private:
  // [B, N, W] -> [B, H, N, W/H]
  torch::Tensor split_heads(const torch::Tensor& x) const;
  // [B, H, N, W/H] -> [B, N, W], then out_proj
  torch::Tensor merge_heads(const torch::Tensor& x);

  int64_t width_;
  int64_t heads_;
  AttentionKernel kernel_;
};
TORCH_MODULE(MultiheadAttention);

}  // namespace duet::models
