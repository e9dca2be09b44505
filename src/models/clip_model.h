#pragma once
// The two-tower model CLIP and SigLIP share. Its state dict is OpenAI CLIP's layout, so export
// to OpenAI/OpenCLIP is the identity and to Hugging Face a key map:
//   visual.*                    the image tower (vision_transformer.h)
//   token_embedding.weight, positional_embedding, transformer.resblocks.N.*, ln_final.*,
//   text_projection[, text_projection_bias]
//                               the text tower's parts, at the top level (text_transformer.h)
//   logit_scale []              log of the inverse temperature
//   logit_bias []               SigLIP only (model.logit_bias)
// Both encoders return L2-normalised [B, E] embeddings; the losses apply exp(logit_scale) and
// logit_bias themselves.
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <cstdint>

#include "config/config.h"
#include "models/model_summary.h"
#include "models/text_transformer.h"
#include "models/vision_transformer.h"
#include "text/tokenizer.h"

namespace duet::models {

class ClipModelImpl : public torch::nn::Module {
 public:
  // Builds and initialises both towers from the global RNG (seed it first for reproducible
  // weights). Throws a config Error naming the key when the config and tokenizer disagree
  // (model.text.vocab_size against the tokenizer's vocabulary, ...).
  ClipModelImpl(const config::ModelConfig& config, const text::TokenizerInfo& tokenizer);

  // images [B, 3, S, S] float -> [B, E], unit L2 norm per row.
  torch::Tensor encode_image(const torch::Tensor& images);

  // tokens [B, L] int64 -> [B, E], unit L2 norm per row.
  torch::Tensor encode_text(const torch::Tensor& tokens);

  // Keeps logit_scale in [0, max_log_scale] (OpenCLIP clamps after every optimiser step).
  void clamp_logit_scale(double max_log_scale);

  // Also switches the text tower, whose parts are registered here rather than as a child.
  void train(bool on = true) override;

  const config::ModelConfig& config() const { return config_; }
  AttentionKernel attention() const { return attention_; }

  VisionTransformer visual{nullptr};
  // Not a registered child: its submodules and parameters are registered on this module under
  // their own names (OpenAI's top-level text keys) and shared with it.
  TextTransformer text_tower{nullptr};
  torch::Tensor logit_scale;  // [] (0-dim), log inverse temperature
  torch::Tensor logit_bias;   // [] when model.logit_bias, else undefined

 private:
  config::ModelConfig config_;
  AttentionKernel attention_;
};
TORCH_MODULE(ClipModel);

// Parameter counts of a built model, split by tower as model_summary.h describes.
ParameterCounts count_parameters(const ClipModelImpl& model);

}  // namespace duet::models
