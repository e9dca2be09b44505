// The text tower (see text_transformer.h for names and pooling). Invariant: every input row
// is exactly context_length ids in [0, vocab); with eot pooling every row holds the EOT id.
// forward checks the values of CPU tokens; GPU tokens were checked on the host before their copy.
#include "models/text_transformer.h"

#include <torch/torch.h>

#include <cmath>

#include "common/error.h"
#include "common/tensor_text.h"

namespace duet::models {

TextTransformerImpl::TextTransformerImpl(const config::TextConfig& config,
                                         const text::TokenizerInfo& tokenizer, int64_t embed_dim,
                                         AttentionKernel attention)
    : context_length_(config.context_length),
      vocab_size_(config.vocab_size),
      width_(config.width),
      eot_id_(tokenizer.eot_id),
      causal_(config.causal),
      pool_(config.pool) {
  if (config.vocab_size != tokenizer.vocab_size) {
    fail(ErrorKind::kConfig,
         "model.text.vocab_size ({}) does not match the tokenizer's vocabulary ({}); set "
         "model.text.vocab_size: {}",
         config.vocab_size, tokenizer.vocab_size, tokenizer.vocab_size);
  }
  if (config.vocab_size <= 0 || config.context_length < 2) {
    fail(ErrorKind::kConfig,
         "model.text.vocab_size ({}) must be > 0 and model.text.context_length ({}) >= 2",
         config.vocab_size, config.context_length);
  }
  if (pool_ == TextPool::kEot && (eot_id_ < 0 || eot_id_ >= vocab_size_)) {
    fail(ErrorKind::kConfig,
         "model.text.pool 'eot' needs the tokenizer's end-of-text id in [0, {}), got {}",
         vocab_size_, eot_id_);
  }
  if (embed_dim <= 0) {
    fail(ErrorKind::kConfig, "model.embed_dim ({}) must be > 0", embed_dim);
  }
  const TransformerOptions options = tower_transformer_options(config, "model.text", attention);

  // Registration order follows OpenAI's CLIP text parts.
  token_embedding = register_module("token_embedding", torch::nn::Embedding(vocab_size_, width_));
  positional_embedding =
      register_parameter("positional_embedding", torch::empty({context_length_, width_}));
  transformer = register_module("transformer", Transformer(options));
  ln_final = register_module("ln_final", make_layer_norm(width_));
  text_projection = register_parameter("text_projection", torch::empty({width_, embed_dim}));
  if (config.proj_bias) {
    text_projection_bias = register_parameter("text_projection_bias", torch::zeros({embed_dim}));
  }
  init_parameters();
}

void TextTransformerImpl::init_parameters() {
  // OpenCLIP's CLIP.init_parameters for the text tower.
  torch::NoGradGuard no_grad;
  token_embedding->weight.normal_(0.0, 0.02);
  positional_embedding.normal_(0.0, 0.01);
  text_projection.normal_(0.0, std::pow(static_cast<double>(width_), -0.5));
  transformer->init_weights();
}

void TextTransformerImpl::check_token_shape(const torch::Tensor& tokens) const {
  if (!tokens.defined() || tokens.dim() != 2 || tokens.size(1) != context_length_ ||
      tokens.scalar_type() != torch::kLong) {
    fail("tokens: expected [B, {}] int64, got {}", context_length_, describe(tokens));
  }
}

void TextTransformerImpl::check_tokens(const torch::Tensor& tokens) const {
  check_token_shape(tokens);
  if (tokens.numel() == 0) {
    return;
  }
  // One host sync for the common (valid) case; the details only when something is wrong.
  torch::Tensor outside = (tokens < 0) | (tokens >= vocab_size_);
  if (outside.any().item<bool>()) {
    torch::Tensor where = outside.nonzero()[0].cpu();  // [2]: row, position
    const int64_t row = where[0].item<int64_t>();
    const int64_t position = where[1].item<int64_t>();
    fail("tokens: ids must lie in [0, {}) (model.text.vocab_size), got {} at row {}, position {}",
         vocab_size_, tokens[row][position].item<int64_t>(), row, position);
  }
  if (pool_ == TextPool::kEot) {
    torch::Tensor has_eot = (tokens == eot_id_).any(1);  // [B]
    if (!has_eot.all().item<bool>()) {
      const int64_t row = (~has_eot).nonzero()[0][0].item<int64_t>();
      fail(
          "tokens: row {} has no end-of-text id {}; model.text.pool 'eot' pools at the first "
          "one (tokenize with the model's tokenizer, which truncates keeping EOT)",
          row, eot_id_);
    }
  }
}

torch::Tensor TextTransformerImpl::pool_index(const torch::Tensor& tokens) const {
  if (pool_ == TextPool::kLast) {
    return torch::full({tokens.size(0)}, context_length_ - 1, tokens.options());
  }
  // argmax returns the first maximal index, so this is the first EOT of each row.
  return (tokens == eot_id_).to(torch::kInt).argmax(1);  // [B]
}

torch::Tensor TextTransformerImpl::forward(const torch::Tensor& tokens) {
  if (tokens.defined() && tokens.device().is_cpu()) {
    check_tokens(tokens);
  } else {
    check_token_shape(tokens);
  }
  torch::Tensor x = token_embedding(tokens) + positional_embedding;  // [B, L, W]
  x = transformer(x, causal_);
  x = ln_final(x);
  torch::Tensor rows = torch::arange(tokens.size(0), tokens.options());
  torch::Tensor pooled = x.index({rows, pool_index(tokens)});        // [B, W]
  torch::Tensor projected = torch::matmul(pooled, text_projection);  // [B, E]
  return text_projection_bias.defined() ? projected + text_projection_bias : projected;
}

}  // namespace duet::models
