// Export directories and weight import (see model_io.h). Reading never trusts a file: the
// safetensors reader validates the whole file, the key maps check every name and shape, and a
// source's own config (config.json, open_clip_config.json) is compared with duet's model config
// where the shapes alone would not catch a difference (activation, masking, pooling).
#include "export/model_io.h"

#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/dtype_names.h"
#include "common/error.h"
#include "common/logging.h"
#include "config/loader.h"
#include "duet/build_info.h"
#include "export/safetensors.h"
#include "export/state_dict.h"
#include "export/tool_config.h"
#include "models/clip_model.h"
#include "train/checkpoint.h"

namespace fs = std::filesystem;

namespace duet::export_ {
namespace {

constexpr const char* kHfWeights = "model.safetensors";
constexpr const char* kOpenClipWeights = "open_clip_model.safetensors";
constexpr const char* kOpenClipConfig = "open_clip_config.json";

void write_text_file(const fs::path& path, const std::string& text) {
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.close();
    if (!out) {
      fail("cannot write '{}'", path.string());
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fail("cannot write '{}': {}", path.string(), ec.message());
  }
}

nlohmann::json read_json(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    fail("cannot read '{}'", path.string());
  }
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    fail("'{}' is not valid JSON: {}", path.string(), e.what());
  }
}

std::map<std::string, std::string> metadata_for(const config::Config& config, Format format) {
  // transformers refuses safetensors files whose metadata lacks format: pt.
  return {{"format", "pt"},
          {"duet_layout", format_name(format)},
          {"duet_version", DUET_VERSION},
          {"duet_config", config::to_yaml(config)}};
}

// Compares a source's own config with duet's where a difference would not show in the shapes.
// `checks` are (what, source value, duet value) triples; mismatches throw together.
struct ConfigCheck {
  std::string what;
  nlohmann::json source;
  nlohmann::json duet;
};

void require_same(const std::vector<ConfigCheck>& checks, const std::string& origin) {
  std::string problems;
  for (const auto& c : checks) {
    if (!c.source.is_null() && c.source != c.duet) {
      problems += fmt::format("\n  {}: the source has {}, duet's config {}", c.what,
                              c.source.dump(), c.duet.dump());
    }
  }
  if (!problems.empty()) {
    fail(ErrorKind::kConfig, "'{}' was built differently from model.* (set model.* to match):{}",
         origin, problems);
  }
}

nlohmann::json value_at(const nlohmann::json& json, const std::string& a, const std::string& b) {
  if (json.contains(a) && json[a].is_object() && json[a].contains(b)) {
    return json[a][b];
  }
  return nullptr;
}

// Refuses, with the reasons, a model whose config the format cannot hold.
void require_importable(const config::ModelConfig& m, Format format, const std::string& origin) {
  text::TokenizerInfo info;  // the tokenizer is not involved in importing weights
  info.vocab_size = m.text.vocab_size;
  info.eot_id = m.text.vocab_size - 1;
  const std::vector<std::string> reasons = unsupported(m, format, info);
  if (!reasons.empty()) {
    std::string list;
    for (const auto& r : reasons) {
      list += "\n  " + r;
    }
    fail(ErrorKind::kConfig, "cannot initialise this model from '{}' ({} format):{}", origin,
         format_name(format), list);
  }
}

void check_hf_config(const nlohmann::json& hf, const config::ModelConfig& m,
                     const std::string& origin) {
  if (!hf.is_object()) {
    fail("'{}/config.json' must be a JSON object", origin);
  }
  const std::string expected = hf_model(m) == HfModel::kSiglip ? "siglip" : "clip";
  if (hf.value("model_type", std::string()) != expected) {
    fail(ErrorKind::kConfig,
         "'{}' holds a transformers model_type '{}', but model.* describes a {} ({}); set "
         "model.logit_bias {} and the matching layout",
         origin, hf.value("model_type", std::string("?")), hf_model_name(hf_model(m)), expected,
         expected == "clip" ? "true" : "false");
  }
  // transformers' defaults when a config omits the activation.
  const std::string default_act = expected == "siglip" ? "gelu_pytorch_tanh" : "quick_gelu";
  auto act = [&](const char* tower) {
    nlohmann::json v = value_at(hf, tower, "hidden_act");
    return v.is_null() ? nlohmann::json(default_act) : v;
  };
  require_same({{"text_config.hidden_act", act("text_config"), hf_activation(m.text.act)},
                {"vision_config.hidden_act", act("vision_config"), hf_activation(m.vision.act)}},
               origin);
  for (const char* tower : {"text_config", "vision_config"}) {
    const nlohmann::json eps = value_at(hf, tower, "layer_norm_eps");
    if (eps.is_number() && eps.get<double>() != 1e-5) {
      log::get("export")->warn(
          "'{}': {}.layer_norm_eps is {}, duet's LayerNorm uses 1e-5; outputs differ slightly",
          origin, tower, eps.get<double>());
    }
  }
}

