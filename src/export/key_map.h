#pragma once
// How duet's parameter names (OpenAI's CLIP state-dict names, see models/clip_model.h) map to
// the names other tools use, and what each format cannot express. Torch-free: a map is a list
// of rules over names; state_dict.h applies them to tensors.
//
// Formats:
//   duet       the model's own names, unchanged
//   open_clip  OpenCLIP's CLIP (and OpenAI's build_model): duet's names, except that a text
//              projection with a bias is an nn.Linear (text_projection.{weight [E, W], bias})
//   hf         transformers' CLIPModel (model.logit_bias off) or SiglipModel (on): per-block
//              q/k/v projections split out of the packed in-projection, Linear projections
//              transposed, and SiglipModel's logit_scale/logit_bias of shape [1]
//
// Invariant (tested): for every model a format accepts, each duet parameter has exactly one
// rule, and no two rules produce the same target name.
#include <cstdint>
#include <string>
#include <vector>

#include "config/config.h"
#include "text/tokenizer.h"

namespace duet::export_ {

enum class Format { kDuet, kOpenClip, kHf };

// "duet", "open_clip", "hf"; anything else is a usage Error naming `what`.
Format parse_format(const std::string& name, const std::string& what);
const char* format_name(Format format);

// Which transformers class an hf export is: SiglipModel when the model has a logit bias.
enum class HfModel { kClip, kSiglip };
HfModel hf_model(const config::ModelConfig& config);
const char* hf_model_name(HfModel model);  // "CLIPModel" or "SiglipModel"

enum class Transform {
  kCopy,        // same shape
  kTranspose,   // duet [A, B] <-> target [B, A] (pooled @ proj vs nn.Linear's weight)
  kSplit3,      // duet [3W, ...] <-> three targets [W, ...] (packed q, k, v)
  kScalarTo1d,  // duet [] <-> target [1]
};

struct KeyRule {
  std::string duet;                  // the duet parameter
  std::vector<std::string> targets;  // one, or three for kSplit3 (q, k, v)
  Transform transform = Transform::kCopy;
};

// The rules for a model with these duet parameter names. Throws a runtime Error naming the
// parameter when one has no counterpart in the format (check unsupported() first for a
// message a user can act on).
std::vector<KeyRule> key_map(const std::vector<std::string>& duet_names, Format format,
                             const config::ModelConfig& config);

// Why the format cannot hold this model exactly: one line per feature, naming the config key
// and what to set; empty when it can. `tokenizer` matters for the text pooling (transformers'
// CLIP pools at eos_token_id, which must not be 2; see docs/export.md).
std::vector<std::string> unsupported(const config::ModelConfig& config, Format format,
                                     const text::TokenizerInfo& tokenizer);

// Target shape of `duet_shape` under `transform` (each of the three for kSplit3).
std::vector<int64_t> target_shape(const std::vector<int64_t>& duet_shape, Transform transform);

}  // namespace duet::export_
