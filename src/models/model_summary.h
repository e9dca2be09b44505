#pragma once
// Torch-free facts about a configured model, for the CLI and logs: parameter counts per tower
// and the attention kernel actually used. Including this header does not pull in LibTorch.
#include <cstdint>
#include <string>

#include "config/config.h"
#include "text/tokenizer.h"

namespace duet::models {

struct ParameterCounts {
  int64_t image = 0;  // everything under visual.*
  int64_t text = 0;   // token_embedding, positional_embedding, transformer, ln_final,
                      // text_projection
  int64_t other = 0;  // logit_scale, logit_bias
  int64_t total = 0;  // image + text + other
};

struct ModelSummary {
  ParameterCounts parameters;
  std::string attention;  // the resolved kernel: "fused" or "explicit"
  int64_t vision_mlp_width = 0;
  int64_t text_mlp_width = 0;
};

// Builds the model (CPU, float32: about 4 bytes per parameter, briefly) and summarises it.
// Throws the config Errors the model's constructor throws.
ModelSummary summarize(const config::ModelConfig& config, const text::TokenizerInfo& tokenizer);

}  // namespace duet::models
