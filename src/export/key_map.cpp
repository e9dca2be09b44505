// Name maps between duet and transformers / OpenCLIP (see key_map.h). transformers' names follow
// its CLIP and SigLIP modeling files and conversion scripts (convert_clip_original_pytorch_to_hf,
// convert_siglip_to_hf): embeddings.{class_embedding, patch_embedding, position_embedding},
// pre_layrnorm (sic), encoder.layers.N.{self_attn.{q,k,v,out}_proj, layer_norm1, mlp.fc1,
// mlp.fc2, layer_norm2}, post_layernorm, head.* (SigLIP), final_layer_norm,
// visual_projection / text_projection (CLIP) or text_model.head (SigLIP).
#include "export/key_map.h"

#include <fmt/format.h>

#include <optional>
#include <set>

#include "common/error.h"

namespace duet::export_ {
namespace {

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

// "a.b.c" after `prefix`, or nullopt.
std::optional<std::string> after(const std::string& s, const std::string& prefix) {
  if (!starts_with(s, prefix)) {
    return std::nullopt;
  }
  return s.substr(prefix.size());
}

// The transformers names of one residual block's parameter (`rest` follows "resblocks.N.") under
// `layer` ("vision_model.encoder.layers.N."), or nullopt.
std::optional<KeyRule> hf_block_rule(const std::string& duet, const std::string& rest,
                                     const std::string& layer) {
  KeyRule rule{duet, {}, Transform::kCopy};
  if (rest == "attn.in_proj_weight" || rest == "attn.in_proj_bias") {
    const std::string kind = rest == "attn.in_proj_weight" ? "weight" : "bias";
    for (const char* p : {"q", "k", "v"}) {
      rule.targets.push_back(fmt::format("{}self_attn.{}_proj.{}", layer, p, kind));
    }
    rule.transform = Transform::kSplit3;
    return rule;
  }
  const std::pair<const char*, const char*> parts[] = {{"attn.out_proj.", "self_attn.out_proj."},
                                                       {"ln_1.", "layer_norm1."},
                                                       {"ln_2.", "layer_norm2."},
                                                       {"mlp.c_fc.", "mlp.fc1."},
                                                       {"mlp.c_proj.", "mlp.fc2."}};
  for (const auto& [from, to] : parts) {
    if (auto tail = after(rest, from)) {
      rule.targets.push_back(layer + to + *tail);
      return rule;
    }
  }
  return std::nullopt;
}

// "transformer.resblocks.N.rest" -> (N, rest).
std::optional<std::pair<std::string, std::string>> split_block(const std::string& name) {
  auto tail = after(name, "transformer.resblocks.");
  if (!tail) {
    return std::nullopt;
  }
  const size_t dot = tail->find('.');
  if (dot == std::string::npos) {
    return std::nullopt;
  }
  return std::make_pair(tail->substr(0, dot), tail->substr(dot + 1));
}

std::optional<KeyRule> hf_rule(const std::string& name, HfModel model) {
  const bool siglip = model == HfModel::kSiglip;
  auto one = [&name](std::string target, Transform t = Transform::kCopy) {
    return KeyRule{name, {std::move(target)}, t};
  };
  if (auto v = after(name, "visual.")) {
    const std::string& rest = *v;
    if (rest == "class_embedding") {
      return one("vision_model.embeddings.class_embedding");
    }
    if (rest == "positional_embedding") {
      return one("vision_model.embeddings.position_embedding.weight");
    }
    if (rest == "proj") {
      return one("visual_projection.weight", Transform::kTranspose);
    }
    if (auto t = after(rest, "conv1.")) {
      return one("vision_model.embeddings.patch_embedding." + *t);
    }
    if (auto t = after(rest, "ln_pre.")) {
      return one("vision_model.pre_layrnorm." + *t);
    }
    if (auto t = after(rest, "ln_post.")) {
      return one("vision_model.post_layernorm." + *t);
    }
    if (auto block = split_block(rest)) {
      return hf_block_rule(name, block->second,
                           "vision_model.encoder.layers." + block->first + ".");
    }
    if (rest == "attn_pool.probe") {
      return one("vision_model.head.probe");
    }
    if (auto t = after(rest, "attn_pool.attn.")) {
      return one("vision_model.head.attention." + *t);
    }
    if (auto t = after(rest, "attn_pool.ln.")) {
      return one("vision_model.head.layernorm." + *t);
    }
    if (auto t = after(rest, "attn_pool.mlp.c_fc.")) {
      return one("vision_model.head.mlp.fc1." + *t);
    }
    if (auto t = after(rest, "attn_pool.mlp.c_proj.")) {
      return one("vision_model.head.mlp.fc2." + *t);
    }
    return std::nullopt;
  }
  if (auto t = after(name, "token_embedding.")) {
    return one("text_model.embeddings.token_embedding." + *t);
  }
  if (name == "positional_embedding") {
    return one("text_model.embeddings.position_embedding.weight");
  }
  if (auto block = split_block(name)) {
    return hf_block_rule(name, block->second, "text_model.encoder.layers." + block->first + ".");
  }
  if (auto t = after(name, "ln_final.")) {
    return one("text_model.final_layer_norm." + *t);
  }
  if (name == "text_projection") {
    return one(siglip ? "text_model.head.weight" : "text_projection.weight", Transform::kTranspose);
  }
  if (name == "text_projection_bias" && siglip) {
    return one("text_model.head.bias");
  }
  if (name == "logit_scale") {
    return one("logit_scale", siglip ? Transform::kScalarTo1d : Transform::kCopy);
  }
  if (name == "logit_bias" && siglip) {
    return one("logit_bias", Transform::kScalarTo1d);
  }
  return std::nullopt;
}

std::optional<KeyRule> open_clip_rule(const std::string& name) {
  if (name == "visual.attn_pool" || starts_with(name, "visual.attn_pool.")) {
    return std::nullopt;  // OpenCLIP's attentional pooler is CoCa's, not SigLIP's MAP head
  }
  if (name == "text_projection_bias") {
    return KeyRule{name, {"text_projection.bias"}, Transform::kCopy};
  }
  return KeyRule{name, {name}, Transform::kCopy};
}

}  // namespace

Format parse_format(const std::string& name, const std::string& what) {
  if (name == "duet" || name == "safetensors") {
    return Format::kDuet;
  }
  if (name == "open_clip") {
    return Format::kOpenClip;
  }
  if (name == "hf") {
    return Format::kHf;
  }
  fail(ErrorKind::kUsage, "{}: expected hf, open_clip or safetensors, got '{}'", what, name);
}

const char* format_name(Format format) {
  switch (format) {
    case Format::kDuet:
      return "duet";
    case Format::kOpenClip:
      return "open_clip";
    case Format::kHf:
      return "hf";
  }
  return "?";
}

HfModel hf_model(const config::ModelConfig& config) {
  return config.logit_bias ? HfModel::kSiglip : HfModel::kClip;
}

const char* hf_model_name(HfModel model) {
  return model == HfModel::kSiglip ? "SiglipModel" : "CLIPModel";
}

std::vector<KeyRule> key_map(const std::vector<std::string>& duet_names, Format format,
                             const config::ModelConfig& config) {
  std::vector<KeyRule> rules;
  std::set<std::string> targets;
  for (const auto& name : duet_names) {
    std::optional<KeyRule> rule;
    switch (format) {
      case Format::kDuet:
        rule = KeyRule{name, {name}, Transform::kCopy};
        break;
      case Format::kOpenClip:
        rule = open_clip_rule(name);
        if (rule && name == "text_projection" && config.text.proj_bias) {
          rule = KeyRule{name, {"text_projection.weight"}, Transform::kTranspose};
        }
        break;
      case Format::kHf:
        rule = hf_rule(name, hf_model(config));
        break;
    }
    if (!rule) {
      fail("parameter '{}' has no counterpart in the {} format{}", name, format_name(format),
           format == Format::kHf ? fmt::format(" ({})", hf_model_name(hf_model(config))) : "");
    }
    for (const auto& target : rule->targets) {
      // Two parameters landing on one name would be a bug in the rules above.
      if (!targets.insert(target).second) {
        fail("internal: two parameters map to '{}' in the {} format", target, format_name(format));
      }
    }
    rules.push_back(std::move(*rule));
  }
  return rules;
}

std::vector<std::string> unsupported(const config::ModelConfig& config, Format format,
                                     const text::TokenizerInfo& tokenizer) {
  std::vector<std::string> out;
  const auto& v = config.vision;
  const auto& t = config.text;
  if (format == Format::kDuet) {
    return out;
  }
  auto need = [&out](bool ok, std::string why) {
    if (!ok) {
      out.push_back(std::move(why));
    }
  };
  if (format == Format::kOpenClip) {
    need(v.class_token,
         "model.vision.class_token: false: OpenCLIP's VisionTransformer always has a class token "
         "(its SigLIP models use timm image towers); export --format hf instead");
    need(!v.patch_bias, "model.vision.patch_bias: true: OpenCLIP's conv1 has no bias");
    need(v.proj, "model.vision.proj: false: OpenCLIP's VisionTransformer always projects");
    need(v.pool != config::VisionPool::kAttention,
         "model.vision.pool 'attention': OpenCLIP's attentional pooler is CoCa's, not SigLIP's "
         "MAP head; export --format hf instead");
    need(v.act == t.act ||
             (v.act != config::Activation::kQuickGelu && t.act != config::Activation::kQuickGelu),
         fmt::format("model.vision.act '{}' and model.text.act '{}': OpenCLIP's quick_gelu flag "
                     "covers both towers",
                     config::name(v.act), config::name(t.act)));
    need(t.pool != config::TextPool::kEot ||
             (tokenizer.eot_id >= 0 && tokenizer.eot_id < t.vocab_size),
         "model.text.pool 'eot' needs the tokenizer's end-of-text id");
    return out;
  }

  // transformers
  need(v.ls_init == 0.0 && t.ls_init == 0.0,
       fmt::format("LayerScale (model.vision.ls_init {}, model.text.ls_init {}): {} has none",
                   v.ls_init, t.ls_init, hf_model_name(hf_model(config))));
  if (hf_model(config) == HfModel::kClip) {
    need(v.class_token && v.pool == config::VisionPool::kClass,
         fmt::format("model.vision.pool '{}': CLIPModel pools the class token; use pool: class "
                     "(or model.logit_bias with SigLIP's layout for SiglipModel)",
                     config::name(v.pool)));
    need(v.ln_pre, "model.vision.ln_pre: false: CLIPModel has pre_layrnorm");
    need(!v.patch_bias, "model.vision.patch_bias: true: CLIPModel's patch embedding has no bias");
    need(v.proj, "model.vision.proj: false: CLIPModel always has visual_projection");
    need(t.causal && t.pool == config::TextPool::kEot,
         fmt::format("model.text.causal {} / pool '{}': CLIPModel's text tower is causal and "
                     "pools at the end-of-text token",
                     t.causal, config::name(t.pool)));
    need(!t.proj_bias, "model.text.proj_bias: true: CLIPModel's text_projection has no bias");
    need(tokenizer.eot_id != 2,
         "the tokenizer's end-of-text id is 2, which transformers' CLIP treats as a legacy "
         "config and pools at the largest id instead; retrain the tokenizer with another eos id");
  } else {
    need(v.pool == config::VisionPool::kAttention,
         fmt::format("model.vision.pool '{}': SiglipModel pools with its attention head; use "
                     "pool: attention",
                     config::name(v.pool)));
    need(!v.class_token, "model.vision.class_token: true: SiglipModel has no class token");
    need(!v.ln_pre, "model.vision.ln_pre: true: SiglipModel has no pre-LayerNorm");
    need(v.patch_bias, "model.vision.patch_bias: false: SiglipModel's patch embedding has a bias");
    need(!v.proj && v.width == config.embed_dim,
         "model.vision.proj: true: SiglipModel's image embedding is the attention head's output "
         "(set proj: false and model.embed_dim = model.vision.width)");
    need(!t.causal && t.pool == config::TextPool::kLast,
         fmt::format("model.text.causal {} / pool '{}': SiglipModel's text tower is "
                     "bidirectional and pools the last position",
                     t.causal, config::name(t.pool)));
    need(t.proj_bias, "model.text.proj_bias: false: SiglipModel's text head has a bias");
  }
  return out;
}

std::vector<int64_t> target_shape(const std::vector<int64_t>& duet_shape, Transform transform) {
  switch (transform) {
    case Transform::kCopy:
      return duet_shape;
    case Transform::kTranspose:
      if (duet_shape.size() == 2) {
        return {duet_shape[1], duet_shape[0]};
      }
      return duet_shape;
    case Transform::kSplit3: {
      std::vector<int64_t> shape = duet_shape;
      if (!shape.empty()) {
        shape[0] /= 3;
      }
      return shape;
    }
    case Transform::kScalarTo1d:
      return {1};
  }
  return duet_shape;
}

}  // namespace duet::export_
