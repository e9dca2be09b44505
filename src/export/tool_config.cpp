// transformers and OpenCLIP configuration files (see tool_config.h). Field names follow
// transformers' CLIPConfig/SiglipConfig, CLIPImageProcessor and CLIPTokenizer, and OpenCLIP's
// CLIPVisionCfg/CLIPTextCfg.
#include "export/tool_config.h"

#include <cstdint>

#include "common/error.h"
#include "export/sentencepiece_json.h"
#include "text/clip_bpe.h"
#include "text/sentencepiece_tokenizer.h"

namespace duet::export_ {
namespace {

constexpr double kLayerNormEps = 1e-5;  // duet's LayerNorm (models/transformer.h)

int64_t mlp_width(int64_t width, double ratio) {
  return static_cast<int64_t>(static_cast<double>(width) * ratio);
}

nlohmann::json act_kwargs(config::Activation act) {
  if (act == config::Activation::kGeluTanh) {
    return {{"approximate", "tanh"}};
  }
  return nullptr;
}

}  // namespace

std::string hf_activation(config::Activation act) {
  if (act == config::Activation::kGeluTanh) {
    return "gelu_pytorch_tanh";
  }
  return config::name(act);  // "gelu" and "quick_gelu" are transformers' names too
}

nlohmann::json hf_model_config(const config::ModelConfig& model,
                               const text::TokenizerInfo& tokenizer, const std::string& dtype) {
  const auto& v = model.vision;
  const auto& t = model.text;
  const bool siglip = hf_model(model) == HfModel::kSiglip;
  nlohmann::json text = {
      {"model_type", siglip ? "siglip_text_model" : "clip_text_model"},
      {"vocab_size", t.vocab_size},
      {"hidden_size", t.width},
      {"intermediate_size", mlp_width(t.width, t.mlp_ratio)},
      {"num_hidden_layers", t.layers},
      {"num_attention_heads", t.heads},
      {"max_position_embeddings", t.context_length},
      {"hidden_act", hf_activation(t.act)},
      {"layer_norm_eps", kLayerNormEps},
      {"attention_dropout", 0.0},
      {"pad_token_id", tokenizer.pad_id},
      {"eos_token_id", tokenizer.eot_id},
  };
  text["bos_token_id"] =
      tokenizer.sot_id >= 0 ? nlohmann::json(tokenizer.sot_id) : nlohmann::json(nullptr);
  nlohmann::json vision = {
      {"model_type", siglip ? "siglip_vision_model" : "clip_vision_model"},
      {"hidden_size", v.width},
      {"intermediate_size", mlp_width(v.width, v.mlp_ratio)},
      {"num_hidden_layers", v.layers},
      {"num_attention_heads", v.heads},
      {"num_channels", 3},
      {"image_size", v.image_size},
      {"patch_size", v.patch_size},
      {"hidden_act", hf_activation(v.act)},
      {"layer_norm_eps", kLayerNormEps},
      {"attention_dropout", 0.0},
  };
  nlohmann::json out = {{"architectures", {siglip ? "SiglipModel" : "CLIPModel"}},
                        {"model_type", siglip ? "siglip" : "clip"},
                        {"initializer_factor", 1.0},
                        {"torch_dtype", dtype}};
  if (siglip) {
    text["projection_size"] = model.embed_dim;
    vision["vision_use_head"] = true;
  } else {
    text["projection_dim"] = model.embed_dim;
    vision["projection_dim"] = model.embed_dim;
    out["projection_dim"] = model.embed_dim;
    out["logit_scale_init_value"] = model.init_logit_scale;
  }
  out["text_config"] = text;
  out["vision_config"] = vision;
  if (!model.name.empty()) {
    out["duet_model_name"] = model.name;
  }
  return out;
}

nlohmann::json hf_preprocessor_config(const config::Config& config) {
  const int64_t size = config.model.vision.image_size;
  return {{"image_processor_type", "CLIPImageProcessor"},
          {"processor_class",
           hf_model(config.model) == HfModel::kSiglip ? "SiglipProcessor" : "CLIPProcessor"},
          {"do_convert_rgb", true},
          {"do_resize", true},
          {"size", {{"shortest_edge", size}}},
          {"resample", 3},  // PIL.Image.BICUBIC
          {"do_center_crop", true},
          {"crop_size", {{"height", size}, {"width", size}}},
          {"do_rescale", true},
          {"rescale_factor", 1.0 / 255.0},
          {"do_normalize", true},
          {"image_mean", config.data.mean},
          {"image_std", config.data.stddev}};
}

namespace {

// tokenizer.json + PreTrainedTokenizerFast config for a SentencePiece model.
std::map<std::string, std::string> sentencepiece_files(const text::SentencePieceTokenizer& sp,
                                                       const config::Config& config,
                                                       std::string& why_not) {
  std::map<std::string, std::string> files;
  const text::TokenizerInfo info = sp.info();
  const SentencePieceModel model = parse_sentencepiece_model(sp.serialized_model());
  const std::string json = sentencepiece_tokenizer_json(model, info, why_not);
  if (json.empty()) {
    return files;
  }
  auto piece = [&](int64_t id) -> nlohmann::ordered_json {
    if (id < 0 || id >= static_cast<int64_t>(model.pieces.size())) {
      return nullptr;
    }
    return model.pieces[static_cast<size_t>(id)].piece;
  };
  // The pad piece must be a special one, or transformers would split it out of texts; duet's
  // own models pad with <pad> (id 0). Otherwise pad with EOT (padding after EOT only matters
  // to a bidirectional tower, which then sees different ids: noted in docs/export.md).
  const PieceType pad_type = model.pieces.at(static_cast<size_t>(info.pad_id)).type;
  const bool pad_special = pad_type == PieceType::kUnknown || pad_type == PieceType::kControl;
  const nlohmann::ordered_json pad = pad_special ? piece(info.pad_id) : piece(info.eot_id);
  // SigLIP-style towers train with the padding visible: no attention mask for them.
  const nlohmann::ordered_json inputs = config.model.text.causal
                                            ? nlohmann::ordered_json{"input_ids", "attention_mask"}
                                            : nlohmann::ordered_json{"input_ids"};
  const nlohmann::ordered_json special = {{"bos_token", piece(info.sot_id)},
                                          {"eos_token", piece(info.eot_id)},
                                          {"unk_token", piece(info.unk_id)},
                                          {"pad_token", pad}};
  nlohmann::ordered_json tokenizer_config = {{"tokenizer_class", "PreTrainedTokenizerFast"},
                                             {"model_max_length", config.model.text.context_length},
                                             {"bos_token", piece(info.sot_id)},
                                             {"eos_token", piece(info.eot_id)},
                                             {"unk_token", piece(info.unk_id)},
                                             {"pad_token", pad},
                                             {"padding_side", "right"},
                                             {"clean_up_tokenization_spaces", false},
                                             {"model_input_names", inputs}};
  files["tokenizer.json"] = json;
  files["tokenizer_config.json"] = tokenizer_config.dump(2) + "\n";
  files["special_tokens_map.json"] = special.dump(2) + "\n";
  return files;
}

}  // namespace

std::map<std::string, std::string> hf_tokenizer_files(const text::Tokenizer& tokenizer,
                                                      const config::Config& config,
                                                      std::string& why_not) {
  if (const auto* sp = dynamic_cast<const text::SentencePieceTokenizer*>(&tokenizer)) {
    return sentencepiece_files(*sp, config, why_not);
  }
  std::map<std::string, std::string> files;
  const auto* bpe = dynamic_cast<const text::ClipBpeTokenizer*>(&tokenizer);
  if (bpe == nullptr) {
    why_not = fmt::format("tokenizer.type '{}' has no transformers tokenizer files",
                          config::name(config.tokenizer.type));
    return files;
  }
  const text::TokenizerInfo info = bpe->info();
  const auto& symbols = bpe->symbols();
  // A JSON object keeps the last id of a repeated symbol, as OpenAI's encoder dict does.
  nlohmann::ordered_json vocab = nlohmann::ordered_json::object();
  for (size_t id = 0; id < symbols.size(); ++id) {
    vocab[symbols[id]] = id;
  }
  std::string merges = "#version: 0.2\n";
  for (const auto& [left, right] : bpe->merges()) {
    merges += left + " " + right + "\n";
  }
  const std::string bos = symbols.at(static_cast<size_t>(info.sot_id));
  const std::string eos = symbols.at(static_cast<size_t>(info.eot_id));
  // duet pads with id 0 (as OpenAI and OpenCLIP do), which is the byte symbol "!": naming it the
  // pad token would make transformers split every "!" out of texts as a special token. So the
  // pad token is <|endoftext|>, transformers' own choice for CLIP: ids equal duet's up to the
  // padding after the first EOT, which neither tower's output depends on (causal mask, pooling
  // at the first EOT).
  const std::string pad = eos;
  const nlohmann::ordered_json special = {
      {"bos_token", bos}, {"eos_token", eos}, {"unk_token", eos}, {"pad_token", pad}};
  nlohmann::ordered_json tokenizer_config = {
      {"tokenizer_class", "CLIPTokenizer"},
      {"model_max_length", config.model.text.context_length},
      {"bos_token", bos},
      {"eos_token", eos},
      {"unk_token", eos},
      {"pad_token", pad},
      {"do_lower_case", true},
      {"errors", "replace"},
      {"add_prefix_space", false},
      {"clean_up_tokenization_spaces", false},
      {"model_input_names", {"input_ids", "attention_mask"}}};
  files["vocab.json"] = vocab.dump() + "\n";
  files["merges.txt"] = merges;
  files["tokenizer_config.json"] = tokenizer_config.dump(2) + "\n";
  files["special_tokens_map.json"] = special.dump(2) + "\n";
  return files;
}

nlohmann::json open_clip_config(const config::Config& config,
                                const text::TokenizerInfo& tokenizer) {
  const auto& m = config.model;
  const auto& v = m.vision;
  const auto& t = m.text;
  nlohmann::json vision = {{"image_size", v.image_size},
                           {"patch_size", v.patch_size},
                           {"width", v.width},
                           {"layers", v.layers},
                           {"head_width", v.width / v.heads},
                           {"mlp_ratio", v.mlp_ratio},
                           {"patch_dropout", v.patch_dropout},
                           {"no_ln_pre", !v.ln_pre},
                           {"pool_type", v.pool == config::VisionPool::kMean ? "avg" : "tok"}};
  vision["ls_init_value"] = v.ls_init > 0.0 ? nlohmann::json(v.ls_init) : nlohmann::json(nullptr);
  if (!act_kwargs(v.act).is_null()) {
    vision["act_kwargs"] = act_kwargs(v.act);
  }
  // OpenAI's argmax pooling is the first EOT when EOT is the largest id; otherwise pool at
  // eos_id, which OpenCLIP also supports.
  std::string pool = "last";
  if (t.pool == config::TextPool::kEot) {
    pool = tokenizer.eot_id == t.vocab_size - 1 ? "argmax" : "eos";
  }
  nlohmann::json text = {{"context_length", t.context_length},
                         {"vocab_size", t.vocab_size},
                         {"width", t.width},
                         {"heads", t.heads},
                         {"layers", t.layers},
                         {"mlp_ratio", t.mlp_ratio},
                         {"no_causal_mask", !t.causal},
                         {"pool_type", pool},
                         {"eos_id", tokenizer.eot_id},
                         {"pad_id", tokenizer.pad_id},
                         {"proj_bias", t.proj_bias}};
  text["ls_init_value"] = t.ls_init > 0.0 ? nlohmann::json(t.ls_init) : nlohmann::json(nullptr);
  if (!act_kwargs(t.act).is_null()) {
    text["act_kwargs"] = act_kwargs(t.act);
  }
  nlohmann::json model = {{"embed_dim", m.embed_dim},
                          {"quick_gelu", v.act == config::Activation::kQuickGelu ||
                                             t.act == config::Activation::kQuickGelu},
                          {"init_logit_scale", m.init_logit_scale},
                          {"vision_cfg", vision},
                          {"text_cfg", text}};
  if (m.logit_bias) {
    model["init_logit_bias"] = m.init_logit_bias;
  }
  const nlohmann::json preprocess = {{"size", v.image_size},
                                     {"mean", config.data.mean},
                                     {"std", config.data.stddev},
                                     {"interpolation", "bicubic"},
                                     {"resize_mode", "shortest"}};
  return {{"model_cfg", model}, {"preprocess_cfg", preprocess}};
}

}  // namespace duet::export_
