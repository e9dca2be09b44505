// Multi-head attention: packed q/k/v projection, fused or explicit scaled dot-product, output
// projection. Invariant: both kernels see the same [B, H, N, D] tensors, so switching
// model.attention changes speed and memory, never the function.
#include "models/attention.h"

#include <torch/torch.h>

#include <cmath>
#include <limits>

#include "common/error.h"
#include "common/torch_compat.h"

namespace duet::models {

AttentionKernel resolve_attention_kernel(config::AttentionImpl choice) {
  switch (choice) {
    case config::AttentionImpl::kExplicit:
      return AttentionKernel::kExplicit;
    case config::AttentionImpl::kFused:
#if DUET_TORCH_HAS_SDPA
      return AttentionKernel::kFused;
#else
      fail(ErrorKind::kConfig,
           "model.attention: 'fused' needs at::scaled_dot_product_attention, which LibTorch {} "
           "lacks; use 'auto' or 'explicit'",
           TORCH_VERSION);
#endif
    case config::AttentionImpl::kAuto:
      break;
  }
  return DUET_TORCH_HAS_SDPA ? AttentionKernel::kFused : AttentionKernel::kExplicit;
}

const char* attention_kernel_name(AttentionKernel kernel) {
  return kernel == AttentionKernel::kFused ? "fused" : "explicit";
}

torch::Tensor scaled_dot_product_attention(const torch::Tensor& q, const torch::Tensor& k,
                                           const torch::Tensor& v, bool causal,
                                           AttentionKernel kernel) {
#if DUET_TORCH_HAS_SDPA
  if (kernel == AttentionKernel::kFused) {
    return at::scaled_dot_product_attention(q, k, v, /*attn_mask=*/{}, /*dropout_p=*/0.0, causal);
  }
#endif
  const double scale = 1.0 / std::sqrt(static_cast<double>(q.size(-1)));
  torch::Tensor scores = torch::matmul(q, k.transpose(-2, -1)) * scale;  // [B, H, Nq, Nk]
  if (causal) {
    // True above the diagonal: query i may not see key j > i.
    torch::Tensor future =
        torch::ones({q.size(-2), k.size(-2)}, q.options().dtype(torch::kBool)).triu(1);
    scores = scores.masked_fill(future, -std::numeric_limits<double>::infinity());
  }
  return torch::matmul(torch::softmax(scores, -1), v);  // [B, H, Nq, D]
}

MultiheadAttentionImpl::MultiheadAttentionImpl(int64_t width, int64_t heads, AttentionKernel kernel)
    : width_(width), heads_(heads), kernel_(kernel) {
  DUET_CHECK(heads > 0 && width % heads == 0,
             "attention: width ({}) must be divisible by heads ({})", width, heads);
  in_proj_weight = register_parameter("in_proj_weight", torch::empty({3 * width, width}));
  in_proj_bias = register_parameter("in_proj_bias", torch::zeros({3 * width}));
  out_proj = register_module("out_proj", torch::nn::Linear(width, width));
  // torch.nn.MultiheadAttention's defaults; the towers re-initialise the weights as OpenCLIP does.
  torch::NoGradGuard no_grad;
  torch::nn::init::xavier_uniform_(in_proj_weight);
  out_proj->bias.zero_();
}

torch::Tensor MultiheadAttentionImpl::split_heads(const torch::Tensor& x) const {
  return x.view({x.size(0), x.size(1), heads_, width_ / heads_}).transpose(1, 2);
}

torch::Tensor MultiheadAttentionImpl::merge_heads(const torch::Tensor& x) {
  torch::Tensor merged = x.transpose(1, 2).reshape({x.size(0), x.size(2), width_});
  return out_proj(merged);
}

torch::Tensor MultiheadAttentionImpl::forward(const torch::Tensor& x, bool causal) {
  // One GEMM for q, k and v: [B, N, 3W] split into three [B, N, W].
  std::vector<torch::Tensor> qkv = torch::linear(x, in_proj_weight, in_proj_bias).chunk(3, -1);
  torch::Tensor attended = scaled_dot_product_attention(split_heads(qkv[0]), split_heads(qkv[1]),
                                                        split_heads(qkv[2]), causal, kernel_);
  return merge_heads(attended);
}

torch::Tensor MultiheadAttentionImpl::cross(const torch::Tensor& query,
                                            const torch::Tensor& key_value) {
  // Rows [0, W) of the packed projection make queries, rows [W, 3W) keys and values.
  torch::Tensor q =
      torch::linear(query, in_proj_weight.narrow(0, 0, width_), in_proj_bias.narrow(0, 0, width_));
  std::vector<torch::Tensor> kv =
      torch::linear(key_value, in_proj_weight.narrow(0, width_, 2 * width_),
                    in_proj_bias.narrow(0, width_, 2 * width_))
          .chunk(2, -1);
  torch::Tensor attended = scaled_dot_product_attention(split_heads(q), split_heads(kv[0]),
                                                        split_heads(kv[1]), false, kernel_);
  return merge_heads(attended);
}

}  // namespace duet::models