void check_open_clip_config(const nlohmann::json& oc, const config::ModelConfig& m,
                            const std::string& origin) {
  if (!oc.is_object() || (oc.contains("model_cfg") && !oc["model_cfg"].is_object())) {
    fail("'{}/open_clip_config.json' must be a JSON object with a model_cfg object", origin);
  }
  const nlohmann::json cfg = oc.contains("model_cfg") ? oc["model_cfg"] : oc;
  const nlohmann::json text = cfg.value("text_cfg", nlohmann::json::object());
  const nlohmann::json vision = cfg.value("vision_cfg", nlohmann::json::object());
  if (vision.contains("timm_model_name") && !vision["timm_model_name"].is_null()) {
    fail(ErrorKind::kConfig,
         "'{}' has a timm image tower ({}), which duet does not import; import its transformers "
         "export instead",
         origin, vision["timm_model_name"].dump());
  }
  const bool quick = cfg.value("quick_gelu", false);
  auto duet_quick = [](config::Activation act) { return act == config::Activation::kQuickGelu; };
  const std::string pool = m.vision.pool == config::VisionPool::kMean ? "avg" : "tok";
  require_same({{"quick_gelu (model.vision.act)", quick, duet_quick(m.vision.act)},
                {"quick_gelu (model.text.act)", quick, duet_quick(m.text.act)},
                {"text_cfg.no_causal_mask (model.text.causal)", text.value("no_causal_mask", false),
                 !m.text.causal},
                {"vision_cfg.pool_type (model.vision.pool)",
                 vision.value("pool_type", std::string("tok")), pool},
                {"vision_cfg.no_ln_pre (model.vision.ln_pre)", vision.value("no_ln_pre", false),
                 !m.vision.ln_pre}},
               origin);
}

}  // namespace

std::vector<std::string> export_model(const models::ClipModelImpl& model,
                                      const config::Config& config,
                                      const text::Tokenizer& tokenizer, Format format,
                                      const std::string& dtype, const std::string& out,
                                      std::vector<std::string>& notes) {
  const at::ScalarType type =
      parse_dtype_option("--dtype", dtype, {at::kFloat, at::kHalf, at::kBFloat16});
  const text::TokenizerInfo info = tokenizer.info();
  const std::vector<std::string> reasons = unsupported(config.model, format, info);
  if (!reasons.empty()) {
    std::string list;
    for (const auto& r : reasons) {
      list += "\n  " + r;
    }
    fail("cannot export this model as {}{} without changing it:{}", format_name(format),
         format == Format::kHf ? fmt::format(" ({})", hf_model_name(hf_model(config.model))) : "",
         list);
  }
  const NamedTensors tensors = export_tensors(model, format, type);
  const auto metadata = metadata_for(config, format);
  std::vector<std::string> written;
  if (format == Format::kDuet) {
    const fs::path parent = fs::path(out).parent_path();
    if (!parent.empty()) {
      fs::create_directories(parent);
    }
    write_tensors(out, tensors, metadata);
    written.push_back(out);
    return written;
  }

  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec || !fs::is_directory(out)) {
    fail("cannot create the export directory '{}'{}", out, ec ? ": " + ec.message() : "");
  }
  const fs::path dir(out);
  auto text_file = [&](const std::string& name, const std::string& text) {
    write_text_file(dir / name, text);
    written.push_back((dir / name).string());
  };
  if (format == Format::kHf) {
    write_tensors((dir / kHfWeights).string(), tensors, metadata);
    written.push_back((dir / kHfWeights).string());
    text_file("config.json", hf_model_config(config.model, info, dtype).dump(2) + "\n");
    text_file("preprocessor_config.json", hf_preprocessor_config(config).dump(2) + "\n");
    std::string why_not;
    for (const auto& [name, text] : hf_tokenizer_files(tokenizer, config, why_not)) {
      text_file(name, text);
    }
    if (!why_not.empty()) {
      notes.push_back(why_not);
    }
  } else {
    write_tensors((dir / kOpenClipWeights).string(), tensors, metadata);
    written.push_back((dir / kOpenClipWeights).string());
    text_file(kOpenClipConfig, open_clip_config(config, info).dump(2) + "\n");
    if (config.tokenizer.type != config::TokenizerType::kClipBpe) {
      notes.push_back(fmt::format(
          "tokenizer.type '{}': OpenCLIP's default tokenizer is CLIP BPE; tokenize with duet",
          config::name(config.tokenizer.type)));
    }
  }
  return written;
}

