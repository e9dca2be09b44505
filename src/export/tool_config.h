#pragma once
// The configuration files other tools read beside the weights, built from duet's config:
// transformers' config.json and preprocessor_config.json, its tokenizer files, and OpenCLIP's
// open_clip_config.json. Torch-free.
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "config/config.h"
#include "export/key_map.h"
#include "text/tokenizer.h"

namespace duet::export_ {

// config.json of a CLIPModel or SiglipModel (hf_model(config.model) decides) with the text and
// vision configs; `dtype` is the weights' dtype ("float32", ...).
nlohmann::json hf_model_config(const config::ModelConfig& model,
                               const text::TokenizerInfo& tokenizer, const std::string& dtype);

// preprocessor_config.json: a CLIPImageProcessor doing duet's evaluation transform (shorter side
// to image_size with bicubic resampling, centre crop, data.mean / data.std).
nlohmann::json hf_preprocessor_config(const config::Config& config);

// The tokenizer files transformers' tokenizer classes load, by file name, for the configured
// tokenizer: for CLIP BPE a CLIPTokenizer's vocab.json, merges.txt, tokenizer_config.json and
// special_tokens_map.json that give duet's ids up to the padding after EOT (transformers pads
// with <|endoftext|>, duet with 0; the embeddings do not depend on it); for SentencePiece a
// tokenizer.json (sentencepiece_json.h) with a PreTrainedTokenizerFast tokenizer_config.json and
// special_tokens_map.json. Empty with `why_not` set when the tokenizer cannot be expressed.
std::map<std::string, std::string> hf_tokenizer_files(const text::Tokenizer& tokenizer,
                                                      const config::Config& config,
                                                      std::string& why_not);

// open_clip_config.json: {"model_cfg": ..., "preprocess_cfg": ...} as OpenCLIP's hub and
// local-dir loaders read it.
nlohmann::json open_clip_config(const config::Config& config, const text::TokenizerInfo& tokenizer);

// transformers' name for an activation ("gelu_pytorch_tanh" for gelu_tanh).
std::string hf_activation(config::Activation act);

}  // namespace duet::export_
