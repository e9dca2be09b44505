#pragma once
// The text tower. Parameter names are OpenAI CLIP's, which keeps them at the top level of the
// model (ClipModel adopts these parts under the same names, as OpenCLIP's CLIP does):
//   token_embedding.weight [V, W]
//   positional_embedding [L, W]
//   transformer.resblocks.N.*   see transformer.h
//   ln_final.{weight, bias}
//   text_projection [W, E]      pooled @ text_projection
//   text_projection_bias [E]    added after it, only with proj_bias (SigLIP's text head)
// Pooling takes the token at the first end-of-text id of each row (CLIP; with OpenAI's vocab
// the EOT id is the largest, so this equals OpenAI's argmax) or at the last position (SigLIP,
// whose tokenizer pads to the full context). Padding is never masked: under the causal mask the
// pooled EOT token cannot see it, and SigLIP trains with it visible.
#include <torch/nn/module.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <cstdint>

#include "config/config.h"
#include "models/attention.h"
#include "models/transformer.h"
#include "text/tokenizer.h"

namespace duet::models {

using config::TextPool;

class TextTransformerImpl : public torch::nn::Module {
 public:
  // Throws a config Error when model.text.vocab_size differs from the tokenizer's vocabulary,
  // when eot pooling has no valid EOT id, or when the shapes do not fit together.
  TextTransformerImpl(const config::TextConfig& config, const text::TokenizerInfo& tokenizer,
                      int64_t embed_dim, AttentionKernel attention);

  // tokens [B, L] int64, ids in [0, V) -> [B, E], not normalised. Bad shapes or dtypes throw an
  // Error naming `tokens`; so do bad ids or a row without EOT (eot pooling) in CPU tokens.
  // Tokens on a GPU get the shape checks only: checking their values would make the host wait
  // for the device in every step; callers check them on the host before the copy (the trainer's
  // DeviceFeeder does).
  torch::Tensor forward(const torch::Tensor& tokens);

  // Every check, on their own; the value checks read the tokens on the host (free for CPU
  // tensors, a synchronisation for GPU ones).
  void check_tokens(const torch::Tensor& tokens) const;

  // Position pooled in each row: [B] int64.
  torch::Tensor pool_index(const torch::Tensor& tokens) const;

  int64_t context_length() const { return context_length_; }
  int64_t vocab_size() const { return vocab_size_; }
  int64_t eot_id() const { return eot_id_; }
  bool causal() const { return causal_; }
  TextPool pool() const { return pool_; }

  torch::nn::Embedding token_embedding{nullptr};
  torch::Tensor positional_embedding;  // [L, W]
  Transformer transformer{nullptr};
  torch::nn::LayerNorm ln_final{nullptr};
  torch::Tensor text_projection;       // [W, E]
  torch::Tensor text_projection_bias;  // [E]; undefined without proj_bias

 private:
  void init_parameters();
  void check_token_shape(const torch::Tensor& tokens) const;

  int64_t context_length_;
  int64_t vocab_size_;
  int64_t width_;
  int64_t eot_id_;
  bool causal_;
  TextPool pool_;
};
TORCH_MODULE(TextTransformer);

}  // namespace duet::models