void load_weights(models::ClipModelImpl& model, const train::CheckpointInfo& checkpoint) {
  // On the CPU, whatever device wrote it; train/checkpoint.h owns the layout.
  const TensorMap tensors = train::read_model_tensors(checkpoint);
  import_tensors(model, tensors, Format::kDuet, checkpoint.path);
  log::get("export")->info("initialised {} tensors from the duet checkpoint '{}'", tensors.size(),
                           checkpoint.path);
}

void load_weights(models::ClipModelImpl& model, const std::string& path) {
  const auto logger = log::get("export");
  const fs::path p(path);
  std::error_code ec;
  if (fs::is_directory(p, ec)) {
    if (train::is_checkpoint_dir(path)) {
      load_weights(model, train::CheckpointStore::validate(path));
      return;
    }
    if (fs::exists(p / "config.json") && fs::exists(p / kHfWeights)) {
      try {
        check_hf_config(read_json(p / "config.json"), model.config(), path);
      } catch (const nlohmann::json::exception& e) {
        fail("'{}/config.json' has a field of the wrong type: {}", path, e.what());
      }
      require_importable(model.config(), Format::kHf, path);
      const SafetensorsFile file((p / kHfWeights).string());
      import_tensors(model, read_tensors(file), Format::kHf, file.path());
      logger->info("initialised from the transformers {} directory '{}'",
                   hf_model_name(hf_model(model.config())), path);
      return;
    }
    if (fs::exists(p / kOpenClipConfig) && fs::exists(p / kOpenClipWeights)) {
      try {
        check_open_clip_config(read_json(p / kOpenClipConfig), model.config(), path);
      } catch (const nlohmann::json::exception& e) {
        fail("'{}/{}' has a field of the wrong type: {}", path, kOpenClipConfig, e.what());
      }
      require_importable(model.config(), Format::kOpenClip, path);
      const SafetensorsFile file((p / kOpenClipWeights).string());
      import_tensors(model, read_tensors(file), Format::kOpenClip, file.path());
      logger->info("initialised from the OpenCLIP directory '{}'", path);
      return;
    }
    fail(
        "'{}' is neither a duet checkpoint (a step-NNNNNNNN directory), a transformers directory "
        "(config.json + model.safetensors) nor an OpenCLIP one (open_clip_config.json + "
        "open_clip_model.safetensors)",
        path);
  }
  if (!fs::exists(p, ec)) {
    fail(
        "'{}' does not exist (expected a checkpoint directory, an export directory or a "
        ".safetensors file)",
        path);
  }
  const SafetensorsFile file(path);
  const TensorMap tensors = read_tensors(file);
  // The layout: what duet wrote in the metadata, else what the names say.
  Format format = Format::kDuet;
  const auto layout = file.metadata().find("duet_layout");
  if (layout != file.metadata().end()) {
    format = parse_format(layout->second, fmt::format("'{}': duet_layout metadata", path));
  } else if (tensors.count("logit_scale") &&
             std::any_of(tensors.begin(), tensors.end(), [](const auto& item) {
               return item.first.rfind("vision_model.", 0) == 0;
             })) {
    format = Format::kHf;
  } else if (tensors.count("text_projection.weight")) {
    format = Format::kOpenClip;
  }
  require_importable(model.config(), format, path);
  import_tensors(model, tensors, format, path);
  logger->info("initialised from '{}' ({} names)", path, format_name(format));
}

void lock_image_tower(models::ClipModelImpl& model) {
  int64_t frozen = 0;
  for (auto& item : model.visual->named_parameters()) {
    item.value().set_requires_grad(false);
    frozen += item.value().numel();
  }
  log::get("export")->info("model.lock_image: image tower frozen ({} parameters)", frozen);
}

void prepare_model(models::ClipModelImpl& model, const config::ModelConfig& config, bool load) {
  if (load && !config.init_from.empty()) {
    load_weights(model, config.init_from);
  }
  if (config.lock_image) {
    lock_image_tower(model);
  }
}

}  // namespace duet::export_
