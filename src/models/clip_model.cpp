// ClipModel: both towers, the temperature and the SigLIP bias (see clip_model.h for the keys).
// Invariant: every parameter is registered exactly once, under its OpenAI name; the text
// tower's tensors are the very ones registered here, so `to()`, loading and the optimiser all
// reach them through this module.
#include "models/clip_model.h"

#include <torch/torch.h>

#include "common/error.h"
#include "common/logging.h"

namespace duet::models {

ClipModelImpl::ClipModelImpl(const config::ModelConfig& config,
                             const text::TokenizerInfo& tokenizer)
    : config_(config), attention_(resolve_attention_kernel(config.attention)) {
  visual =
      register_module("visual", VisionTransformer(config.vision, config.embed_dim, attention_));
  text_tower = TextTransformer(config.text, tokenizer, config.embed_dim, attention_);
  // OpenCLIP's CLIP adopts the text tower's parts the same way.
  register_module("token_embedding", text_tower->token_embedding);
  register_parameter("positional_embedding", text_tower->positional_embedding);
  register_module("transformer", text_tower->transformer);
  register_module("ln_final", text_tower->ln_final);
  register_parameter("text_projection", text_tower->text_projection);
  if (text_tower->text_projection_bias.defined()) {
    register_parameter("text_projection_bias", text_tower->text_projection_bias);
  }
  logit_scale = register_parameter("logit_scale", torch::full({}, config.init_logit_scale));
  if (config.logit_bias) {
    logit_bias = register_parameter("logit_bias", torch::full({}, config.init_logit_bias));
  }
  const ParameterCounts counts = count_parameters(*this);
  log::get("models")->debug("built {}: {} parameters (image {}, text {}), attention {}",
                            config.name.empty() ? "model" : config.name, counts.total, counts.image,
                            counts.text, attention_kernel_name(attention_));
}

torch::Tensor ClipModelImpl::encode_image(const torch::Tensor& images) {
  return torch::nn::functional::normalize(visual(images),
                                          torch::nn::functional::NormalizeFuncOptions().dim(-1));
}

torch::Tensor ClipModelImpl::encode_text(const torch::Tensor& tokens) {
  return torch::nn::functional::normalize(text_tower(tokens),
                                          torch::nn::functional::NormalizeFuncOptions().dim(-1));
}

void ClipModelImpl::clamp_logit_scale(double max_log_scale) {
  torch::NoGradGuard no_grad;
  logit_scale.clamp_(0.0, max_log_scale);
}

void ClipModelImpl::train(bool on) {
  torch::nn::Module::train(on);
  text_tower->train(on);
}

ParameterCounts count_parameters(const ClipModelImpl& model) {
  ParameterCounts counts;
  for (const auto& item : model.named_parameters()) {
    const int64_t n = item.value().numel();
    const std::string& key = item.key();
    if (key.rfind("visual.", 0) == 0) {
      counts.image += n;
    } else if (key == "logit_scale" || key == "logit_bias") {
      counts.other += n;
    } else {
      counts.text += n;
    }
    counts.total += n;
  }
  return counts;
}

ModelSummary summarize(const config::ModelConfig& config, const text::TokenizerInfo& tokenizer) {
  ClipModel model(config, tokenizer);
  ModelSummary summary;
  summary.parameters = count_parameters(*model);
  summary.attention = attention_kernel_name(model->attention());
  summary.vision_mlp_width = model->visual->transformer->options().mlp_width;
  summary.text_mlp_width = model->text_tower->transformer->options().mlp_width;
  return summary;
}

}  // namespace duet::models
